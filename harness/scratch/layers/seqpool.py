"""SeqPool: one row of a sequence, [n, T, F] -> [n, F]: the mean of its steps, its first or its last;
the backward of each beside it."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class SeqPool(Layer):
    """mean: y = Σ_t x[:, t] / T, dL/dx[:, t] = dL/dy / T; first and last: y = x[:, 0] or x[:, -1],
    dL/dx that step's dL/dy and 0 elsewhere. Only the input's shape is kept for backward."""

    kind = "seqpool"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        mode = self.spec.get("mode")
        y = self.buffer("y" if training else "y_eval", (len(x), x.shape[2]))
        if mode == "mean":
            np.mean(x, axis=1, out=y)
        else:
            np.copyto(y, x[:, 0 if mode == "first" else -1])
        if training:
            self._shape = x.shape
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        mode = self.spec.get("mode")
        dx = self.buffer("dx", self._shape)
        if mode == "mean":
            np.divide(dy[:, None, :], self._shape[1], out=dx)  # broadcast over every step
        else:
            dx.fill(0)
            dx[:, 0 if mode == "first" else -1] = dy
        return dx
