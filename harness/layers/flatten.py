"""The flatten kind: every feature of a sample in one row."""

from __future__ import annotations

import math

from harness.layers.base import Kind


class Flatten(Kind):
    """Every feature of a sample in one row, in C order (as torch.nn.Flatten)."""

    name = "flatten"

    @classmethod
    def out_shape(cls, s, in_shape):
        return (math.prod(in_shape),)

    @classmethod
    def time_axis(cls, s):
        return "merge"
