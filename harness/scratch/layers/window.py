"""What 2-D max and average pooling share (floor mode, no dilation): windows gathered and scattered back.

Both gather the windows of a block of samples into a window-major buffer (kh·kw, b·C·OH·OW),
one strided copy, so that every reduction after it runs over contiguous rows: NumPy's ufuncs
are several times slower on strided operands than on contiguous ones, and its copies are not.
Backward scatters window-major gradients back with one strided copy per kernel offset, or an
add where windows overlap (stride < kernel). Blocks of samples keep the window buffers in the
core's cache: a whole batch's would not fit, and every pass over it would go to memory.
The blocks are split between the engine's workers (`harness.scratch.parallel`), each with
buffers of its own.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.scratch import parallel
from harness.scratch.layers.base import Layer

BLOCK_BYTES = 1 << 20  # the window buffer of a block of samples, about half a core's L2


class Pool2d(Layer):
    """A pooling window over each channel; its subclass reduces the windows its own way."""

    pad_value: float
    splits_batch = True

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

    def _each_block(self, n: int, fn) -> None:
        """fn(worker, s, e) for every block [s, e) of [0, n), the blocks split between the workers."""
        def work(worker: int, start: int, end: int) -> None:
            for s in range(start, end, self.block):
                fn(worker, s, min(s + self.block, end))

        parallel.over_samples(n, work, parallel.min_samples(int(np.prod(self.in_shape))))

    def _work(self, name: str, worker: int, b: int, shape: tuple[int, ...]) -> np.ndarray:
        """A worker's buffer for a block of b samples: one allocation of a whole block serves all."""
        return self.buffer(f"{name}/{worker}", (self.block, *shape))[:b]

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """(kh, kw, b, C, OH, OW) view of the windows of x (already padded, any strides)."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        _, oh, ow = self.out_shape
        sn, sc, sy, sx = x.strides
        return as_strided(x, (kh, kw, len(x), x.shape[1], oh, ow), (sy, sx, sn, sc, sh * sy, sw * sx))

    def _gather(self, x: np.ndarray, worker: int) -> np.ndarray:
        """The windows of a block x, padded with `pad_value`, copied into a (kh·kw, b·C·OH·OW) buffer."""
        b = len(x)
        ph, pw = self.padding
        if ph or pw:
            _, h, w = self.in_shape
            xp = self._work("xp", worker, b, self.padded_shape)
            xp.fill(self.pad_value)
            xp[:, :, ph:ph + h, pw:pw + w] = x
            x = xp
        win = self.buffer(f"win/{worker}", (self.kk, self.block * self.m))[:, :b * self.m]
        win.reshape(*self.kernel, b, *self.out_shape)[...] = self._windows(x)
        return win

    def _scatter(self, dwin: np.ndarray, dx: np.ndarray, worker: int) -> None:
        """Sums window-major gradients (kh·kw, b·C·OH·OW) of a block into its pixels, dx (b, C, H, W)."""
        b = len(dx)
        ph, pw = self.padding
        _, h, w = self.in_shape
        dxp = self._work("dxp", worker, b, self.padded_shape) if ph or pw else dx
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
