"""Dropout: the mask of `harness.layers.dropout.mask` while training, the identity when evaluating."""

from __future__ import annotations

import numpy as np

from harness.layers.dropout import mask
from harness.scratch.layers.base import Layer


class Dropout(Layer):
    """y = x · mask while training, mask = `mask(seed, index, step, x.shape, p)` (0 or 1 / (1 - p),
    in the layer's dtype), `step` counting its training forwards; y = x when evaluating. The torch
    twin draws the same masks from the same (seed, index, step), so the engines stay in lockstep.

    backward (after a training forward) returns dL/dx = dL/dy · mask."""

    kind = "dropout"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_seed(0, 0)

    def set_seed(self, seed: int, index: int) -> None:
        """Draw the masks of the run of `seed` for the layer at `index` of `spec.all_layers`, from step 0."""
        self.seed, self.index, self.step = seed, index, 0

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not training:
            y = self.buffer("y_eval", x.shape)
            np.copyto(y, x)
            return y
        m = self.buffer("mask", x.shape)
        m[...] = mask(self.seed, self.index, self.step, x.shape, self.spec.get("p"))
        self.step += 1
        self._mask = m
        return np.multiply(x, m, out=self.buffer("y", x.shape))

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return np.multiply(dy, self._mask, out=self.buffer("dx", dy.shape))
