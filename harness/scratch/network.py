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


class Network:
    """Built from a `NetworkSpec` and either a seed (parameters drawn by its initializer)
    or given parameters (`{"layers.i.weight": (out, in), "layers.i.bias": (out,)}`)."""

    def __init__(self, spec: NetworkSpec, params: dict[str, np.ndarray] | None = None, *,
                 seed: int = 0, dtype: str | np.dtype = "float32") -> None:
        self.spec = spec
        self.dtype = np.dtype(dtype)
        if params is None:
            params = initial_parameters(spec.sizes, spec.init, seed, self.dtype)
        self._params = _checked_parameters(spec, params, self.dtype)
        self.layers = [Dense(self._params[f"layers.{i}.weight"], self._params[f"layers.{i}.bias"])
                       for i in range(len(spec.sizes) - 1)]
        self.activations = [activations.get(a.name, **a.kwargs()) for a in spec.activations]
        self._z: list[np.ndarray] = []
        self._a: list[np.ndarray] = []

    # -- state

    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, by torch's state-dict names."""
        return {k: v.copy() for k, v in self._params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """A copy of the gradients left by the last `backward`, by parameter name."""
        grads = {}
        for i, layer in enumerate(self.layers):
            grads[f"layers.{i}.weight"] = layer.grad_weight.copy()
            grads[f"layers.{i}.bias"] = layer.grad_bias.copy()
        return grads

    def _grad_views(self) -> dict[str, np.ndarray]:
        views = {}
        for i, layer in enumerate(self.layers):
            views[f"layers.{i}.weight"] = layer.grad_weight
            views[f"layers.{i}.bias"] = layer.grad_bias
        return views

    # -- computation

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output activations of a batch, caching what `backward` needs."""
        self._z, self._a = [], []
        a = x
        for layer, act in zip(self.layers, self.activations, strict=True):
            z = layer.forward(a)
            a = act.forward(z)
            self._z.append(z)
            self._a.append(a)
        return a

    def backward(self, y: np.ndarray, loss: losses.Loss) -> float:
        """Loss of the last `forward` against targets `y`, and every parameter's gradient."""
        z, a = self._z[-1], self._a[-1]
        out_act = self.activations[-1]
        if loss.fused_with == out_act.name:
            value = loss.value_from_logits(z, y)
            grad_z = loss.fused_grad(a, y)
        else:
            value = loss.value(a, y)
            grad_z = out_act.backward(z, a, loss.grad(a, y))
        for i in range(len(self.layers) - 1, -1, -1):
            grad_a = self.layers[i].backward(grad_z, input_grad=i > 0)
            if i > 0:
                grad_z = self.activations[i - 1].backward(self._z[i - 1], self._a[i - 1], grad_a)
        return value

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output activations, with no caching."""
        a = self._input(x)
        for layer, act in zip(self.layers, self.activations, strict=True):
            a = act.forward(layer.forward(a, cache=False))
        return a

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
        """One pass over `batches` (index arrays into x); the sample-weighted mean batch loss."""
        total, seen = 0.0, 0
        grads = self._grad_views()
        for idx in batches:
            self.forward(x[idx])
            total += self.backward(y[idx], loss) * len(idx)
            optimizer.step(grads)
            seen += len(idx)
        return total / seen

    def make_optimizer(self, optimizer: str | OptimizerSpec | optim.Optimizer = "sgd",
                       **settings: Any) -> optim.Optimizer:
        """An optimizer over this network's parameters, from a name and settings or a spec."""
        if isinstance(optimizer, optim.Optimizer):
            return optimizer
        if isinstance(optimizer, OptimizerSpec):
            return optim.get(optimizer.name, self._params, **optimizer.kwargs())
        return optim.get(optimizer, self._params, **settings)

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
            raise ValueError(f"expected inputs of shape (n, {self.spec.inputs}), got {x.shape}")
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


def _checked_parameters(spec: NetworkSpec, params: dict[str, np.ndarray], dtype: np.dtype) -> dict[str, np.ndarray]:
    """Own C-contiguous copies in `dtype`, after checking names and shapes against the spec."""
    expected = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(spec.sizes)):
        expected[f"layers.{i}.weight"] = (fan_out, fan_in)
        expected[f"layers.{i}.bias"] = (fan_out,)
    missing, extra = set(expected) - set(params), set(params) - set(expected)
    if missing or extra:
        raise ValueError(f"parameters do not fit the network {spec.sizes}: "
                         f"missing {sorted(missing) or 'none'}, unexpected {sorted(extra) or 'none'}")
    out = {}
    for name, shape in expected.items():
        value = np.asarray(params[name])
        if value.shape != shape:
            raise ValueError(f"parameter {name} has shape {value.shape}, the network {spec.sizes} needs {shape}")
        out[name] = np.array(value, dtype=dtype, order="C", copy=True)
    return out
