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

    def _axes(self, x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes a channel's statistics run over, and the shape a per-channel vector broadcasts as."""
        return (0, *range(2, x.ndim)), (1, x.shape[1], *(1,) * (x.ndim - 2))

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        axes, shape = self._axes(x)
        eps, affine = self.spec.get("eps"), self.spec.get("affine")
        if training:
            m = x.size // x.shape[1]
            if m < 2:
                raise SpecError("batchnorm needs more than one value per channel when training; a batch of one "
                                "sample of flat input has one: use a batch_size of 2 or more")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            self._update_running(mean, var * (m / (m - 1)))
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        inv = 1 / np.sqrt(var + eps)
        xhat = np.subtract(x, mean.reshape(shape), out=self.buffer("xhat" if training else "xhat_eval", x.shape))
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
        axes, shape = self._axes(dy)
        xhat = self._xhat
        if self.spec.get("affine"):
            np.sum(dy * xhat, axis=axes, out=self.grads["weight"])
            np.sum(dy, axis=axes, out=self.grads["bias"])
        if not need_dx:
            return None
        g = dy * self.params["weight"].reshape(shape) if self.spec.get("affine") else dy
        m = dy.size // dy.shape[1]
        dx = np.multiply(g, m, out=self.buffer("dx", dy.shape))
        dx -= g.sum(axis=axes).reshape(shape)
        dx -= xhat * (g * xhat).sum(axis=axes).reshape(shape)
        dx *= (self._inv / m).reshape(shape)
        return dx
