"""A network of the layer table's kinds (dense, convolutional, pooling, normalisation, recurrent,
merges; each followed by its activation as a layer of its own), in a chain or wired as a graph
(graph.py), its non-trained state beside its parameters, and an output head. Training (`fit`,
`train_epoch`, `forward`) runs every layer in training mode, `predict` and `evaluate` in evaluation
mode, where no layer updates its state.

Backpropagation walks the layers in reverse. At the output it uses the fused gradient
dL/dz = (a - y)/n when the loss was derived for that output activation (sigmoid + bce,
softmax + cross_entropy), and the chain rule through the activation otherwise; it never
computes the gradient with respect to the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.batches import epoch_batches
from harness.init import initial_parameters, initial_state
from harness.metrics import get as get_metric
from harness.scratch import activations, losses, optim, parallel
from harness.scratch.graph import Graph
from harness.scratch.layers import LAYERS, ActivationLayer, Layer
from harness.spec import NetworkSpec, OptimizerSpec

BatchOrder = Callable[[int], Iterable[np.ndarray]]
PREDICT_BLOCK = 1024  # rows per block in predict: large enough for BLAS, small enough to stay in cache


class Network:
    """Built from a `NetworkSpec` and either a seed (parameters drawn by its initializer)
    or given parameters (`{"layers.i.weight": ..., "layers.i.bias": ...}`, torch's names,
    i counting the spec's layers, the output layer last).

    All parameters live in one flat array, and all their gradients in another, each layer
    holding views into them: the optimizer updates the whole network in a few array
    operations, whatever its depth. Non-trained state (running statistics, torch's buffer
    names) lives in a third flat array that no optimizer sees; `params` may carry it too
    (`state_dict()`), and state it leaves out starts at the layer table's initial values.
    Each layer keeps its own buffers per batch size.
    """

    def __init__(self, spec: NetworkSpec, params: dict[str, np.ndarray] | None = None, *,
                 seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        if params is None:
            params = initial_parameters(spec, seed=seed, dtype=self.dtype)
        self.layers: list[Layer] = []  # every layer in order, each activation a layer after its own
        nodes: list[list[Layer]] = []  # per layer of the spec: its layer and its activation's
        owned: list[tuple[str, Layer]] = []  # (name prefix, layer) of the layers with parameters or state
        table_layers = spec.all_layers
        for i, (layer_spec, shape) in enumerate(zip(table_layers, spec.shapes, strict=False)):
            layer = LAYERS[layer_spec.type](layer_spec, shape, self.dtype)
            layer.set_seed(seed, i)  # a layer drawing masks draws them from the seed, its index and its step
            nodes.append([layer])
            if layer.param_shapes() or layer.state_shapes():
                owned.append((f"layers.{i}", layer))
            act = layer_spec.activation
            if i < len(table_layers) - 1 and layer_spec.kind.activation and act.name != "identity":
                nodes[-1].append(ActivationLayer(activations.get(act.name, **act.kwargs()), layer_spec,
                                                 layer.out_shape, self.dtype))
            self.layers.extend(nodes[-1])
        self._graph = None if spec.is_chain else Graph(spec.wiring, nodes)
        self.output = activations.get(spec.output_activation.name, **spec.output_activation.kwargs())
        shapes = {f"{prefix}.{name}": shape for prefix, layer in owned for name, shape in layer.param_shapes().items()}
        state_shapes = {f"{prefix}.{name}": shape for prefix, layer in owned
                        for name, shape in layer.state_shapes().items()}
        _check_parameters(spec, params, shapes, state_shapes)
        params = {**initial_state(spec, self.dtype), **params}  # state left out starts at its initial values
        self._flat, self._params = _flat_views(shapes, params, self.dtype)
        self._flat_grad, self._grads = _flat_views(shapes, None, self.dtype)
        self._flat_state, self._state = _flat_views(state_shapes, params, self.dtype)  # never optimised
        for prefix, layer in owned:
            names, kept = layer.param_shapes(), layer.state_shapes()
            layer.bind({n: self._params[f"{prefix}.{n}"] for n in names},
                       {n: self._grads[f"{prefix}.{n}"] for n in names},
                       {n: self._state[f"{prefix}.{n}"] for n in kept})
        self._order = [f"{prefix}.{n}" for prefix, layer in owned
                       for n in [*layer.param_shapes(), *layer.state_shapes()]]
        self._first_weighted = next(i for i, layer in enumerate(self.layers) if layer.param_shapes())
        # layers that split their batches over the engine's own workers: BLAS gives them its threads
        self._splits = any(layer.splits_batch for layer in self.layers)
        self._batches: dict[int, _Batch] = {}
        self._heads: dict[tuple[int, bool], _Head] = {}
        self._last: tuple[np.ndarray, _Head, tuple[int, ...]] | None = None  # logits as rows, head, shape

    # -- state

    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, by torch's state-dict names."""
        return {k: v.copy() for k, v in self._params.items()}

    def state(self) -> dict[str, np.ndarray]:
        """A copy of every layer's non-trained state (running statistics), by torch's buffer names."""
        return {k: v.copy() for k, v in self._state.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and state, a copy of each, in the order torch's `state_dict` gives them."""
        return {k: (self._params[k] if k in self._params else self._state[k]).copy() for k in self._order}

    def gradients(self) -> dict[str, np.ndarray]:
        """A copy of the gradients left by the last `backward`, by parameter name."""
        return {k: v.copy() for k, v in self._grads.items()}

    def _head(self, n: int, training: bool = True) -> _Head:
        """The output buffers for batches of n rows, one set for training and one for predict."""
        head = self._heads.get((n, training))
        if head is None:
            if len(self._heads) >= 8:  # a caller cycling through batch sizes: do not hoard memory
                self._heads.clear()
            head = self._heads[n, training] = _Head(n, self.spec.outputs, self.output, self.dtype)
        return head

    # -- computation

    def forward(self, x: np.ndarray, head: bool = True) -> np.ndarray:
        """Output activations of a batch, caching what `backward` needs. The result lives in
        the network's buffers: it is valid until the next `forward` of the same batch size.
        With `head=False` the output stops at its logits (a fused loss applies the activation)."""
        return self._through(self._input(x), True, head)

    def _through(self, x: np.ndarray, training: bool, head: bool = True) -> np.ndarray:
        """Every layer on a batch; the output activation too unless `head` is false. An output per
        time step (N, T, K) goes through the head as N·T rows of K."""
        if self._graph is not None:
            x = self._graph.forward(x, training)
        else:
            for layer in self.layers:
                x = layer.forward(x, training)
        rows = x.reshape(-1, x.shape[-1]) if x.ndim > 2 else x
        h = self._head(len(rows), training)
        if training:
            self._last = (rows, h, x.shape)
        return self.output.forward(rows, out=h.a).reshape(x.shape) if head else x

    def backward(self, y: np.ndarray, loss: losses.Loss) -> float:
        """Loss of the last `forward` against targets `y`, and every parameter's gradient."""
        if self._last is None:
            raise RuntimeError("backward needs a forward first")
        z, h, shape = self._last
        if len(y) != len(z):  # targets per time step, as rows like the outputs'
            y = y.reshape(len(z), *([] if y.dtype.kind in "iu" else [-1]))
        if loss.fused_with == self.output.name:
            value = loss.fused_head(z, y, self.output, h.a, h.g)
        else:
            a = self.output.forward(z, out=h.a)
            value = loss.value(a, y)
            self.output.backward(z, a, loss.grad(a, y), out=h.g)
        g = h.g.reshape(shape)
        if self._graph is not None:
            self._graph.backward(g)
            return value
        first = self._first_weighted
        for i in range(len(self.layers) - 1, first - 1, -1):  # below the first weights nothing learns
            g = self.layers[i].backward(g, need_dx=i > first)
        return value

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output activations in a new array, computed block by block in buffers of their own
        (a fresh large array per layer and call would cost a page fault per page)."""
        x = self._input(x)
        out = np.empty((0, self.spec.outputs), dtype=self.dtype)
        with parallel.own_threads(self._splits):
            for start in range(0, len(x), PREDICT_BLOCK):
                block = self._through(x[start:start + PREDICT_BLOCK], training=False)
                if start == 0:
                    out = np.empty((len(x), *block.shape[1:]), dtype=self.dtype)
                out[start:start + len(block)] = block
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, metric: str = "accuracy",
                 loss: str | losses.Loss | None = None) -> dict[str, float]:
        """`{metric: value}` on (x, y), plus `"loss"` when a loss is named."""
        pred = self.predict(x)
        y = self._targets(y, loss)
        out = {metric: get_metric(metric)(pred, y)}
        if loss is not None:
            loss = losses.get(loss) if isinstance(loss, str) else loss
            out["loss"] = loss.value(pred, y)
        return out

    # -- training

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batches: Iterable[np.ndarray],
                    loss: losses.Loss, optimizer: optim.Optimizer) -> float:
        """One pass over `batches` (index arrays into x, y); the sample-weighted mean batch loss.

        Each batch is gathered into a buffer of its size with `take(..., out=, mode="clip")`, which
        skips NumPy's buffered bounds-checking path (the indices come from `epoch_batches`).
        """
        with parallel.own_threads(self._splits):
            return self._epoch(x, y, batches, loss, optimizer)

    def _epoch(self, x: np.ndarray, y: np.ndarray, batches: Iterable[np.ndarray], loss: losses.Loss,
               optimizer: optim.Optimizer) -> float:
        head = loss.fused_with != self.output.name
        total, seen = 0.0, 0
        grads = {"all": self._flat_grad}
        for idx in batches:
            n = len(idx)
            batch = self._batches.get(n)
            if batch is None or batch.x.shape[1:] != x.shape[1:]:  # a sequence length left open may change
                if len(self._batches) >= 4:
                    self._batches.clear()
                batch = self._batches[n] = _Batch(n, x.shape[1:], self.dtype)
            # the methods, not np.take: its wrapper costs more than the take itself on small batches
            xb = x.take(idx, 0, batch.x, "clip")
            yb = y.take(idx, 0, batch.targets(y), "clip")
            self._through(xb, True, head)
            total += self.backward(yb, loss) * n
            optimizer.step(grads)
            seen += n
        return total / seen

    def make_optimizer(self, optimizer: str | OptimizerSpec | optim.Optimizer = "sgd",
                       **settings: Any) -> optim.Optimizer:
        """An optimizer over this network's parameters, from a name and settings or a spec."""
        if isinstance(optimizer, optim.Optimizer):
            return optimizer
        # one "parameter", the flat array of all of them: every update rule is element-wise
        if isinstance(optimizer, OptimizerSpec):
            return optim.get(optimizer.name, {"all": self._flat}, **optimizer.kwargs())
        return optim.get(optimizer, {"all": self._flat}, **settings)

    def fit(self, x: np.ndarray, y: np.ndarray, *, loss: str | losses.Loss,
            optimizer: str | OptimizerSpec | optim.Optimizer = "sgd", epochs: int = 1,
            batch_size: int = 32, batch_indices: BatchOrder | None = None, seed: int = 0,
            shuffle: bool = True, **optimizer_settings: Any) -> list[float]:
        """Train for `epochs`; returns each epoch's mean loss.

        `batch_indices(epoch)` gives the batches of an epoch; by default the shared
        `epoch_batches` order of `seed`. Extra keywords are settings of a named optimizer
        (`learning_rate=0.1`).
        """
        loss = losses.get(loss) if isinstance(loss, str) else loss
        opt = self.make_optimizer(optimizer, **optimizer_settings)
        x, y = self._input(x), self._targets(y, loss)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if batch_indices is None:
            def batch_indices(epoch: int) -> list[np.ndarray]:
                return epoch_batches(len(x), batch_size, seed, epoch, shuffle)
        return [self.train_epoch(x, y, batch_indices(e), loss, opt) for e in range(epochs)]

    def _input(self, x: np.ndarray) -> np.ndarray:
        """x as (n, *input_shape) in the network's dtype; flat rows of an image network are reshaped."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        shape = self.spec.input_shape
        if x.ndim >= 2 and x.shape[1:] != shape and math.prod(x.shape[1:]) == math.prod(shape) > 0:
            x = x.reshape(len(x), *shape)
        fits = x.ndim == len(shape) + 1 and all(s in (0, n) for s, n in zip(shape, x.shape[1:], strict=True))
        if not fits:  # a 0 in the input shape is a time length left open
            takes = f"{shape[0]} inputs" if len(shape) == 1 else f"inputs of shape {list(shape)}"
            raise ValueError(f"the model takes {takes} per sample, the data has shape {x.shape}")
        return x

    def _targets(self, y: np.ndarray, loss: str | losses.Loss | None) -> np.ndarray:
        """Targets as `loss` takes them; without a loss, as metrics take them (labels stay labels)."""
        y = np.asarray(y)
        if loss is None:
            return y if y.ndim == 1 and y.dtype.kind in "iu" else y.reshape(len(y), -1)
        loss = losses.get(loss) if isinstance(loss, str) else loss
        return loss.targets(y, self.spec.outputs, self.dtype)

    # -- files

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        """Write the network to `path`: ONNX for `.onnx`, else the native `.npz` checkpoint
        (parameters, non-trained state and spec, readable without pickle)."""
        from harness import onnx
        from harness.scratch import serialize

        path = Path(path)
        if path.suffix == ".onnx":
            return onnx.export(self.spec, self.state_dict(), self.dtype, path, metadata)
        return serialize.save(self.spec, self.state_dict(), self.dtype, path, metadata or {})

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a network written by `save` (or an ONNX file of supported layers), by the file's suffix."""
        from harness.errors import ModelFileError
        from harness.scratch import serialize

        path = Path(path)
        if path.suffix == ".onnx":
            return cls.from_onnx(path)
        spec, tensors, dtype = serialize.load(path)
        try:
            return cls(spec, tensors, dtype=dtype)
        except (KeyError, TypeError, AttributeError) as e:
            raise ModelFileError(f"{path}: the network spec inside is damaged ({e})") from None
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from None

    @classmethod
    def from_onnx(cls, path: str | Path) -> Network:
        """A network from an ONNX graph of supported layers, as this project or torch.onnx.export (either
        exporter) writes it: Gemm, or MatMul and its bias Add (linear), Conv, MaxPool, AveragePool, Flatten
        or Reshape, BatchNormalization, GlobalAveragePool, RNN, LSTM and GRU with the Transpose, Squeeze,
        Reshape and Gather around them (rnn, lstm, gru), the activations after a layer, and Add or Concat
        joining layers' outputs (add, concat: a ResNet's skips); harness/onnx/read.py says exactly what is read."""
        from harness import onnx
        from harness.errors import ModelFileError

        spec, tensors, dtype = onnx.read_network(path)
        try:
            return cls(spec, tensors, dtype=dtype)
        except ValueError as e:
            raise ModelFileError(f"{path}: {e}") from None

    def __repr__(self) -> str:
        return f"Network({self.spec.describe()}, dtype={self.dtype})"


def _check_parameters(spec: NetworkSpec, params: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                      state_shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse parameters (and state) whose names or shapes do not fit the spec; state may be left out."""
    missing, extra = set(shapes) - set(params), set(params) - set(shapes) - set(state_shapes)
    if missing or extra:
        raise ValueError(f"parameters do not fit the network {spec.describe()}: "
                         f"missing {sorted(missing) or 'none'}, unexpected {sorted(extra) or 'none'}")
    for name, shape in {**shapes, **state_shapes}.items():
        if name not in params:
            continue
        actual = np.shape(params[name])
        if actual != shape:
            what = "parameter" if name in shapes else "state"
            raise ValueError(f"{what} {name} has shape {actual}, the network {spec.describe()} needs {shape}")


def _flat_views(shapes: dict[str, tuple[int, ...]], values: dict[str, np.ndarray] | None,
                dtype: np.dtype) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One flat array for every tensor of `shapes`, a view of it per name, filled from `values` (zeros
    without): the optimizers then update every layer in a few array operations."""
    total = sum(math.prod(s) for s in shapes.values())
    flat = np.zeros(total, dtype=dtype) if values is None else np.empty(total, dtype=dtype)
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        views[name] = flat[offset:offset + size].reshape(shape)
        if values is not None:
            views[name][...] = values[name]
        offset += size
    return flat, views


class _Batch:
    """The buffers a training batch of n rows is gathered into."""

    def __init__(self, n: int, input_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.x = np.empty((n, *input_shape), dtype=dtype)
        self._y: np.ndarray | None = None

    def targets(self, y: np.ndarray) -> np.ndarray:
        """A buffer for a batch of targets shaped and typed like `y`'s rows."""
        if self._y is None or self._y.dtype != y.dtype or self._y.shape[1:] != y.shape[1:]:
            self._y = np.empty((len(self.x), *y.shape[1:]), dtype=y.dtype)
        return self._y


class _Head:
    """The output activation's buffers for n rows: a, and dL/dz. The identity's a is z itself."""

    def __init__(self, n: int, outputs: int, act: activations.Activation, dtype: np.dtype) -> None:
        self.a = None if act.name == "identity" else np.empty((n, outputs), dtype=dtype)
        self.g = np.empty((n, outputs), dtype=dtype)
