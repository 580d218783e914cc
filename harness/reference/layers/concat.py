"""The concat kind in torch: torch.cat along channels (dim 1) for images, along the last axis otherwise."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


class Concat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


def module(s: LayerSpec, shape: tuple[tuple[int, ...], ...], dtype: torch.dtype) -> nn.Module:
    return Concat(1 if len(shape[0]) == 3 else -1)
