"""The dropout kind in torch: `MaskedDropout`, nn.Dropout with the engine-neutral masks of
`harness.layers.dropout.mask` in place of torch's own random numbers."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec
from harness.layers.dropout import mask


class MaskedDropout(nn.Module):
    """x · mask in training mode (mask = `mask(seed, index, step, x.shape, p)` in x's dtype, `step`
    counting its training forwards), x in eval mode: the scratch layer's masks, call for call.
    No parameters and no buffers, as nn.Dropout."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.set_seed(0, 0)

    def set_seed(self, seed: int, index: int) -> None:
        """Draw the masks of the run of `seed` for the layer at `index` of `spec.all_layers`, from step 0."""
        self.seed, self.index, self.step = seed, index, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        m = torch.from_numpy(mask(self.seed, self.index, self.step, tuple(x.shape), self.p)).to(x.dtype)
        self.step += 1
        return x * m

    def extra_repr(self) -> str:
        return f"p={self.p}"


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return MaskedDropout(s.get("p"))
