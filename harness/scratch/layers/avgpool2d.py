"""2-D average pooling, as torch.nn.AvgPool2d (floor mode, no dilation, count_include_pad)."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.window import Pool2d


class AvgPool2d(Pool2d):
    """The mean of each window, padding counted as zeros (torch's count_include_pad=True):
    y = Σ window / (kh·kw); backward spreads dy / (kh·kw) over every window's pixels.
    Nothing is kept for backward but the batch size."""

    kind = "avgpool2d"
    pad_value = 0.0

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n = len(x)
        y = self.buffer("y" if training else "y_eval", (n, *self.out_shape))
        total = y.reshape(-1)

        def block(worker: int, s: int, e: int) -> None:
            win = self._gather(x[s:e], worker)  # not kept: one buffer serves both modes
            np.add.reduce(win, axis=0, out=total[s * self.m:e * self.m])

        self._each_block(n, block)
        np.divide(total, self.kk, out=total)
        if training:
            self._n = n
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        n = self._n
        g = np.divide(dy, self.kk, out=self.buffer("g", (n, *self.out_shape))).reshape(-1)
        dx = self.buffer("dx", (n, *self.in_shape))

        def block(worker: int, s: int, e: int) -> None:
            dwin = np.broadcast_to(g[s * self.m:e * self.m], (self.kk, (e - s) * self.m))
            self._scatter(dwin, dx[s:e], worker)

        self._each_block(n, block)
        return dx
