"""The layernorm kind: layer normalisation over the features of flat input or of each step of a sequence."""

from __future__ import annotations

import math

from harness.layers.base import Key, Kind, Shape, ShapeError


class LayerNorm(Kind):
    """y = (x - mean) / √(var + eps) · weight + bias over the last axis (the features), the mean
    and the (biased) variance of each sample's row, or of each step's row of a sequence [time,
    features]: torch.nn.LayerNorm(features). Parameters weight (ones) and bias (zeros), (features,);
    the same at training and at inference, no state."""

    name = "layernorm"
    keys = {"eps": Key("float", 1e-5, minimum=0)}

    @classmethod
    def features(cls, in_shape: Shape) -> int:
        if len(in_shape) not in (1, 2):
            raise ShapeError(f"layernorm normalises flat input [features] or each step of a sequence [time, "
                             f"features], but its input has shape {list(in_shape)}")
        return in_shape[-1]

    @classmethod
    def out_shape(cls, s, in_shape):
        cls.features(in_shape)
        return tuple(in_shape)

    @classmethod
    def param_shapes(cls, s, in_shape):
        d = cls.features(in_shape)
        return {"weight": (d,), "bias": (d,)}

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        import numpy as np

        d = cls.features(in_shape)
        return {"weight": np.ones(d), "bias": np.zeros(d)}

    @classmethod
    def flops(cls, s, in_shape):
        # per value: the mean's add, the centring, the square and its add, the scale, weight and bias
        return 7 * math.prod(max(d, 1) for d in in_shape)  # an open time length counts one step

    @classmethod
    def time_axis(cls, s):
        return "each"
