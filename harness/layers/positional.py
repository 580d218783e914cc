"""The positional kind: a learned embedding of each position added to a sequence [time, features]."""

from __future__ import annotations

import math

from harness.layers.base import Key, Kind, ShapeError


class Positional(Kind):
    """y[t] = x[t] + weight[t] for t < time: a learned position embedding, weight (max_len,
    features) drawn from N(0, 0.02²) (GPT-2's law); any sequence of at most max_len steps."""

    name = "positional"
    keys = {"max_len": Key("int")}

    @classmethod
    def out_shape(cls, s, in_shape):
        if len(in_shape) != 2:
            raise ShapeError(f"positional takes sequences [time, features], but its input has shape {list(in_shape)}")
        check_length(in_shape[0], s.get("max_len"))
        return tuple(in_shape)

    @classmethod
    def param_shapes(cls, s, in_shape):
        if len(in_shape) != 2:
            cls.out_shape(s, in_shape)
        return {"weight": (s.get("max_len"), in_shape[1])}

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        return {"weight": rng.normal(0.0, 0.02, cls.param_shapes(s, in_shape)["weight"])}

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(in_shape)  # one add a value

    @classmethod
    def time_axis(cls, s):
        return "keep"


def check_length(steps: int, max_len: int) -> None:
    """A ShapeError for a sequence longer than the positions the layer has."""
    if steps > max_len:
        raise ShapeError(f"a sequence of {steps} steps is longer than positional's max_len = {max_len}; "
                         f"raise max_len to at least {steps}")
