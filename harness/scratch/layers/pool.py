"""2-D max and average pooling, as torch.nn.MaxPool2d and AvgPool2d (floor mode, no dilation).

Both gather the windows of a block of samples into a window-major buffer (kh·kw, b·C·OH·OW),
one strided copy, so that every reduction after it runs over contiguous rows: NumPy's ufuncs
are several times slower on strided operands than on contiguous ones, and its copies are not.
Backward scatters window-major gradients back with one strided copy per kernel offset, or an
add where windows overlap (stride < kernel). Blocks of samples keep the window buffers in the
core's cache: a whole batch's would not fit, and every pass over it would go to memory.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.scratch.layers.base import Layer

BLOCK_BYTES = 1 << 20  # the window buffer of a block of samples, about half a core's L2


class _Pool2d(Layer):
    pad_value: float

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        self.kernel, self.stride, self.padding = spec.get("kernel"), spec.get("stride"), spec.get("padding")
        self.kk = self.kernel[0] * self.kernel[1]
        self.overlap = any(s < k for s, k in zip(self.stride, self.kernel, strict=True))
        c, h, w = self.in_shape
        _, oh, ow = self.out_shape
        self.m = c * oh * ow  # outputs per sample
        self.padded_shape = (c, h + 2 * self.padding[0], w + 2 * self.padding[1])
        # every input pixel lies in exactly one window: backward needs no zero fill
        self.tiled = (self.stride == self.kernel and self.padding == (0, 0)
                      and (h, w) == (oh * self.kernel[0], ow * self.kernel[1]))
        self.block = max(1, BLOCK_BYTES // (self.kk * self.m * self.dtype.itemsize))  # samples per block

    def _blocks(self, n: int):
        for start in range(0, n, self.block):
            yield start, min(start + self.block, n)

    def _work(self, name: str, b: int, shape: tuple[int, ...]) -> np.ndarray:
        """A work buffer for a block of b samples: one allocation of a whole block serves all."""
        return self.buffer(name, (self.block, *shape))[:b]

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """(kh, kw, b, C, OH, OW) view of the windows of x (already padded, any strides)."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        _, oh, ow = self.out_shape
        sn, sc, sy, sx = x.strides
        return as_strided(x, (kh, kw, len(x), x.shape[1], oh, ow), (sy, sx, sn, sc, sh * sy, sw * sx))

    def _gather(self, x: np.ndarray) -> np.ndarray:
        """The windows of a block x, padded with `pad_value`, copied into a (kh·kw, b·C·OH·OW) buffer."""
        b = len(x)
        ph, pw = self.padding
        if ph or pw:
            _, h, w = self.in_shape
            xp = self._work("xp", b, self.padded_shape)
            xp.fill(self.pad_value)
            xp[:, :, ph:ph + h, pw:pw + w] = x
            x = xp
        win = self.buffer("win", (self.kk, self.block * self.m))[:, :b * self.m]
        win.reshape(*self.kernel, b, *self.out_shape)[...] = self._windows(x)
        return win

    def _scatter(self, dwin: np.ndarray, dx: np.ndarray) -> None:
        """Sums window-major gradients (kh·kw, b·C·OH·OW) of a block into its pixels, dx (b, C, H, W)."""
        b = len(dx)
        ph, pw = self.padding
        _, h, w = self.in_shape
        dxp = self._work("dxp", b, self.padded_shape) if ph or pw else dx
        if not self.tiled:
            dxp.fill(0)
        views = self._windows(dxp)
        dwin = dwin.reshape(*self.kernel, b, *self.out_shape)
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                if self.overlap:
                    np.add(views[i, j], dwin[i, j], out=views[i, j])
                else:
                    views[i, j][...] = dwin[i, j]
        if dxp is not dx:
            dx[...] = dxp[:, :, ph:ph + h, pw:pw + w]


class MaxPool2d(_Pool2d):
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
        for s, e in self._blocks(n):
            win = self._gather(x[s:e])
            np.maximum.reduce(win, axis=0, out=top[s * self.m:e * self.m])  # NaN propagates, as torch's max
            if training:
                self._winners(win, top[s * self.m:e * self.m], mask[:, s * self.m:e * self.m])
        if training:
            self._mask = mask
        return y

    def _winners(self, win: np.ndarray, top: np.ndarray, mask: np.ndarray) -> None:
        won = self.buffer("won", (self.block * self.m,), np.dtype(bool))[:len(top)]
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
        for s, e in self._blocks(n):
            cut = slice(s * self.m, e * self.m)
            dwin = self.buffer("dwin", (self.kk, self.block * self.m))[:, :(e - s) * self.m]
            np.multiply(mask[:, cut], flat_dy[cut], out=dwin)
            self._scatter(dwin, dx[s:e])
        return dx


class AvgPool2d(_Pool2d):
    """The mean of each window, padding counted as zeros (torch's count_include_pad=True):
    y = Σ window / (kh·kw); backward spreads dy / (kh·kw) over every window's pixels.
    Nothing is kept for backward but the batch size."""

    kind = "avgpool2d"
    pad_value = 0.0

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n = len(x)
        y = self.buffer("y" if training else "y_eval", (n, *self.out_shape))
        total = y.reshape(-1)
        for s, e in self._blocks(n):
            win = self._gather(x[s:e])  # not kept: one buffer serves both modes
            np.add.reduce(win, axis=0, out=total[s * self.m:e * self.m])
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
        for s, e in self._blocks(n):
            dwin = np.broadcast_to(g[s * self.m:e * self.m], (self.kk, (e - s) * self.m))
            self._scatter(dwin, dx[s:e])
        return dx
