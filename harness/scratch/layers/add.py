"""The sum of two or more outputs of one shape, as torch's `a + b`: a residual connection's merge."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class Add(Layer):
    """y = x₁ + x₂ + …; backward hands dy to every input. The first input is given dy itself, the
    others a copy each in a buffer of their own, so that no two inputs share a gradient array (the
    network adds up gradients in place, and an activation writes over its gradient)."""

    kind = "add"

    def forward(self, xs: list[np.ndarray], training: bool = True) -> np.ndarray:
        y = self.buffer("y" if training else "y_eval", xs[0].shape)
        np.add(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> list[np.ndarray] | None:
        if not need_dx:
            return None
        copies = []
        for i in range(1, len(self.in_shape)):
            dx = self.buffer(f"dx{i}", dy.shape)
            np.copyto(dx, dy)
            copies.append(dx)
        return [dy, *copies]
