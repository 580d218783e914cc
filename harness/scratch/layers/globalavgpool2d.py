"""Global average pooling, as torch's nn.AdaptiveAvgPool2d(1) then a flatten: [n, C, H, W] -> [n, C]."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class GlobalAvgPool2d(Layer):
    """y[c] = Σ x[c] / (H·W); backward spreads dy[c] / (H·W) over every pixel of channel c.
    Nothing is kept for backward but the batch size."""

    kind = "globalavgpool2d"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        y = self.buffer("y" if training else "y_eval", (len(x), *self.out_shape))
        np.mean(x, axis=(2, 3), out=y)
        if training:
            self._n = len(x)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        _, h, w = self.in_shape
        dx = self.buffer("dx", (self._n, *self.in_shape))
        np.divide(dy[:, :, None, None], h * w, out=dx)  # broadcast over every pixel
        return dx
