"""The positional kind in torch: a learned position embedding, weight[:T] added to the sequence."""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import DataError
from harness.layers import LayerSpec, ShapeError
from harness.layers.positional import check_length


class Positional(nn.Module):
    def __init__(self, max_len: int, features: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, features, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_exporting():
            try:
                check_length(x.shape[1], len(self.weight))
            except ShapeError as e:
                raise DataError(str(e)) from None
        return x + self.weight[:x.shape[1]]


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return Positional(s.get("max_len"), shape[1], dtype)
