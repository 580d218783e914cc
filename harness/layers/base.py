"""The base of the layer table: a layer's spec (`LayerSpec`, `ActivationSpec`), a kind's keys
(`Key`), and `Kind`, the class every kind of `harness.layers.KINDS` subclasses, with its defaults:
no parameters, no state, no FLOPs, a description from its settings. `WeightAndBias` is the base
of a kind whose parameters are a weight and a bias drawn by the network's initializer.

Shapes are per sample, without the batch: `(features,)` for flat data, `(time, features)` for
sequences, `(channels, height, width)` for images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # numpy only where a kind draws or makes arrays: reading a spec does not import it
    import numpy as np

Shape = tuple[int, ...]
# an initializer's law: (rng, fan_in, fan_out, weight shape) -> (weight, bias), as harness.init.INITIALIZERS holds them
Draw = Callable[["np.random.Generator", int, int, Shape], tuple["np.ndarray", "np.ndarray"]]


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
    """One layer: its kind, every key of the kind (defaults filled in; pairs as (h, w)), its activation;
    the name later layers may take its output by, and the names of the outputs it takes (`from`;
    none: the layer before it's). graph.py wires them."""

    type: str
    settings: tuple[tuple[str, Any], ...] = ()
    activation: ActivationSpec = IDENTITY
    name: str = ""
    inputs: tuple[str, ...] = ()

    def get(self, key: str) -> Any:
        return dict(self.settings)[key]

    @property
    def kind(self) -> type[Kind]:
        from harness import layers  # the package's registry, complete once the package is imported

        return layers.KINDS[self.type]

    @property
    def units(self) -> int:
        """The width of a linear layer (kept for scripts written against dense-only specs)."""
        return self.get("units")

    def out_shape(self, in_shape: Shape) -> Shape:
        return self.kind.out_shape(self, in_shape)

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return self.kind.param_shapes(self, in_shape)

    def state_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        return self.kind.state_shapes(self, in_shape)


@dataclass(frozen=True)
class Key:
    """A key of a layer kind: "int" (>= minimum), "pair" (an int or [h, w], each >= minimum),
    "float" (a number in the interval from minimum to maximum that `bounds` closes: above minimum
    and at most maximum by default), "bool", or "choice" (one of `choices`)."""

    form: str
    default: Any = None  # None: required, or (for "same_as") taken from another key
    minimum: int = 1
    maximum: float = float("inf")  # a "float" key's largest value
    same_as: str | None = None  # the default is this other key's value (pooling stride = kernel)
    choices: tuple[str, ...] = ()
    bounds: str = "(]"  # a "float" key's interval: "(]" above minimum, at most maximum; "[)" at least, below

    def admits(self, v: float) -> bool:
        """Whether a "float" key may take `v` (never NaN)."""
        low = self.minimum <= v if self.bounds[0] == "[" else self.minimum < v
        high = v <= self.maximum if self.bounds[1] == "]" else v < self.maximum
        return low and high

    def allowed(self) -> str:
        """What a "float" key takes, for the error that refuses another value."""
        low = f"{'at least' if self.bounds[0] == '[' else 'above'} {self.minimum}"
        high = (f" and {'at most' if self.bounds[1] == ']' else 'below'} {self.maximum:g}"
                if self.maximum < float("inf") else "")
        return f"must be a number {low}{high}"


MAX_UNITS = 1 << 20  # past a million units a layer's weights cannot fit in memory


class Kind:
    """Base of a layer kind: everything about it, for every engine. `keys` are its settings;
    `activation` says whether it takes one; `dense` that it is the layer the `hidden` shorthand
    of an experiment file writes; `merges` that it takes two or more inputs (`add`, `concat`), its
    methods' `in_shape` then being the tuple of their shapes; `inference_identity` that it is the
    identity at inference (dropout), so that an ONNX file, which holds the inference graph, holds
    nothing of it; `takes_ids` that it reads the network's input as integer token ids (embedding:
    the ids travel in the network's float dtype, an ONNX file takes them as int64)."""

    name: ClassVar[str]
    keys: ClassVar[dict[str, Key]] = {}
    activation: ClassVar[bool] = False
    dense: ClassVar[bool] = False
    merges: ClassVar[bool] = False
    inference_identity: ClassVar[bool] = False
    takes_ids: ClassVar[bool] = False  # its input is the network's, integer token ids (embedding)

    @classmethod
    def out_shape(cls, s: LayerSpec, in_shape: Shape) -> Shape:
        raise NotImplementedError

    @classmethod
    def param_shapes(cls, s: LayerSpec, in_shape: Shape) -> dict[str, Shape]:
        return {}

    @classmethod
    def state_shapes(cls, s: LayerSpec, in_shape: Shape) -> dict[str, Shape]:
        """{name: shape} of its non-trained state (torch's buffer names: `running_mean` ...)."""
        return {}

    @classmethod
    def initial_state(cls, s: LayerSpec, in_shape: Shape) -> dict[str, np.ndarray]:
        """The state a model starts from, in float64; zeros unless the kind says otherwise."""
        import numpy as np

        return {name: np.zeros(shape) for name, shape in cls.state_shapes(s, in_shape).items()}

    @classmethod
    def fans(cls, s: LayerSpec, in_shape: Shape) -> tuple[int, int]:
        """(fan_in, fan_out) of the weight, as torch's init computes them."""
        raise NotImplementedError(f"{cls.name} has no weights")

    @classmethod
    def initial_parameters(cls, s: LayerSpec, in_shape: Shape, rng: np.random.Generator, draw: Draw,
                           laws: Mapping[str, Draw]) -> dict[str, np.ndarray]:
        """Its parameters drawn from `rng` by the network's law `draw` (`laws` names every law, for
        a kind that picks its own), in float64, by name in `param_shapes` order. None by default."""
        return {}

    @classmethod
    def flops(cls, s: LayerSpec, in_shape: Shape) -> int:
        """Forward FLOPs per sample (a multiply-add is 2)."""
        return 0

    @classmethod
    def time_axis(cls, s: LayerSpec) -> str:
        """What it does to the time axis of a sequence [time, features]: "none" (it takes no
        sequences), "each" (the same map on every step: the axis passes through), "keep" (reads
        the steps in order and returns every one), "drop" (reads them in order, returns the last),
        "pool" (one row of them: their mean, the first or the last) or "merge" (the steps become
        features of one row)."""
        return "none"

    @classmethod
    def describe(cls, s: LayerSpec) -> str:
        """One line for `NetworkSpec.describe`: `conv2d 6 k5 p2 relu`, every setting but those at
        their default, then the activation unless it is the identity."""
        return " ".join([s.type, *cls.describe_settings(s), *cls.describe_activation(s)])

    @classmethod
    def describe_settings(cls, s: LayerSpec) -> list[str]:
        short = {"filters": "", "kernel": "k", "stride": "s", "padding": "p"}
        return [f"{short.get(k, k + '=')}{setting_to_plain(v)}".replace(" ", "") for k, v in s.settings
                if v != cls.default(s, k)]

    @classmethod
    def describe_activation(cls, s: LayerSpec) -> list[str]:
        return [s.activation.name] if cls.activation and s.activation.name != "identity" else []

    @classmethod
    def default(cls, s: LayerSpec, key: str) -> Any:
        """The value `key` takes when the file leaves it out (a pair as (h, w)); None if it is required."""
        k = cls.keys[key]
        value = s.get(k.same_as) if k.same_as else k.default
        return (value, value) if k.form == "pair" and isinstance(value, int) else value


class WeightAndBias(Kind):
    """A kind whose parameters are a weight and a bias: drawn by the network's law, weight first,
    scaled by the kind's fans."""

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        fan_in, fan_out = cls.fans(s, in_shape)
        w, b = draw(rng, fan_in, fan_out, cls.param_shapes(s, in_shape)["weight"])
        return {"weight": w, "bias": b}


def setting_to_plain(value: Any) -> Any:
    """A setting as an experiment file writes it: a square pair as one int."""
    if isinstance(value, tuple):
        return value[0] if len(set(value)) == 1 else list(value)
    return value

