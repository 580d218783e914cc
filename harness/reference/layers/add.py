"""The add kind in torch: `a + b + …`, as a module so that the twin's graph runs every layer alike."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out


def module(s: LayerSpec, shape: tuple[tuple[int, ...], ...], dtype: torch.dtype) -> nn.Module:
    return Add()
