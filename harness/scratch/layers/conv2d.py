"""The 2-D convolution layer: im2col over strided views of a padded copy, then BLAS products.

y[n, f, oh, ow] = b[f] + Σ_{c,i,j} W[f, c, i, j] · xp[n, c, oh·sh + i, ow·sw + j], xp the input
zero-padded by (ph, pw): torch.nn.Conv2d's cross-correlation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.scratch.layers.base import Layer

BLOCK_BYTES = 1 << 20  # a block's largest work buffer, about half a core's L2: larger blocks fall out of it


class Conv2d(Layer):
    """Convolution as one BLAS product per sample, over blocks of samples that fit in cache.

    Layout. The padded input is copied into a flat buffer with rows `Wr` wide (the padded width
    rounded up to a multiple of sw). Every output row is computed `Wq = Wr / sw` wide instead of
    OW: the Wq - OW extra columns are windows that wrap onto the next input row, junk that is
    cropped away. With sh = 1 an output row then starts where the previous one ends, so a row
    of the im2col matrix is one evenly spaced run of OH·Wq input elements, not OH runs of OW:
    NumPy's cost per run, not per element, is what dominates strided copies of small images.
    Junk reads run past a channel's end into the next one or into the buffer's `slack`;
    backward gives junk a zero gradient, so it adds nothing to dW and scatters zeros.

    forward, per sample: y = [W | b] [cols; 1], (F, K+1) x (K+1, L), K = C·kh·kw, L = OH·Wq:
    the bias rides in the product as a row of ones under the im2col matrix.

    backward, per sample: [dW | db]ᵀ = [cols; 1] dyᵀ, (K+1, L) x (L, F), summed over samples.
    For dx, the kernel is split into its rows and its columns. S stacks dy shifted down by
    each kernel row i (kh copies of whole rows of dy, dilated by sh and zero-padded); then
    Z = Wₜ S, with Wₜ[(j, c), (i, f)] = W[f, c, i, j], (kw·C, kh·F) x (kh·F, Hp·Wq); then each
    kernel column j adds Z's rows for j onto the padded input gradient shifted by j: kw adds,
    one strided run per sample each. Plain col2im (dcols = W₂ᵀ dy, then one shifted add per
    kernel offset) makes kh·kw adds out of a matrix kh times larger than Z.

    forward keeps only the padded input; backward recomputes the im2col matrix block by block,
    cheaper than keeping a matrix kh·kw times the input's size, which would not stay in cache.
    Per-sample products (NumPy's matmul on a stack) beat one product over a block's b·L
    columns: OpenBLAS handles such skinny shapes (F = 6 rows) poorly.
    """

    kind = "conv2d"

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (ph, pw) = spec.get("kernel"), spec.get("stride"), spec.get("padding")
        self.kernel, self.stride, self.padding = (kh, kw), (sh, sw), (ph, pw)
        self.hp = h + 2 * ph
        self.wr = -(-(w + 2 * pw) // sw) * sw
        self.wq = self.wr // sw
        self.k = c * kh * kw
        self.l = oh * self.wq  # columns of the im2col matrix
        self.p = self.hp * self.wq  # columns of Z: every padded input row
        self.hd = self.hp + kh - 1  # rows of dy dilated by sh and padded, from which S is cut
        self.slack = kw  # how far the last junk window reads (and its zero gradient writes) past the buffer
        per_sample = max((self.k + 1) * self.l, f * self.l, f * self.hd * self.wq, kh * f * self.p, kw * c * self.p)
        per_sample *= self.dtype.itemsize
        self.block = max(1, BLOCK_BYTES // per_sample)  # samples per block

    # -- geometry -----------------------------------------------------------------------------

    def _padded(self, x: np.ndarray, name: str) -> np.ndarray:
        """x zero-padded into a flat buffer of rows Wr wide, with `slack` zeros after it."""
        n = len(x)
        c, h, w = self.in_shape
        ph, pw = self.padding
        size = n * c * self.hp * self.wr
        flat = self.buffer(name, (size + self.slack,))
        xp = flat[:size].reshape(n, c, self.hp, self.wr)
        xp[:, :, :ph] = 0
        xp[:, :, ph + h:] = 0
        xp[:, :, ph:ph + h, :pw] = 0
        xp[:, :, ph:ph + h, pw + w:] = 0
        flat[size:] = 0
        xp[:, :, ph:ph + h, pw:pw + w] = x
        return flat

    def _windows(self, flat: np.ndarray, n: int) -> np.ndarray:
        """(n, C, kh, kw, OH, Wq): the input under every kernel offset, a view of the padded buffer."""
        c, (kh, kw), (sh, sw) = self.in_shape[0], self.kernel, self.stride
        e = flat.itemsize
        row, chan = self.wr * e, self.hp * self.wr * e
        return as_strided(flat, (n, c, kh, kw, self.out_shape[1], self.wq), (c * chan, chan, row, e, sh * row, sw * e))

    def _blocks(self, n: int):
        for start in range(0, n, self.block):
            yield start, min(start + self.block, n)

    def _work(self, name: str, b: int, shape: tuple[int, ...]) -> np.ndarray:
        """A work buffer for a block of b samples: one allocation of a whole block serves all."""
        return self.buffer(name, (self.block, *shape))[:b]

    def _im2col(self, windows: np.ndarray) -> np.ndarray:
        """The im2col matrix of a block of samples, (b, K + 1, L), its last row ones for the bias."""
        cols = self._work("cols", len(windows), (self.k + 1, self.l))
        cols[:, :self.k].reshape(windows.shape)[...] = windows
        cols[:, self.k] = 1
        return cols

    # -- forward and backward -----------------------------------------------------------------

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n = len(x)
        f, oh, ow = self.out_shape
        flat = self._padded(x, "xp" if training else "xp_eval")
        windows = self._windows(flat, n)
        wb = self.buffer("wb", (f, self.k + 1))
        wb[:, :self.k] = self.params["weight"].reshape(f, self.k)
        wb[:, self.k] = self.params["bias"]
        y = self.buffer("y" if training else "y_eval", (n, f, oh, ow))
        for s, e in self._blocks(n):
            cols = self._im2col(windows[s:e])
            if self.wq == ow:
                np.matmul(wb, cols, out=y[s:e].reshape(e - s, f, self.l))
            else:
                wide = np.matmul(wb, cols, out=self._work("y_wide", e - s, (f, self.l)))
                y[s:e] = wide.reshape(e - s, f, oh, self.wq)[..., :ow]
        if training:
            self._xp, self._n = flat, n
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        flat, n = self._xp, self._n
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        windows = self._windows(flat, n)
        dwt = self.buffer("dwt", (n, self.k + 1, f))
        if need_dx:
            wt = self.params["weight"].transpose(3, 1, 2, 0).reshape(kw * c, kh * f)  # Wₜ[(j, c), (i, f)]
            chan = self.hp * self.wr
            dflat = self.buffer("dxp", (n * c * chan + self.slack,))
            dflat.fill(0)
            e_ = dflat.itemsize
            shifted = as_strided(dflat, (kw, n, c * self.p), (e_, c * chan * e_, sw * e_))  # dx under kernel column j
        for s, e in self._blocks(n):
            b = e - s
            cols = self._im2col(windows[s:e])
            if need_dx:
                dyd = self._work("dy_dilated", b, (f, self.hd, self.wq))
                dyd.fill(0)
                dyd[:, :, kh - 1:kh - 1 + (oh - 1) * sh + 1:sh, :ow] = dy[s:e]
            if need_dx and sh == 1:
                dyw = dyd[:, :, kh - 1:kh - 1 + oh].reshape(b, f, self.l)
            elif self.wq == ow:
                dyw = dy[s:e].reshape(b, f, self.l)
            else:
                dyw = self._work("dy_wide", b, (f, oh, self.wq))
                dyw[..., ow:] = 0
                dyw[..., :ow] = dy[s:e]
                dyw = dyw.reshape(b, f, self.l)
            np.matmul(cols, dyw.transpose(0, 2, 1), out=dwt[s:e])
            if need_dx:
                stack = self._work("dy_rows", b, (kh, f, self.p))  # S: dy under kernel row i
                for i in range(kh):
                    stack[:, i] = dyd[:, :, kh - 1 - i:kh - 1 - i + self.hp].reshape(b, f, self.p)
                z = np.matmul(wt, stack.reshape(b, kh * f, self.p), out=self._work("z", b, (kw * c, self.p)))
                z = z.reshape(b, kw, c * self.p)
                for j in range(kw):
                    np.add(shifted[j, s:e], z[:, j], out=shifted[j, s:e])

        # Σ over samples by add.reduce, not by a product with ones: OpenBLAS's threaded gemv is erratic
        dwb = np.add.reduce(dwt, axis=0, out=self.buffer("dwb", (self.k + 1, f)))
        self.grads["weight"][...] = dwb[:self.k].reshape(c, kh, kw, f).transpose(3, 0, 1, 2)
        self.grads["bias"][...] = dwb[self.k]
        if not need_dx:
            return None
        ph, pw = self.padding
        if ph == pw == 0 and self.wr == w:
            return dflat[:n * c * h * w].reshape(n, c, h, w)
        dx = self.buffer("dx", (n, c, h, w))
        dx[...] = dflat[:n * c * chan].reshape(n, c, self.hp, self.wr)[:, :, ph:ph + h, pw:pw + w]
        return dx
