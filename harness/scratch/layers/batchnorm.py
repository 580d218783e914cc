"""Batch normalisation: per channel of an image or per feature of flat input, its backward beside it."""

from __future__ import annotations

import numpy as np

from harness.errors import SpecError
from harness.scratch import parallel
from harness.scratch.layers.base import Layer


class BatchNorm(Layer):
    """y = x̂ · weight + bias, x̂ = (x - μ) / √(σ² + eps) per channel, as torch's nn.BatchNorm1d/2d.

    Training: μ and σ² are the batch's (σ² biased), and the running statistics move by momentum
    towards μ and the unbiased σ² · m / (m - 1), m values per channel; num_batches_tracked counts
    the batches. Evaluation: μ and σ² are the running statistics, and nothing changes.

    backward (after a training forward) takes dL/dy, fills dL/dweight = Σ dy x̂ and dL/dbias = Σ dy,
    and returns dL/dx = (m g - Σ g - x̂ Σ g x̂) / (m √(σ² + eps)), g = dy · weight, the batch's
    statistics depending on every value of the channel.

    Every pass runs over ranges of samples on the engine's workers (`harness.scratch.parallel`);
    a per-channel sum is the sum of each range's partial sum.
    """

    kind = "batchnorm"
    splits_batch = True

    def _shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The shape a per-channel vector broadcasts as against x."""
        return (1, x.shape[1], *(1,) * (x.ndim - 2))

    @staticmethod
    def _sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Σ a (or Σ a·b) per channel: over the batch and every pixel. einsum over (n, c, pixels) reads
        the arrays once, where np.sum over axes (0, 2, 3) walks them with strides several times slower."""
        a3 = a.reshape(len(a), a.shape[1], -1)
        return np.einsum("ncp->c", a3) if b is None else np.einsum("ncp,ncp->c", a3, b.reshape(a3.shape))

    def _split(self, x: np.ndarray, work) -> None:
        """work(worker, s, e) over ranges of samples of x, on the workers when x is large enough."""
        parallel.over_samples(len(x), work, parallel.min_samples(x[0].size))

    def _sums(self, x: np.ndarray, a: np.ndarray, b: np.ndarray | None = None, before=None) -> np.ndarray:
        """Σ a (or Σ a·b) per channel, each worker summing its own samples after `before(s, e)`."""
        parts = self.buffer("parts", (parallel.workers(), x.shape[1]))
        parts.fill(0)

        def work(worker: int, s: int, e: int) -> None:
            if before is not None:
                before(s, e)
            parts[worker] = self._sum(a[s:e]) if b is None else self._sum(a[s:e], b[s:e])

        self._split(x, work)
        return parts.sum(axis=0)

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        shape = self._shape(x)
        eps, affine = self.spec.get("eps"), self.spec.get("affine")
        xhat = self.buffer("xhat" if training else "xhat_eval", x.shape)
        if training:
            m = x.size // x.shape[1]
            if m < 2:
                raise SpecError("batchnorm needs more than one value per channel when training; a batch of one "
                                "sample of flat input has one: use a batch_size of 2 or more")
            mean = (self._sums(x, x) / m).reshape(shape)

            def centre(s: int, e: int) -> None:
                np.subtract(x[s:e], mean, out=xhat[s:e])

            var = self._sums(x, xhat, xhat, before=centre) / m  # biased, from the centred values, as np.var
            self._update_running(mean.reshape(-1), var * (m / (m - 1)))
        else:
            mean, var = self.state["running_mean"].reshape(shape), self.state["running_var"]
        inv = 1 / np.sqrt(var + eps)
        y = self.buffer("y" if training else "y_eval", x.shape)
        scale = inv.reshape(shape)
        if affine:
            weight, bias = self.params["weight"].reshape(shape), self.params["bias"].reshape(shape)

        def normalise(worker: int, s: int, e: int) -> None:
            if not training:
                np.subtract(x[s:e], mean, out=xhat[s:e])
            np.multiply(xhat[s:e], scale, out=xhat[s:e])
            if affine:
                np.multiply(xhat[s:e], weight, out=y[s:e])
                np.add(y[s:e], bias, out=y[s:e])
            else:
                np.copyto(y[s:e], xhat[s:e])

        self._split(x, normalise)
        if training:
            self._xhat, self._inv = xhat, inv
        return y

    def _update_running(self, mean: np.ndarray, unbiased: np.ndarray) -> None:
        momentum = self.spec.get("momentum")
        for name, batch in (("running_mean", mean), ("running_var", unbiased)):
            running = self.state[name]
            running *= 1 - momentum
            running += momentum * batch
        self.state["num_batches_tracked"] += 1

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        shape, xhat = self._shape(dy), self._xhat
        parts = self.buffer("parts2", (parallel.workers(), 2, dy.shape[1]))
        parts.fill(0)

        def sums(worker: int, s: int, e: int) -> None:
            parts[worker, 0] = self._sum(dy[s:e])
            parts[worker, 1] = self._sum(dy[s:e], xhat[s:e])

        self._split(dy, sums)
        sum_dy, sum_dy_xhat = parts.sum(axis=0)
        if self.spec.get("affine"):
            self.grads["weight"][...] = sum_dy_xhat
            self.grads["bias"][...] = sum_dy
        if not need_dx:
            return None
        # dx = w·inv·(dy - Σdy/m - x̂·Σ(dy·x̂)/m): a per-channel scale of dy and of x̂, and a shift
        m = dy.size // dy.shape[1]
        scale = self._inv * self.params["weight"] if self.spec.get("affine") else self._inv
        a, b, c = scale.reshape(shape), (scale * sum_dy_xhat / m).reshape(shape), (scale * sum_dy / m).reshape(shape)
        dx, t = self.buffer("dx", dy.shape), self.buffer("t", dy.shape)

        def grad(worker: int, s: int, e: int) -> None:
            np.multiply(dy[s:e], a, out=dx[s:e])
            dx[s:e] -= np.multiply(xhat[s:e], b, out=t[s:e])
            dx[s:e] -= c

        self._split(dy, grad)
        return dx
