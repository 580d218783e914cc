"""The batchnorm kind in torch: nn.BatchNorm2d over an image's channels, nn.BatchNorm1d over flat features."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(shape[0], eps=s.get("eps"), momentum=s.get("momentum"), affine=s.get("affine"), dtype=dtype)
