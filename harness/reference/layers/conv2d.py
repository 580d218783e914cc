"""The conv2d kind in torch: nn.Conv2d."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return nn.Conv2d(shape[0], s.get("filters"), s.get("kernel"), s.get("stride"), s.get("padding"), dtype=dtype)
