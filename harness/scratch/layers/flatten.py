"""Flatten: every feature of a sample in one row, C order, as torch.nn.Flatten. A view, never a copy."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class Flatten(Layer):
    kind = "flatten"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return x.reshape(len(x), -1)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy.reshape(len(dy), *self.in_shape) if need_dx else None
