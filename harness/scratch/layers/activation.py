"""An activation as a layer of its own, placed after each layer whose spec names one."""

from __future__ import annotations

import numpy as np

from harness.layers import LayerSpec, Shape
from harness.scratch.activations import Activation
from harness.scratch.layers.base import Layer


class ActivationLayer(Layer):
    """a = f(z), element-wise or (softmax) per row, and its backward beside it.

    Where the backward needs only a (`needs_z` false), a overwrites z in the buffer of the
    layer before: the Layer protocol lets a layer overwrite its input, since no backward
    reads its own output. backward writes dL/dz over dL/da, which the layer after owns and
    does not read again.
    """

    kind = "activation"  # not a kind of the layer table: the engine's own, one per activation

    def __init__(self, fn: Activation, spec: LayerSpec, shape: Shape, dtype: np.dtype) -> None:
        self.fn = fn
        self.in_shape = self.out_shape = tuple(shape)
        self.spec, self.dtype = spec, np.dtype(dtype)
        self.params, self.grads, self.state, self._buffers = {}, {}, {}, {}

    def param_shapes(self) -> dict[str, Shape]:
        return {}

    def state_shapes(self) -> dict[str, Shape]:
        return {}

    def forward(self, z: np.ndarray, training: bool = True) -> np.ndarray:
        out = z if not self.fn.needs_z else self.buffer("a" if training else "a_eval", z.shape)
        a = self.fn.forward(z, out=out)
        if training:
            self._z, self._a = z, a
        return a

    def backward(self, da: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return self.fn.backward(self._z, self._a, da, out=da)
