"""The globalavgpool2d kind: the mean of each channel over the whole image, [C, H, W] -> [C]."""

from __future__ import annotations

import math

from harness.layers.base import Kind, ShapeError


class GlobalAvgPool2d(Kind):
    """The mean of each channel over every pixel (torch's nn.AdaptiveAvgPool2d(1) then a flatten,
    or x.mean((2, 3))): an image [C, H, W] becomes C features."""

    name = "globalavgpool2d"

    @classmethod
    def out_shape(cls, s, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"needs an image [channels, height, width], got {list(in_shape)}")
        return (in_shape[0],)

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(in_shape)  # one add a pixel (the C divisions are noise)
