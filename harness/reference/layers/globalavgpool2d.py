"""The globalavgpool2d kind in torch: nn.AdaptiveAvgPool2d(1) then nn.Flatten, as users write it."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
