"""The tokens kind in torch: x.flatten(2).transpose(1, 2), as a vision transformer writes it."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


class Tokens(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return Tokens()
