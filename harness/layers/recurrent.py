"""What the recurrent kinds share (rnn, lstm, gru): sequences in, torch's four tensors, their draw."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from harness.layers.base import Key, Kind, Shape, ShapeError

if TYPE_CHECKING:
    import numpy as np


class Recurrent(Kind):
    """A recurrent layer over sequences [time, features] (time 0: any length), as torch's
    nn.RNN/LSTM/GRU with batch_first: parameters `weight_ih_l0` (gates·units, features),
    `weight_hh_l0` (gates·units, units), `bias_ih_l0` and `bias_hh_l0` (gates·units,), gates in
    torch's order. Out: every step's state [time, units] with `return_sequences`, else the last
    step's [units]. `init` names the initializer of its weights; torch's default draws all four
    from U(±1/√units)."""

    gates: ClassVar[int]
    keys = {"units": Key("int"), "return_sequences": Key("bool", False),
            "init": Key("choice", "torch_default", choices=("xavier_uniform", "xavier_normal", "he_uniform",
                                                            "he_normal", "uniform01", "torch_default"))}

    @classmethod
    def _features(cls, in_shape: Shape) -> int:
        if len(in_shape) != 2:
            raise ShapeError(f"{cls.name} takes sequences [time, features], but its input has shape "
                             f"{list(in_shape)}" + ("; a recurrent layer needs input_shape = [time, features]"
                                                    if len(in_shape) == 1 else ""))
        return in_shape[1]

    @classmethod
    def out_shape(cls, s, in_shape):
        cls._features(in_shape)
        return (in_shape[0], s.get("units")) if s.get("return_sequences") else (s.get("units"),)

    @classmethod
    def param_shapes(cls, s, in_shape):
        f, u, g = cls._features(in_shape), s.get("units"), cls.gates
        return {"weight_ih_l0": (g * u, f), "weight_hh_l0": (g * u, u), "bias_ih_l0": (g * u,), "bias_hh_l0": (g * u,)}

    @classmethod
    def fans(cls, s, in_shape):
        return s.get("units"), cls.gates * s.get("units")

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        """The four tensors, input side first (weight, then bias), by the layer's own `init` (not the
        network's). torch's default draws every one from U(±1/√units); another initializer sees each
        weight's own fans (its columns in, its rows out) and draws its biases as it would a linear layer's."""
        shapes = cls.param_shapes(s, in_shape)
        init = s.get("init")
        draw = laws[init]
        units = shapes["weight_hh_l0"][1]
        out: dict[str, np.ndarray] = {}
        for side in ("ih", "hh"):
            shape = shapes[f"weight_{side}_l0"]
            fan_in = units if init == "torch_default" else shape[1]
            out[f"weight_{side}_l0"], out[f"bias_{side}_l0"] = draw(rng, fan_in, shape[0], shape)
        return {name: out[name] for name in shapes}

    @classmethod
    def flops(cls, s, in_shape):
        f, u, g = cls._features(in_shape), s.get("units"), cls.gates
        return 2 * g * u * (f + u) * max(in_shape[0], 1)  # the gate products; the element-wise work is small

    @classmethod
    def time_axis(cls, s):
        return "keep" if s.get("return_sequences") else "drop"

    @classmethod
    def describe(cls, s):
        """`lstm 64`, `gru 32 seq`, `rnn 16 relu`."""
        settings = dict(s.settings)
        return " ".join([s.type, str(settings["units"]), *(["seq"] if settings["return_sequences"] else []),
                         *([settings["activation"]] if settings.get("activation", "tanh") != "tanh" else [])])
