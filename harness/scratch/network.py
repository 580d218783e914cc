"""A feed-forward network of Dense layers, each followed by its own activation.

Backpropagation walks the layers in reverse. At the output it uses the fused gradient
dL/dz = (a - y)/n when the loss was derived for that output activation (sigmoid + bce,
softmax + cross_entropy), and the chain rule through the activation otherwise; it never
computes the gradient with respect to the data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.batches import epoch_batches
from harness.metrics import get as get_metric
from harness.scratch import activations, losses, optim
from harness.scratch.init import initial_parameters
from harness.scratch.layers import Dense
from harness.spec import NetworkSpec, OptimizerSpec

BatchOrder = Callable[[int], Iterable[np.ndarray]]
PREDICT_BLOCK = 1024  # rows per block in predict: large enough for BLAS, small enough to stay in cache


class Network:
    """Built from a `NetworkSpec` and either a seed (parameters drawn by its initializer)
    or given parameters (`{"layers.i.weight": (out, in), "layers.i.bias": (out,)}`).

    All parameters live in one flat array, and all their gradients in another, each layer
    holding views into them: the optimizer updates the whole network in a few array
    operations, whatever its depth. Training reuses per-batch-size buffers (`_Workspace`)
    for the batch, every layer's pre-activations, activations and gradients.
    """

    def __init__(self, spec: NetworkSpec, params: dict[str, np.ndarray] | None = None, *,
                 seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        if params is None:
            params = initial_parameters(spec.sizes, spec.init, seed, self.dtype)
        shapes = _parameter_shapes(spec)
        _check_parameters(spec, params, shapes)
        total = sum(int(np.prod(s)) for s in shapes.values())
        self._flat = np.empty(total, dtype=self.dtype)
        self._flat_grad = np.zeros(total, dtype=self.dtype)
        self._params, self._grads = {}, {}
        offset = 0
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            self._params[name] = self._flat[offset:offset + size].reshape(shape)
            self._grads[name] = self._flat_grad[offset:offset + size].reshape(shape)
            self._params[name][...] = params[name]
            offset += size
        self.layers = [Dense(self._params[f"layers.{i}.weight"], self._params[f"layers.{i}.bias"],
                             self._grads[f"layers.{i}.weight"], self._grads[f"layers.{i}.bias"])
                       for i in range(len(spec.sizes) - 1)]
        self.activations = [activations.get(a.name, **a.kwargs()) for a in spec.activations]
        self._workspaces: dict[int, _Workspace] = {}
        self._inference: dict[int, _Workspace] = {}
        self._last: tuple[np.ndarray, _Workspace] | None = None  # (input, buffers) of the last forward

    # -- state

    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, by torch's state-dict names."""
        return {k: v.copy() for k, v in self._params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """A copy of the gradients left by the last `backward`, by parameter name."""
        return {k: v.copy() for k, v in self._grads.items()}

    def _workspace(self, n: int, pool: dict[int, _Workspace] | None = None) -> _Workspace:
        """The buffers for batches of n rows, from the training pool or another (predict keeps its own)."""
        pool = self._workspaces if pool is None else pool
        ws = pool.get(n)
        if ws is None:
            if len(pool) >= 4:  # a caller cycling through batch sizes: do not hoard memory
                pool.clear()
            ws = pool[n] = _Workspace(n, self.spec.sizes, self.activations, self.dtype)
        return ws

    # -- computation

    def forward(self, x: np.ndarray, head: bool = True) -> np.ndarray:
        """Output activations of a batch, caching what `backward` needs. The result lives in
        the network's buffers: it is valid until the next `forward` of the same batch size.
        With `head=False` the output layer stops at its logits (a fused loss applies the
        activation itself)."""
        x = self._input(x)
        ws = self._workspace(len(x))
        self._last = (x, ws)
        return self._through(x, ws, head)

    def _through(self, x: np.ndarray, ws: _Workspace, head: bool = True) -> np.ndarray:
        """Every layer on a batch, in the buffers of `ws`; the last stops at its logits without `head`."""
        a = x
        last = len(self.layers) - 1
        for i, (layer, act) in enumerate(zip(self.layers, self.activations, strict=True)):
            z = layer.forward(a, out=ws.z[i])
            a = act.forward(z, out=ws.a[i]) if head or i < last else z
        return a

    def backward(self, y: np.ndarray, loss: losses.Loss) -> float:
        """Loss of the last `forward` against targets `y`, and every parameter's gradient."""
        if self._last is None:
            raise RuntimeError("backward needs a forward first")
        x, ws = self._last
        last = len(self.layers) - 1
        z, a, g = ws.z[last], ws.a[last], ws.g[last]
        out_act = self.activations[last]
        if loss.fused_with == out_act.name:
            value = loss.fused_head(z, y, out_act, a, g)
        else:
            value = loss.value(a, y)
            out_act.backward(z, a, loss.grad(a, y), out=g)
        for i in range(last, -1, -1):
            if i == 0:
                self.layers[0].backward(ws.g[0], x)
            else:
                grad_a = self.layers[i].backward(ws.g[i], ws.a[i - 1], input_grad=ws.g[i - 1])
                self.activations[i - 1].backward(ws.z[i - 1], ws.a[i - 1], grad_a, out=grad_a)
        return value

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output activations in a new array, computed block by block in buffers of their own
        (a fresh large array per layer and call would cost a page fault per page)."""
        x = self._input(x)
        out = np.empty((len(x), self.spec.outputs), dtype=self.dtype)
        for start in range(0, len(x), PREDICT_BLOCK):
            block = x[start:start + PREDICT_BLOCK]
            out[start:start + len(block)] = self._through(block, self._workspace(len(block), self._inference))
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

        Each batch is gathered into the workspace with `take(..., out=, mode="clip")`, which
        skips NumPy's buffered bounds-checking path (the indices come from `epoch_batches`).
        """
        total, seen = 0.0, 0
        grads = {"all": self._flat_grad}
        head = loss.fused_with != self.activations[-1].name
        for idx in batches:
            n = len(idx)
            ws = self._workspace(n)
            # the methods, not np.take: its wrapper costs more than the take itself on small batches
            xb = x.take(idx, 0, ws.x, "clip")
            yb = y.take(idx, 0, ws.targets(y), "clip")
            self._last = (xb, ws)  # as forward() would, without its checks on every step
            self._through(xb, ws, head)
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
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.spec.inputs:
            raise ValueError(f"the model takes {self.spec.inputs} inputs per sample, the data has shape {x.shape}")
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
        (parameters and spec, readable without pickle)."""
        from harness.scratch import onnx, serialize

        path = Path(path)
        if path.suffix == ".onnx":
            return onnx.export(self, path, metadata)
        return serialize.save(self, path, metadata or {})

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a network written by `save` (or any plain ONNX MLP), by the file's suffix."""
        from harness.scratch import serialize

        path = Path(path)
        return cls.from_onnx(path) if path.suffix == ".onnx" else serialize.load(path)

    @classmethod
    def from_onnx(cls, path: str | Path) -> Network:
        """A network from an ONNX MLP of Gemm or MatMul+Add layers and supported activations."""
        from harness.scratch import onnx

        return onnx.load(path)

    def __repr__(self) -> str:
        acts = [a.name for a in self.spec.activations]
        return f"Network(sizes={self.spec.sizes}, activations={acts}, dtype={self.dtype})"


def _parameter_shapes(spec: NetworkSpec) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(spec.sizes)):
        shapes[f"layers.{i}.weight"] = (fan_out, fan_in)
        shapes[f"layers.{i}.bias"] = (fan_out,)
    return shapes


def _check_parameters(spec: NetworkSpec, params: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse parameters whose names or shapes do not fit the spec."""
    missing, extra = set(shapes) - set(params), set(params) - set(shapes)
    if missing or extra:
        raise ValueError(f"parameters do not fit the network {spec.sizes}: "
                         f"missing {sorted(missing) or 'none'}, unexpected {sorted(extra) or 'none'}")
    for name, shape in shapes.items():
        actual = np.shape(params[name])
        if actual != shape:
            raise ValueError(f"parameter {name} has shape {actual}, the network {spec.sizes} needs {shape}")


class _Workspace:
    """Buffers for one batch size: the gathered batch, and per layer z, a and dL/dz.

    Where a hidden activation's backward needs only its output (`needs_z` false), a is z
    itself, overwritten in place. The output layer keeps z apart from a (a loss computed
    from logits reads z), except for the identity, whose a is always z.
    """

    def __init__(self, n: int, sizes: list[int], acts: list[activations.Activation], dtype: np.dtype) -> None:
        self.x = np.empty((n, sizes[0]), dtype=dtype)
        self.z = [np.empty((n, width), dtype=dtype) for width in sizes[1:]]
        last = len(acts) - 1
        self.a = [z if act.name == "identity" or (i < last and not act.needs_z) else np.empty_like(z)
                  for i, (z, act) in enumerate(zip(self.z, acts, strict=True))]
        self.g = [np.empty_like(z) for z in self.z]
        self._y: np.ndarray | None = None

    def targets(self, y: np.ndarray) -> np.ndarray:
        """A buffer for a batch of targets shaped and typed like `y`'s rows."""
        if self._y is None or self._y.dtype != y.dtype or self._y.shape[1:] != y.shape[1:]:
            self._y = np.empty((len(self.x), *y.shape[1:]), dtype=y.dtype)
        return self._y
