"""Tokens: an image's pixels as the steps of a sequence, [n, C, H, W] -> [n, H·W, C], as torch's
x.flatten(2).transpose(1, 2); its backward, the transpose back, beside it."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class Tokens(Layer):
    """Copied into a contiguous buffer both ways: the layers after it (linear on every step) and
    before it (conv2d) read their input row-major."""

    kind = "tokens"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n, c = x.shape[:2]
        y = self.buffer("y" if training else "y_eval", (n, *self.out_shape))
        np.copyto(y, x.reshape(n, c, -1).transpose(0, 2, 1))
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        n, c = len(dy), self.in_shape[0]
        dx = self.buffer("dx", (n, *self.in_shape))
        np.copyto(dx.reshape(n, c, -1), dy.transpose(0, 2, 1))
        return dx
