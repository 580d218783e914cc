"""Embedding: one learned row per token id, as torch's nn.Embedding; its backward, a scatter-add, beside it."""

from __future__ import annotations

import numpy as np

from harness.layers.embedding import token_ids
from harness.scratch.layers.base import Layer


class Embedding(Layer):
    """y[n, t] = W[ids[n, t]] with W (vocab, dim). backward fills dL/dW[v] = Σ of dL/dy[n, t] over
    every (n, t) whose id is v (a token repeated in a batch adds up), by `np.add.at`; the ids, data,
    have no gradient. Ids outside [0, vocab) are a DataError, not an IndexError."""

    kind = "embedding"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        ids = token_ids(x, self.spec.get("vocab"))
        w = self.params["weight"]
        y = self.buffer("y" if training else "y_eval", (*ids.shape, w.shape[1]))
        np.take(w, ids, axis=0, out=y)
        if training:
            self._ids = ids
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        g = self.grads["weight"]
        g.fill(0)
        np.add.at(g, self._ids.reshape(-1), dy.reshape(-1, g.shape[1]))
        if not need_dx:
            return None
        dx = self.buffer("dx", self._ids.shape)
        dx.fill(0)
        return dx
