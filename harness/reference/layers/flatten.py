"""The flatten kind in torch: nn.Flatten."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return nn.Flatten()
