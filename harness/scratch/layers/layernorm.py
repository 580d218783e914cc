"""Layer normalisation over the last axis, its backward beside it."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.base import Layer


class LayerNorm(Layer):
    """y = x̂ · weight + bias, x̂ = (x - μ) / √(σ² + eps), μ and σ² (biased) the mean and variance
    of each row of the last axis, as torch's nn.LayerNorm(features): each sample's features, or each
    step's of a sequence. Training and evaluation compute the same.

    backward takes dL/dy, fills dL/dweight = Σ_rows dy x̂ and dL/dbias = Σ_rows dy, and returns
    dL/dx = (g - mean(g) - x̂ mean(g x̂)) / √(σ² + eps) per row, g = dy · weight.
    """

    kind = "layernorm"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        xhat = np.subtract(x, mean, out=self.buffer("xhat" if training else "xhat_eval", x.shape))
        var = np.einsum("...f,...f->...", xhat, xhat)[..., None] / x.shape[-1]
        inv = 1 / np.sqrt(var + self.spec.get("eps"))
        xhat *= inv
        y = np.multiply(xhat, self.params["weight"], out=self.buffer("y" if training else "y_eval", x.shape))
        y += self.params["bias"]
        if training:
            self._xhat, self._inv = xhat, inv
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xhat = self._xhat
        rows, xrows = dy.reshape(-1, dy.shape[-1]), xhat.reshape(-1, dy.shape[-1])
        self.grads["weight"][...] = np.einsum("rf,rf->f", rows, xrows)
        self.grads["bias"][...] = rows.sum(axis=0)
        if not need_dx:
            return None
        g = np.multiply(dy, self.params["weight"], out=self.buffer("dx", dy.shape))
        mean_g = g.mean(axis=-1, keepdims=True)
        mean_gx = np.einsum("...f,...f->...", g, xhat)[..., None] / dy.shape[-1]
        g -= mean_g
        g -= xhat * mean_gx
        g *= self._inv
        return g
