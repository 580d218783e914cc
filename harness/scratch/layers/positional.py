"""Positional: a learned position embedding added to a sequence; its backward beside it."""

from __future__ import annotations

import numpy as np

from harness.errors import DataError
from harness.layers import ShapeError
from harness.layers.positional import check_length
from harness.scratch.layers.base import Layer


class Positional(Layer):
    """y[n, t] = x[n, t] + W[t] for the T steps of the batch, W (max_len, features). backward fills
    dL/dW[t] = Σ_n dL/dy[n, t] for t < T (0 past T) and passes dL/dx = dL/dy on."""

    kind = "positional"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        t = x.shape[1]
        try:
            check_length(t, self.spec.get("max_len"))
        except ShapeError as e:
            raise DataError(str(e)) from None
        y = self.buffer("y" if training else "y_eval", x.shape)
        np.add(x, self.params["weight"][:t], out=y)
        if training:
            self._t = t
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        g, t = self.grads["weight"], self._t
        np.sum(dy, axis=0, out=g[:t])
        g[t:] = 0
        return dy if need_dx else None
