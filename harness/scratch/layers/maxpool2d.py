"""2-D max pooling, as torch.nn.MaxPool2d (floor mode, no dilation); the windows as window.py gathers them."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.window import Pool2d


class MaxPool2d(Pool2d):
    """The largest value of each window, padding (-inf) never winning, NaN winning as in torch.

    Backward routes each window's gradient to one pixel, the one torch's CPU kernel picks:
    scanning the window row by row, it keeps the first pixel strictly greater than the max so
    far, so among equal maxima (all-zero ReLU outputs, say) the first in scan order wins, and
    among NaNs the last. forward keeps a one-hot mask (kh·kw, N·C·OH·OW) of the winners:
    mask[o] = (window[o] == max) and no earlier offset won. Windows that this misses, those
    holding a NaN (no value equals NaN) or whose max is -inf (padding would tie), are redone
    by torch's scan itself, restricted to real pixels.
    """

    kind = "maxpool2d"
    pad_value = -np.inf

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        c, h, w = self.in_shape
        _, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        rows = np.arange(oh)[None, :, None] * sh + np.arange(kh)[:, None, None] - ph  # (kh, OH, 1)
        cols = np.arange(ow)[None, None, :] * sw + np.arange(kw)[:, None, None] - pw  # (kw, 1, OW)
        real_r, real_c = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        self._real = (real_r[:, None] & real_c[None, :]).reshape(self.kk, oh * ow)  # offset o of window p is a pixel

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n = len(x)
        y = self.buffer("y" if training else "y_eval", (n, *self.out_shape))
        top = y.reshape(-1)
        mask = self.buffer("mask", (self.kk, n * self.m), np.dtype(bool)) if training else None

        def block(worker: int, s: int, e: int) -> None:
            win = self._gather(x[s:e], worker)
            np.maximum.reduce(win, axis=0, out=top[s * self.m:e * self.m])  # NaN propagates, as torch's max
            if training:
                self._winners(win, top[s * self.m:e * self.m], mask[:, s * self.m:e * self.m], worker)

        self._each_block(n, block)
        if training:
            self._mask = mask
        return y

    def _winners(self, win: np.ndarray, top: np.ndarray, mask: np.ndarray, worker: int) -> None:
        won = self.buffer(f"won/{worker}", (self.block * self.m,), np.dtype(bool))[:len(top)]
        np.equal(win[0], top, out=mask[0])
        won[...] = mask[0]
        for o in range(1, self.kk):
            np.equal(win[o], top, out=mask[o])
            np.greater(mask[o], won, out=mask[o])  # and not won before
            np.logical_or(won, mask[o], out=won)
        redo = np.logical_not(won, out=won)
        if self.padding != (0, 0):
            redo |= top == -np.inf
        if redo.any():
            self._torch_scan(win, mask, np.flatnonzero(redo))

    def _torch_scan(self, win: np.ndarray, mask: np.ndarray, where: np.ndarray) -> None:
        """torch's CPU rule on the windows `where`: start at the first real pixel with -inf; take
        each real pixel that is greater, or NaN."""
        vals = win[:, where]
        real = self._real[:, where % self._real.shape[1]]
        best = np.full(len(where), -np.inf, dtype=win.dtype)
        pick = np.argmax(real, axis=0)
        for o in range(self.kk):
            take = real[o] & ((vals[o] > best) | np.isnan(vals[o]))
            best[take] = vals[o, take]
            pick[take] = o
        mask[:, where] = np.arange(self.kk)[:, None] == pick

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        mask = self._mask
        n = mask.shape[1] // self.m
        dx = self.buffer("dx", (n, *self.in_shape))
        flat_dy = dy.reshape(-1)

        def block(worker: int, s: int, e: int) -> None:
            cut = slice(s * self.m, e * self.m)
            dwin = self.buffer(f"dwin/{worker}", (self.kk, self.block * self.m))[:, :(e - s) * self.m]
            np.multiply(mask[:, cut], flat_dy[cut], out=dwin)
            self._scatter(dwin, dx[s:e], worker)

        self._each_block(n, block)
        return dx
