"""The seqpool kind: one row from a sequence [time, features] -> [features]."""

from __future__ import annotations

import math

from harness.layers.base import Key, Kind, ShapeError


class SeqPool(Kind):
    """The mean of the steps of a sequence [time, features] (`mode = "mean"`, torch's x.mean(1)),
    or its first step (`"first"`, x[:, 0], a class token's place) or its last (`"last"`, x[:, -1])."""

    name = "seqpool"
    keys = {"mode": Key("choice", "mean", choices=("mean", "first", "last"))}

    @classmethod
    def out_shape(cls, s, in_shape):
        if len(in_shape) != 2:
            raise ShapeError(f"seqpool takes sequences [time, features], but its input has shape {list(in_shape)}")
        return (in_shape[1],)

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(in_shape) if s.get("mode") == "mean" else 0

    @classmethod
    def time_axis(cls, s):
        return "pool"
