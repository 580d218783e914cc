"""The maxpool2d kind in torch: nn.MaxPool2d."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return nn.MaxPool2d(s.get("kernel"), s.get("stride"), s.get("padding"))
