"""The layernorm kind in torch: nn.LayerNorm over the last axis."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return nn.LayerNorm(shape[-1], eps=s.get("eps"), dtype=dtype)
