"""Batch normalisation: per channel of an image or per feature of flat input, its backward beside it."""

from __future__ import annotations

import numpy as np

from harness.errors import SpecError
from harness.scratch.layers.base import Layer


class BatchNorm(Layer):
    """y = x̂ · weight + bias, x̂ = (x - μ) / √(σ² + eps) per channel, as torch's nn.BatchNorm1d/2d.

    Training: μ and σ² are the batch's (σ² biased), and the running statistics move by momentum
    towards μ and the unbiased σ² · m / (m - 1), m values per channel; num_batches_tracked counts
    the batches. Evaluation: μ and σ² are the running statistics, and nothing changes.

    backward (after a training forward) takes dL/dy, fills dL/dweight = Σ dy x̂ and dL/dbias = Σ dy,
    and returns dL/dx = (m g - Σ g - x̂ Σ g x̂) / (m √(σ² + eps)), g = dy · weight, the batch's
    statistics depending on every value of the channel.
    """

    kind = "batchnorm"

    def _shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The shape a per-channel vector broadcasts as against x."""
        return (1, x.shape[1], *(1,) * (x.ndim - 2))

    @staticmethod
    def _sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Σ a (or Σ a·b) per channel: over the batch and every pixel. einsum over (n, c, pixels) reads
        the arrays once, where np.sum over axes (0, 2, 3) walks them with strides several times slower."""
        a3 = a.reshape(len(a), a.shape[1], -1)
        return np.einsum("ncp->c", a3) if b is None else np.einsum("ncp,ncp->c", a3, b.reshape(a3.shape))

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        shape = self._shape(x)
        eps, affine = self.spec.get("eps"), self.spec.get("affine")
        xhat = self.buffer("xhat" if training else "xhat_eval", x.shape)
        if training:
            m = x.size // x.shape[1]
            if m < 2:
                raise SpecError("batchnorm needs more than one value per channel when training; a batch of one "
                                "sample of flat input has one: use a batch_size of 2 or more")
            mean = self._sum(x) / m
            np.subtract(x, mean.reshape(shape), out=xhat)
            var = self._sum(xhat, xhat) / m  # biased, from the centred values (as np.var computes it)
            self._update_running(mean, var * (m / (m - 1)))
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
            np.subtract(x, mean.reshape(shape), out=xhat)
        inv = 1 / np.sqrt(var + eps)
        xhat *= inv.reshape(shape)
        y = self.buffer("y" if training else "y_eval", x.shape)
        if affine:
            np.multiply(xhat, self.params["weight"].reshape(shape), out=y)
            y += self.params["bias"].reshape(shape)
        else:
            np.copyto(y, xhat)
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
        sum_dy, sum_dy_xhat = self._sum(dy), self._sum(dy, xhat)
        if self.spec.get("affine"):
            self.grads["weight"][...] = sum_dy_xhat
            self.grads["bias"][...] = sum_dy
        if not need_dx:
            return None
        # dx = w·inv·(dy - Σdy/m - x̂·Σ(dy·x̂)/m): a per-channel scale of dy and of x̂, and a shift
        m = dy.size // dy.shape[1]
        scale = self._inv * self.params["weight"] if self.spec.get("affine") else self._inv
        dx = np.multiply(dy, scale.reshape(shape), out=self.buffer("dx", dy.shape))
        dx -= np.multiply(xhat, (scale * sum_dy_xhat / m).reshape(shape), out=self.buffer("t", dy.shape))
        dx -= (scale * sum_dy / m).reshape(shape)
        return dx
