"""The scratch Layer protocol: one small class per layer kind, each backward beside its forward.

A layer is built from its `LayerSpec` (the layer table's entry) and the shape of one input
sample. The network gives it views into one flat parameter buffer, one flat gradient buffer
and one flat state buffer (`bind`), so that the optimizers update every layer in a few array
operations; the state (non-trained buffers such as running statistics, torch's buffer names)
is never optimised.

- `forward(x, training)` keeps exactly what its own `backward` needs (only when training);
  in training mode it may update its state, in evaluation mode it only reads it;
- `backward(dy, need_dx)` writes the parameter gradients into the bound views and returns
  dL/dx (None when `need_dx` is false: the first layer's input is data); a kind that merges
  (`add`, `concat`) takes a list of inputs and returns a list of gradients, no two of them one
  array;
- results live in the layer's own buffers, one set per batch size and mode, valid until the
  layer's next call of the same size and mode. An activation layer may overwrite the output
  of the layer before it, and the gradient it is given, in place; so no other layer's
  backward reads its own forward's output, and no layer but an activation writes into its
  input or into the gradient it is given.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness.layers import LayerSpec, Shape

MAX_BUFFERS = 64  # a caller cycling through batch sizes: drop the buffers rather than hoard memory


class Layer:
    kind: ClassVar[str]  # the name of the layer table's kind this class implements
    splits_batch: ClassVar[bool] = False  # it splits its batch over harness.scratch.parallel's workers

    def __init__(self, spec: LayerSpec, in_shape: Shape, dtype: np.dtype) -> None:
        self.spec = spec
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(spec.out_shape(self.in_shape))
        self.dtype = np.dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self._buffers: dict[tuple, np.ndarray] = {}

    def param_shapes(self) -> dict[str, Shape]:
        """{name: shape} of its parameters, by the names torch's modules give them."""
        return self.spec.param_shapes(self.in_shape)

    def state_shapes(self) -> dict[str, Shape]:
        """{name: shape} of its non-trained state, by the names torch's modules give their buffers."""
        return self.spec.state_shapes(self.in_shape)

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             state: dict[str, np.ndarray] | None = None) -> None:
        """Take views into the network's flat parameter, gradient and state buffers, by name."""
        self.params, self.grads, self.state = params, grads, state or {}

    def set_seed(self, seed: int, index: int) -> None:
        """The network's seed and this layer's index in its spec: what a layer drawing random masks
        (dropout) draws them from, with its step; the others ignore it."""

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype | None = None) -> np.ndarray:
        """An uninitialised array of this layer's own, reused by every call with the same name and shape."""
        key = (name, shape, dtype)
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) >= MAX_BUFFERS:
                self._buffers.clear()
            buf = self._buffers[key] = np.empty(shape, dtype=dtype or self.dtype)
        return buf

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.in_shape)} -> {list(self.out_shape)})"
