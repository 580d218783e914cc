"""The layer kinds, described once for every engine: keys, shapes, parameters, FLOPs, fans.

A layer in an experiment file is a table `{ type = "conv2d", filters = 6, kernel = 5 }`.
Its kind says which keys it takes (with their defaults), which input shapes it accepts,
the output shape it makes, its parameters by the names torch's `state_dict` uses, its
forward FLOPs per sample, and the fan-in and fan-out its initialisation scales by (torch's
rules: a convolution's fans count its kernel window). The spec validates against this
table; scratch, the torch twin, ONNX export and import each hold one handler per kind,
and a test checks that they all name the same kinds.

Shapes are per sample, without the batch: `(features,)` for flat data, `(channels, height,
width)` for images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """A layer cannot take the shape it is given; the spec turns it into a one-line error."""


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    params: tuple[tuple[str, float], ...] = ()

    def kwargs(self) -> dict[str, float]:
        return dict(self.params)


IDENTITY = ActivationSpec("identity")


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its kind, every key of the kind (defaults filled in; pairs as (h, w)), its activation."""

    type: str
    settings: tuple[tuple[str, Any], ...] = ()
    activation: ActivationSpec = IDENTITY

    def get(self, key: str) -> Any:
        return dict(self.settings)[key]

    @property
    def kind(self) -> type[Kind]:
        return KINDS[self.type]

    @property
    def units(self) -> int:
        """The width of a linear layer (kept for scripts written against dense-only specs)."""
        return self.get("units")

    def out_shape(self, in_shape: Shape) -> Shape:
        return self.kind.out_shape(self, in_shape)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return self.kind.param_shapes(self, in_shape)


@dataclass(frozen=True)
class Key:
    """A key of a layer kind: "int" (>= minimum), "pair" (an int or [h, w], each >= minimum),
    "bool", or "choice" (one of `choices`)."""

    form: str
    default: Any = None  # None: required, or (for "same_as") taken from another key
    minimum: int = 1
    same_as: str | None = None  # the default is this other key's value (pooling stride = kernel)
    choices: tuple[str, ...] = ()


MAX_UNITS = 1 << 20  # past a million units a layer's weights cannot fit in memory


class Kind:
    """Base of a layer kind. `keys` are its settings; `activation` says whether it takes one."""

    name: ClassVar[str]
    keys: ClassVar[dict[str, Key]] = {}
    activation: ClassVar[bool] = False

    @classmethod
    def out_shape(cls, s: LayerSpec, in_shape: Shape) -> Shape:
        raise NotImplementedError

    @classmethod
    def param_shapes(cls, s: LayerSpec, in_shape: Shape) -> dict[str, Shape]:
        return {}

    @classmethod
    def fans(cls, s: LayerSpec, in_shape: Shape) -> tuple[int, int]:
        """(fan_in, fan_out) of the weight, as torch's init computes them."""
        raise NotImplementedError(f"{cls.name} has no weights")

    @classmethod
    def flops(cls, s: LayerSpec, in_shape: Shape) -> int:
        """Forward FLOPs per sample (a multiply-add is 2)."""
        return 0


def _image(kind: str, in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ShapeError(f"{kind} takes images [channels, height, width], but its input has shape "
                         f"{list(in_shape)}" + ("; a convolution needs input_shape = [channels, height, width]"
                                                if len(in_shape) == 1 else ""))
    return in_shape  # type: ignore[return-value]


def _window_out(kind: str, size: tuple[int, int], kernel, stride, padding) -> tuple[int, int]:
    out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding, strict=True))
    if min(out) < 1:
        raise ShapeError(f"{kind} with kernel {list(kernel)}, stride {list(stride)} and padding {list(padding)} "
                         f"on a {size[0]}x{size[1]} input leaves an empty output {out[0]}x{out[1]}")
    return out  # type: ignore[return-value]


class Linear(Kind):
    """z = x Wᵀ + b on flat input, or on every step of a sequence [time, features]: weight
    (units, features), bias (units,), as torch.nn.Linear."""

    name = "linear"
    keys = {"units": Key("int")}
    activation = True

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


class Conv2d(Kind):
    """Cross-correlation over zero-padded images, as torch.nn.Conv2d: weight (filters, channels,
    kh, kw), bias (filters,); fans count the kernel window (fan_in = channels·kh·kw)."""

    name = "conv2d"
    keys = {"filters": Key("int"), "kernel": Key("pair"), "stride": Key("pair", 1),
            "padding": Key("pair", 0, minimum=0)}
    activation = True

    @classmethod
    def out_shape(cls, s, in_shape):
        _, h, w = _image(cls.name, in_shape)
        return (s.get("filters"), *_window_out(cls.name, (h, w), s.get("kernel"), s.get("stride"), s.get("padding")))

    @classmethod
    def param_shapes(cls, s, in_shape):
        c, _, _ = _image(cls.name, in_shape)
        f = s.get("filters")
        return {"weight": (f, c, *s.get("kernel")), "bias": (f,)}

    @classmethod
    def fans(cls, s, in_shape):
        c, _, _ = _image(cls.name, in_shape)
        window = math.prod(s.get("kernel"))
        return c * window, s.get("filters") * window

    @classmethod
    def flops(cls, s, in_shape):
        c, _, _ = _image(cls.name, in_shape)
        out = cls.out_shape(s, in_shape)
        return 2 * c * math.prod(s.get("kernel")) * math.prod(out)


class _Pool2d(Kind):
    keys = {"kernel": Key("pair"), "stride": Key("pair", same_as="kernel"), "padding": Key("pair", 0, minimum=0)}

    @classmethod
    def out_shape(cls, s, in_shape):
        c, h, w = _image(cls.name, in_shape)
        kernel, padding = s.get("kernel"), s.get("padding")
        if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
            raise ShapeError(f"{cls.name} padding {list(padding)} is more than half its kernel {list(kernel)} "
                             "(torch refuses it: a window could hold only padding)")
        return (c, *_window_out(cls.name, (h, w), kernel, s.get("stride"), padding))

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(cls.out_shape(s, in_shape)) * math.prod(s.get("kernel"))


class MaxPool2d(_Pool2d):
    """The largest value of each window (padding never wins), as torch.nn.MaxPool2d."""

    name = "maxpool2d"


class AvgPool2d(_Pool2d):
    """The mean of each window, padding counted as zeros (torch's count_include_pad=True)."""

    name = "avgpool2d"


class Flatten(Kind):
    """Every feature of a sample in one row, in C order (as torch.nn.Flatten)."""

    name = "flatten"

    @classmethod
    def out_shape(cls, s, in_shape):
        return (math.prod(in_shape),)


class _Recurrent(Kind):
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
    def flops(cls, s, in_shape):
        f, u, g = cls._features(in_shape), s.get("units"), cls.gates
        return 2 * g * u * (f + u) * max(in_shape[0], 1)  # the gate products; the element-wise work is small


class RNN(_Recurrent):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu (torch's `nonlinearity`)."""

    name = "rnn"
    gates = 1
    keys = {**_Recurrent.keys, "activation": Key("choice", "tanh", choices=("tanh", "relu"))}


class LSTM(_Recurrent):
    """Gates i, f, g, o in torch's order; c' = f c + i g, h' = o tanh(c')."""

    name = "lstm"
    gates = 4


class GRU(_Recurrent):
    """Gates r, z, n in torch's order; n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h."""

    name = "gru"
    gates = 3


RECURRENT: dict[str, type[Kind]] = {k.name: k for k in (RNN, LSTM, GRU)}
KINDS: dict[str, type[Kind]] = {k.name: k for k in (Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten)} | RECURRENT


def linear(units: int, activation: ActivationSpec = IDENTITY) -> LayerSpec:
    return LayerSpec("linear", (("units", units),), activation)


def shapes(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> list[Shape]:
    """The shape after each layer, the input's first: len(layers) + 1 shapes. Raises ShapeError
    naming the layer index where one does not fit."""
    out = [tuple(input_shape)]
    for i, layer in enumerate(layers):
        try:
            out.append(tuple(layer.out_shape(out[-1])))
        except ShapeError as e:
            raise ShapeError(f"layer {i} ({layer.type}): {e}") from None
    return out


def forward_flops(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> int:
    """Forward FLOPs of one sample through every layer."""
    dims = shapes(input_shape, layers)
    return sum(layer.kind.flops(layer, shape) for layer, shape in zip(layers, dims, strict=False))


def train_flops(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> int:
    """FLOPs of one training sample: each weighted layer's forward, its weight gradient (as many),
    and its input gradient (as many again) for every layer but the first weighted one, whose
    input is data; pooling's backward counts as its forward. A correct backward needs no more."""
    dims = shapes(input_shape, layers)
    total, first = 0, True
    for layer, shape in zip(layers, dims, strict=False):
        f = layer.kind.flops(layer, shape)
        if layer.param_shapes(shape):
            total += 2 * f if first else 3 * f
            first = False
        else:
            total += 2 * f
    return total


def setting_to_plain(value: Any) -> Any:
    """A setting as an experiment file writes it: a square pair as one int."""
    if isinstance(value, tuple):
        return value[0] if len(set(value)) == 1 else list(value)
    return value
