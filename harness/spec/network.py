"""The `[network]` of an experiment file: its spec, how it is read (either form) and written back.

`inputs` + `hidden` is shorthand for `input_shape = [inputs]` and linear layers; `input_shape` +
`layers` names each layer's kind from the layer table (`harness.layers`), which also checks
that every layer takes the shape the one before it gives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harness import layers as table
from harness.errors import SpecError
from harness.layers import IDENTITY, INPUT, ActivationSpec, LayerSpec, ShapeError, Wiring, WiringError
from harness.spec.tables import REQUIRED, Table, fail, name_in, positive, typed

MAX_WIDTH = 1 << 20  # units, inputs, outputs: past a million the weight matrices cannot fit in memory
MAX_COUNT = 10**9  # epochs, batch size, evaluation interval



@dataclass(frozen=True)
class NetworkSpec:
    """The layers of the file (`hidden` or `layers`) and the output layer, a linear layer of
    `outputs` units that `outputs` and `output_activation` describe. `inputs` + `hidden` in a
    file is shorthand for `input_shape = [inputs]` and linear layers: both build this."""

    input_shape: tuple[int, ...]
    outputs: int
    layers: tuple[LayerSpec, ...] = ()
    output_activation: ActivationSpec = IDENTITY
    init: str = "xavier_uniform"

    @property
    def all_layers(self) -> tuple[LayerSpec, ...]:
        """Every layer, the output layer last; parameter names count in this list (`layers.i.weight`)."""
        return (*self.layers, table.linear(self.outputs, self.output_activation))

    @cached_property
    def wiring(self) -> Wiring:
        """Which outputs every layer takes and the shapes on each edge (`harness.layers.graph`)."""
        return table.wire(self.input_shape, self.all_layers)

    @property
    def shapes(self) -> list:
        """What each layer is given (one sample's shape; a tuple of shapes for a layer that merges
        several), then the shape the output layer makes. For a chain: the shape before every layer
        and after the last."""
        w = self.wiring
        return [*w.inputs, w.outputs[-1]]

    @property
    def is_chain(self) -> bool:
        """Every layer takes the output of the one before it (no `from`)."""
        return not any(layer.inputs for layer in self.layers)

    @property
    def inputs(self) -> int:
        """Features per input sample (the product of the input shape)."""
        return math.prod(self.input_shape)

    @property
    def is_dense(self) -> bool:
        """Flat input and linear layers only: what `inputs` + `hidden` can write."""
        return len(self.input_shape) == 1 and all(layer.kind.dense and not layer.name and not layer.inputs
                                                  for layer in self.layers)

    @property
    def hidden(self) -> tuple[LayerSpec, ...]:
        return self.layers

    @property
    def sizes(self) -> list[int]:
        """Widths of every layer of a dense network, input first: [inputs, *hidden units, outputs]."""
        if not self.is_dense:
            raise ValueError("sizes describes dense networks only; ask `shapes` of a network with other layers")
        return [self.inputs, *(h.units for h in self.layers), self.outputs]

    @property
    def activations(self) -> list[ActivationSpec]:
        """The activation after each layer that takes one, the output's last."""
        return [layer.activation for layer in self.all_layers if layer.kind.activation]

    def describe(self) -> str:
        """One line: `784 -> 128 relu -> 10 softmax`, or `[1, 28, 28] -> conv2d 6 k5 p2 relu -> ...`."""
        first = str(self.inputs) if len(self.input_shape) == 1 else str(list(self.input_shape))
        return " -> ".join([first, *(_describe_layer(layer) for layer in self.all_layers)])


def _describe_layer(layer: LayerSpec) -> str:
    """The kind's line, then where the layer takes its input from and the name it gives its output."""
    parts = [layer.kind.describe(layer)]
    if layer.inputs:
        parts.append(f"<- {'+'.join(layer.inputs)}")
    if layer.name:
        parts.append(f"as {layer.name}")
    return " ".join(parts)


def _activation(t: Table, key: str, reg, hidden: bool, default: Any = REQUIRED) -> ActivationSpec:
    a = t.table(key, default)
    name = name_in(a, "name", "activation", reg["activation"])
    cls = reg["activation"][name]
    if hidden and not cls.hidden_ok:
        hidden_names = sorted(k for k, c in reg["activation"].items() if c.hidden_ok)
        raise SpecError(f"{a.key('name')} = {name!r}: {name} is for the output layer only; "
                        f"hidden layers take: {', '.join(hidden_names)}")
    params = []
    for p in sorted(cls.defaults):
        params.append((p, a.get(p, float, cls.defaults[p])))
    if name == "elu" and dict(params)["alpha"] <= 0:
        raise SpecError(f"{a.key('alpha')} = {dict(params)['alpha']!r}: must be > 0")
    unknown = a.rest()
    if unknown:
        takes = ", ".join(sorted(cls.defaults)) or "no parameters"
        raise SpecError(f"unknown key {a.key(next(iter(unknown)))!r}: activation {name!r} takes {takes}")
    return ActivationSpec(name, tuple(params))


MAX_PAIR = 1 << 16  # kernel, stride, padding
MAX_SAMPLE = 1 << 26  # values in one sample at any layer: past this one sample fills gigabytes
MAX_PARAMS = 1 << 28  # parameters of one layer


def read_network(t: Table, reg) -> NetworkSpec:
    """`[network]` in either form: `inputs` + `hidden` (linear layers), or `input_shape` + `layers`."""
    for short, general in (("inputs", "input_shape"), ("hidden", "layers")):
        if short in t.raw and general in t.raw:
            raise SpecError(f"{t.key(short)} and {t.key(general)} are two ways to say one thing: keep one")
    if "input_shape" in t.raw:
        input_shape = _shape(t, "input_shape")
    else:
        input_shape = (positive(t, "inputs", maximum=MAX_WIDTH),)
    outputs = positive(t, "outputs", maximum=MAX_WIDTH)
    if "layers" in t.raw:
        layers = tuple(_layer(Table(raw, t.key(f"layers.{i}")), reg)
                       for i, raw in enumerate(t.get("layers", list)))
    else:
        layers = tuple(_hidden(Table(raw, t.key(f"hidden.{i}")), reg)
                       for i, raw in enumerate(t.get("hidden", list, [])))
    output = _activation(t, "output_activation", reg, hidden=False, default={"name": "identity"})
    if output.name == "softmax" and outputs < 2:
        raise SpecError(f"{t.key('output_activation')} = 'softmax' needs outputs >= 2, got outputs = {outputs}; "
                        "for one output use sigmoid")
    init = name_in(t, "init", "initializer", reg["initializer"], "xavier_uniform")
    t.done()
    spec = NetworkSpec(input_shape=input_shape, outputs=outputs, layers=layers, output_activation=output, init=init)
    _check_shapes(spec, t)
    return spec


def _shape(t: Table, key: str) -> tuple[int, ...]:
    """[features], [time, features] (time 0: sequences of any length), or [channels, height, width]."""
    shape = t.get(key, list, check=lambda v: 1 <= len(v) <= 3,
                  allowed="must list 1 to 3 sizes: [features], [time, features] or [channels, height, width]")
    for i, n in enumerate(shape):
        typed(n, int, t.key(f"{key}.{i}"))
        lowest = 0 if len(shape) == 2 and i == 0 else 1
        if not lowest <= n <= MAX_WIDTH:
            fail(t.key(f"{key}.{i}"), n, f"must be an integer from {lowest} to {MAX_WIDTH:,}"
                 + (" (0: sequences of any length)" if lowest == 0 else ""))
    return tuple(shape)


def _hidden(t: Table, reg) -> LayerSpec:
    """One entry of the `hidden` shorthand: a linear layer whose activation must be named."""
    layer = table.linear(positive(t, "units", maximum=MAX_WIDTH), _activation(t, "activation", reg, hidden=True))
    t.done()
    return layer


def _layer(t: Table, reg) -> LayerSpec:
    """One entry of `layers`: its `type`, the keys of that kind (defaults filled in), its activation."""
    kind = reg["layer"][name_in(t, "type", "layer type", reg["layer"])]
    settings: dict[str, Any] = {}
    for key, k in kind.keys.items():
        default = settings.get(k.same_as) if k.same_as else k.default
        if k.form == "int":
            settings[key] = positive(t, key, default if default is not None else REQUIRED, maximum=MAX_WIDTH)
        elif k.form == "float":
            settings[key] = t.get(key, float, default, check=k.admits, allowed=k.allowed())
        elif k.form == "bool":
            settings[key] = t.get(key, bool, default)
        elif k.form == "choice":
            settings[key] = _choice(t, key, default, k.choices)
        else:
            settings[key] = _pair(t, key, default, k.minimum)
    activation = (_activation(t, "activation", reg, hidden=True, default={"name": "identity"})
                  if kind.activation else IDENTITY)
    name = t.get("name", str, "", check=lambda v: bool(NAME.fullmatch(v)) and v != INPUT,
                 allowed=f"must be 1 to 64 letters, digits, '_' or '-', starting with a letter, and not {INPUT!r} "
                         "(the network's input)")
    sources = t.get("from", (str, list), [])
    sources = [sources] if isinstance(sources, str) else sources
    for i, source in enumerate(sources):
        typed(source, str, t.key(f"from.{i}"))
    if "from" in t.raw and not sources:
        fail(t.key("from"), sources, "must name at least one earlier layer (or 'input')")
    t.done()
    return LayerSpec(kind.name, tuple(settings.items()), activation, name, tuple(sources))


NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")  # a layer's name, as `from` refers to it


def _choice(t: Table, key: str, default: str, choices: tuple[str, ...]) -> str:
    """One name of `choices`; `{ name = "relu" }` too, the table form an activation may be written in."""
    value = t.raw.get(key, default)
    if isinstance(value, dict) and set(value) == {"name"}:
        t.raw[key] = value = value["name"]
    return t.get(key, str, default, check=lambda v: v in choices, allowed=f"allowed: {', '.join(choices)}")


def _pair(t: Table, key: str, default: Any, minimum: int) -> tuple[int, int]:
    """An int or an [h, w] pair, as (h, w)."""
    allowed = f"must be an integer from {minimum} to {MAX_PAIR:,}, or a pair of them [height, width]"
    value = t.get(key, (int, list), REQUIRED if default is None else default, allowed=allowed)
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= MAX_PAIR
                                 for v in pair):
        fail(t.key(key), value, allowed)
    return pair  # type: ignore[return-value]


def _check_shapes(spec: NetworkSpec, t: Table) -> None:
    """Every layer must take what its sources give (the layer before it, or those `from` names),
    every output must be used, and no layer may make an empty or oversized output."""
    where = "layers" if not spec.is_dense or "layers" in t.raw else "hidden"

    def name(i: int) -> str:
        layer = spec.all_layers[i]
        return (f"the output layer (linear, outputs = {spec.outputs})" if i == len(spec.layers)
                else f"{t.key(f'{where}.{i}')} ({layer.type}{', ' + repr(layer.name) if layer.name else ''})")

    try:
        wiring = spec.wiring
    except WiringError as e:
        raise SpecError(f"{name(e.layer)}{' ' if str(e).startswith('on ') else ': '}{e}") from None
    for i, (layer, given, out) in enumerate(zip(spec.all_layers, wiring.inputs, wiring.outputs, strict=True)):
        try:
            params = layer.param_shapes(given)
        except ShapeError as e:
            raise SpecError(f"{name(i)} on input {_shown(given)}: {e}") from None
        if any(math.prod(p) > MAX_PARAMS for p in params.values()):
            raise SpecError(f"{name(i)} on input {_shown(given)}: more than {MAX_PARAMS:,} parameters")
        if math.prod(out) > MAX_SAMPLE:
            raise SpecError(f"{name(i)} on input {_shown(given)}: makes {math.prod(out):,} values per sample; "
                            f"at most {MAX_SAMPLE:,} are allowed")


def _shown(given: Any) -> str:
    """A layer's input as a message shows it: [1, 28, 28], or [16, 28, 28] + [16, 28, 28] for a merge."""
    return " + ".join(str(list(x)) for x in given) if given and isinstance(given[0], tuple) else str(list(given))


def plain_network(net: NetworkSpec) -> dict[str, Any]:
    """A dense network in the shorthand it was (or could have been) written in, any other in full."""
    out: dict[str, Any] = {}
    if net.is_dense:
        out["inputs"] = net.inputs
        out["outputs"] = net.outputs
        out["hidden"] = [{"units": h.units, "activation": _plain_activation(h.activation)} for h in net.layers]
    else:
        out["input_shape"] = list(net.input_shape)
        out["outputs"] = net.outputs
        out["layers"] = [{"type": layer.type, **{k: table.setting_to_plain(v) for k, v in layer.settings},
                          **({"activation": _plain_activation(layer.activation)} if layer.kind.activation else {}),
                          **({"name": layer.name} if layer.name else {}),
                          **({"from": list(layer.inputs)} if layer.inputs else {})}
                         for layer in net.layers]
    out["output_activation"] = _plain_activation(net.output_activation)
    out["init"] = net.init
    return out


def _plain_activation(a: ActivationSpec) -> dict[str, Any]:
    return {"name": a.name, **a.kwargs()}
