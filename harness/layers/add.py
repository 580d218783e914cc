"""The add kind: the element-wise sum of two or more outputs of one shape (a residual connection)."""

from __future__ import annotations

import math

from harness.layers.base import Kind, ShapeError


class Add(Kind):
    """x₁ + x₂ + …, as torch writes `a + b`; its activation after the sum (ResNet's ReLU after the skip)."""

    name = "add"
    activation = True
    merges = True

    @classmethod
    def out_shape(cls, s, in_shape):
        first = tuple(in_shape[0])
        if any(tuple(shape) != first for shape in in_shape[1:]):
            raise ShapeError(f"add needs inputs of one shape, given {', '.join(str(list(x)) for x in in_shape)}")
        return first

    @classmethod
    def flops(cls, s, in_shape):
        return (len(in_shape) - 1) * math.prod(in_shape[0])

    @classmethod
    def time_axis(cls, s):
        return "each"
