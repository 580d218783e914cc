"""The 2-D convolution layer: im2col over strided views of a padded copy, then BLAS products.

y[n, f, oh, ow] = b[f] + Σ_{c,i,j} W[f, c, i, j] · xp[n, c, oh·sh + i, ow·sw + j], xp the input
zero-padded by (ph, pw): torch.nn.Conv2d's cross-correlation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.scratch import parallel
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
    splits_batch = True

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

    def _pad(self, x: np.ndarray, flat: np.ndarray, s: int, e: int) -> None:
        """Samples s..e of x zero-padded into the flat buffer of the whole batch, rows Wr wide."""
        c, h, w = self.in_shape
        ph, pw = self.padding
        xp = flat[s * c * self.hp * self.wr:e * c * self.hp * self.wr].reshape(e - s, c, self.hp, self.wr)
        xp[:, :, :ph] = 0
        xp[:, :, ph + h:] = 0
        xp[:, :, ph:ph + h, :pw] = 0
        xp[:, :, ph:ph + h, pw + w:] = 0
        xp[:, :, ph:ph + h, pw:pw + w] = x[s:e]

    def _flat(self, n: int, name: str) -> np.ndarray:
        """A flat buffer for n padded samples, with `slack` zeros after them for the last junk window."""
        size = n * self.in_shape[0] * self.hp * self.wr
        flat = self.buffer(name, (size + self.slack,))
        flat[size:] = 0
        return flat

    def _windows(self, flat: np.ndarray, n: int) -> np.ndarray:
        """(n, C, kh, kw, OH, Wq): the input under every kernel offset, a view of the padded buffer."""
        c, (kh, kw), (sh, sw) = self.in_shape[0], self.kernel, self.stride
        e = flat.itemsize
        row, chan = self.wr * e, self.hp * self.wr * e
        return as_strided(flat, (n, c, kh, kw, self.out_shape[1], self.wq), (c * chan, chan, row, e, sh * row, sw * e))

    def _blocks(self, s: int, e: int):
        for start in range(s, e, self.block):
            yield start, min(start + self.block, e)

    def _work(self, name: str, worker: int, b: int, shape: tuple[int, ...]) -> np.ndarray:
        """A worker's buffer for a block of b samples: one allocation of a whole block serves all."""
        return self.buffer(f"{name}/{worker}", (self.block, *shape))[:b]

    def _im2col(self, windows: np.ndarray, worker: int) -> np.ndarray:
        """The im2col matrix of a block of samples, (b, K + 1, L), its last row ones for the bias."""
        cols = self._work("cols", worker, len(windows), (self.k + 1, self.l))
        cols[:, :self.k].reshape(windows.shape)[...] = windows
        cols[:, self.k] = 1
        return cols

    # -- forward and backward -----------------------------------------------------------------

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n = len(x)
        f, oh, ow = self.out_shape
        flat = self._flat(n, "xp" if training else "xp_eval")
        windows = self._windows(flat, n)
        wb = self.buffer("wb", (f, self.k + 1))
        wb[:, :self.k] = self.params["weight"].reshape(f, self.k)
        wb[:, self.k] = self.params["bias"]
        y = self.buffer("y" if training else "y_eval", (n, f, oh, ow))

        def work(worker: int, start: int, end: int) -> None:
            # Each worker pads its own samples. A junk window of its last sample reads the next
            # sample's first elements, which another worker may be writing: junk is cropped away.
            self._pad(x, flat, start, end)
            for s, e in self._blocks(start, end):
                cols = self._im2col(windows[s:e], worker)
                if self.wq == ow:
                    np.matmul(wb, cols, out=y[s:e].reshape(e - s, f, self.l))
                else:
                    wide = np.matmul(wb, cols, out=self._work("y_wide", worker, e - s, (f, self.l)))
                    y[s:e] = wide.reshape(e - s, f, oh, self.wq)[..., :ow]

        parallel.over_samples(n, work)
        if training:
            self._xp, self._n = flat, n
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        flat, n = self._xp, self._n
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        windows = self._windows(flat, n)
        dwt = self.buffer("dwt", (n, self.k + 1, f))
        chan = self.hp * self.wr
        cropped = need_dx and not (ph == pw == 0 and self.wr == w)
        if need_dx:
            wt = self.params["weight"].transpose(3, 1, 2, 0).reshape(kw * c, kh * f)  # Wₜ[(j, c), (i, f)]
            dflat = self.buffer("dxp", (n * c * chan + self.slack,))
            e_ = dflat.itemsize
            # dx under kernel column j, each sample's run cut at its own end: what would run past
            # it is the zero gradient of junk windows, and another worker's samples lie there
            shifted = [as_strided(dflat[j:], (n, c * self.p - j // sw), (c * chan * e_, sw * e_)) for j in range(kw)]
            dx = self.buffer("dx", (n, c, h, w)) if cropped else dflat[:n * c * h * w].reshape(n, c, h, w)

        def work(worker: int, start: int, end: int) -> None:
            if need_dx:
                dflat[start * c * chan:end * c * chan] = 0
            for s, e in self._blocks(start, end):
                b = e - s
                cols = self._im2col(windows[s:e], worker)
                if need_dx:
                    dyd = self._work("dy_dilated", worker, b, (f, self.hd, self.wq))
                    dyd.fill(0)
                    dyd[:, :, kh - 1:kh - 1 + (oh - 1) * sh + 1:sh, :ow] = dy[s:e]
                if need_dx and sh == 1:
                    dyw = dyd[:, :, kh - 1:kh - 1 + oh].reshape(b, f, self.l)
                elif self.wq == ow:
                    dyw = dy[s:e].reshape(b, f, self.l)
                else:
                    dyw = self._work("dy_wide", worker, b, (f, oh, self.wq))
                    dyw[..., ow:] = 0
                    dyw[..., :ow] = dy[s:e]
                    dyw = dyw.reshape(b, f, self.l)
                np.matmul(cols, dyw.transpose(0, 2, 1), out=dwt[s:e])
                if need_dx:
                    stack = self._work("dy_rows", worker, b, (kh, f, self.p))  # S: dy under kernel row i
                    for i in range(kh):
                        stack[:, i] = dyd[:, :, kh - 1 - i:kh - 1 - i + self.hp].reshape(b, f, self.p)
                    z = self._work("z", worker, b, (kw * c, self.p))
                    z = np.matmul(wt, stack.reshape(b, kh * f, self.p), out=z)
                    z = z.reshape(b, kw, c * self.p)
                    for j in range(kw):
                        run = shifted[j][s:e]
                        np.add(run, z[:, j, :run.shape[1]], out=run)
            if cropped:
                padded = dflat[start * c * chan:end * c * chan].reshape(end - start, c, self.hp, self.wr)
                dx[start:end] = padded[:, :, ph:ph + h, pw:pw + w]

        parallel.over_samples(n, work)
        # Σ over samples by add.reduce, not by a product with ones: OpenBLAS's threaded gemv is erratic
        dwb = np.add.reduce(dwt, axis=0, out=self.buffer("dwb", (self.k + 1, f)))
        self.grads["weight"][...] = dwb[:self.k].reshape(c, kh, kw, f).transpose(3, 0, 1, 2)
        self.grads["bias"][...] = dwb[self.k]
        return dx if need_dx else None
