"""The linear kind: z = x Wᵀ + b, on flat input or on every step of a sequence."""

from __future__ import annotations

from harness.layers.base import Key, Shape, ShapeError, WeightAndBias


class Linear(WeightAndBias):
    """z = x Wᵀ + b on flat input, or on every step of a sequence [time, features]: weight
    (units, features), bias (units,), as torch.nn.Linear."""

    name = "linear"
    keys = {"units": Key("int")}
    activation = True
    dense = True

    @classmethod
    def _features(cls, in_shape: Shape) -> int:
        if len(in_shape) not in (1, 2):
            raise ShapeError(f"linear takes flat input [features] (or a sequence [time, features]), but its "
                             f"input has shape {list(in_shape)}; put {{ type = \"flatten\" }} before it")
        return in_shape[-1]

    @classmethod
    def out_shape(cls, s, in_shape):
        cls._features(in_shape)
        return (*in_shape[:-1], s.get("units"))

    @classmethod
    def param_shapes(cls, s, in_shape):
        return {"weight": (s.get("units"), cls._features(in_shape)), "bias": (s.get("units"),)}

    @classmethod
    def fans(cls, s, in_shape):
        return cls._features(in_shape), s.get("units")

    @classmethod
    def flops(cls, s, in_shape):
        steps = max(in_shape[0], 1) if len(in_shape) == 2 else 1  # an open time length counts one step
        return 2 * cls._features(in_shape) * s.get("units") * steps

    @classmethod
    def time_axis(cls, s):
        return "each"

    @classmethod
    def describe_settings(cls, s):
        return []

    @classmethod
    def describe(cls, s):
        return " ".join([str(s.get("units")), *cls.describe_activation(s)])
