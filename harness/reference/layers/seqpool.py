"""The seqpool kind in torch: x.mean(1), x[:, 0] or x[:, -1]."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


class SeqPool(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return x.mean(1)
        return x[:, 0] if self.mode == "first" else x[:, -1]


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return SeqPool(s.get("mode"))
