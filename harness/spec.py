"""Experiment files: TOML in, frozen dataclasses out, every mistake a one-line `SpecError`.

`load(path, overrides)` reads a file, applies `--set key=value` overrides, and checks
every value against what is allowed. Validation lives here only: a spec that comes out
of `load` (or `from_dict`) is one both engines can run.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import catalog
from harness import layers as table
from harness.errors import SpecError, suggest, unknown_name
from harness.layers import IDENTITY, ActivationSpec, LayerSpec, ShapeError

DTYPES = ("float32", "float64")
MAX_NAME = 64
NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
MAX_VARIANTS = 1000
MAX_FILE_BYTES = 1024 * 1024


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

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The shape of one sample before every layer and after the last."""
        return table.shapes(self.input_shape, self.all_layers)

    @property
    def inputs(self) -> int:
        """Features per input sample (the product of the input shape)."""
        return math.prod(self.input_shape)

    @property
    def is_dense(self) -> bool:
        """Flat input and linear layers only: what `inputs` + `hidden` can write."""
        return len(self.input_shape) == 1 and all(layer.type == "linear" for layer in self.layers)

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
    if layer.type == "linear":
        head = str(layer.units)
    else:
        short = {"filters": "", "kernel": "k", "stride": "s", "padding": "p"}
        parts = [f"{short.get(k, k + '=')}{table.setting_to_plain(v)}".replace(" ", "") for k, v in layer.settings
                 if not (k == "stride" and v == (1, 1) and layer.type == "conv2d")
                 and not (k == "padding" and v == (0, 0))
                 and not (k == "stride" and layer.type.endswith("pool2d") and v == layer.get("kernel"))]
        head = " ".join([layer.type, *parts])
    if layer.kind.activation and layer.activation.name != "identity":
        head += f" {layer.activation.name}"
    return head


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "sgd"
    settings: tuple[tuple[str, Any], ...] = ()  # every hyperparameter of `name`, defaults filled in

    def kwargs(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def learning_rate(self) -> float:
        return self.kwargs()["learning_rate"]


@dataclass(frozen=True)
class TrainingSpec:
    loss: str
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    epochs: int = 10
    batch_size: int = 32
    shuffle: bool = True
    dtype: str = "float32"
    threads: int = 0  # 0: every core of the machine
    lr_decay: float = 1.0  # the learning rate is multiplied by this after every epoch


@dataclass(frozen=True)
class DataSpec:
    dataset: str
    path: str | None = None  # a folder of IDX files, for mnist
    train_size: int | None = None  # None: the dataset's own size
    validation: float = 0.0  # share of the training set held out


@dataclass(frozen=True)
class EvaluationSpec:
    metric: str = "accuracy"
    target: float | None = None
    every: int = 1  # evaluate on the test set every this many epochs


@dataclass(frozen=True)
class BenchSpec:
    seeds: tuple[int, ...] = (0, 1, 2)
    engines: tuple[str, ...] = ("scratch", "torch")


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    data: DataSpec
    network: NetworkSpec
    training: TrainingSpec
    evaluation: EvaluationSpec = EvaluationSpec()
    bench: BenchSpec = BenchSpec()
    description: str = ""
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # dotted key -> alternatives, expanded by `variants`

    def variants(self) -> list[tuple[str, ExperimentSpec]]:
        """Every combination of the sweep's alternatives, as (label, spec without a sweep);
        a spec with no sweep is its own single variant, labelled ""."""
        base = self.to_dict()
        base.pop("sweep", None)
        if not self.sweep:
            return [("", self)]
        out = []
        for combo in itertools.product(*(values for _, values in self.sweep)):
            raw = copy.deepcopy(base)
            label = ", ".join(f"{key}={_short(v)}" for (key, _), v in zip(self.sweep, combo, strict=True))
            for (key, _), value in zip(self.sweep, combo, strict=True):
                set_path(raw, key, copy.deepcopy(value), f"sweep {label}")
            out.append((label, from_dict(raw, source=f"sweep variant {label}")))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain TOML-like data; `from_dict(spec.to_dict()) == spec`."""
        return _plain(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys to scalar values (lists as JSON), for tracking parameters."""
        return _flatten(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# ---------------------------------------------------------------------------- loading


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Read an experiment file and apply `key=value` overrides (values in TOML syntax)."""
    path = Path(path)
    if not path.is_file():  # also refuses FIFOs and devices, which would block or never end
        raise SpecError(f"experiment file not found: {path}")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"{path}: {path.stat().st_size:,} bytes; an experiment file may have at most "
                            f"{MAX_FILE_BYTES:,}")
        with path.open("rb") as f:  # read no more than the limit, whatever the size said
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SpecError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the limit of an experiment file")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot be read: {e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be an experiment file") from None
    if not raw:
        raise SpecError(f"{path}: the file is empty; an experiment needs at least [data], [network] and [training]")
    raw.setdefault("name", path.stem)
    return from_dict(raw, overrides, source=str(path))


def from_dict(raw: Mapping[str, Any], overrides: Sequence[str] = (), source: str = "spec") -> ExperimentSpec:
    """Validate TOML-like data (as `load` reads it) into an `ExperimentSpec`."""
    raw = _normalize(copy.deepcopy(dict(raw)))
    for item in overrides:
        apply_override(raw, item)
    try:
        spec = _experiment(_Table(raw, ""))
        spec.variants()  # every combination of a sweep must be a valid experiment too
        return spec
    except SpecError as e:
        raise SpecError(f"{source}: {e}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set one `a.b.c=value` in `raw`; the value is parsed as TOML, else taken as a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(f"--set {item!r}: expected KEY=VALUE, such as training.epochs=5")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    set_path(raw, key, value, f"--set {item!r}")


def set_path(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Put `value` at the dotted `key` of `raw` (list entries by index), creating tables on the way."""
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]), create=True)
    last = parts[-1]
    if isinstance(node, list):
        _index(node, last, key)
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"{where}: {'.'.join(parts[:-1])} is a value, not a table")
    _normalize(raw)


def _child(node: Any, part: str, key: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if not isinstance(node, dict):
        raise SpecError(f"--set {key}: {key.rpartition('.')[0]} is a value, not a table")
    if part not in node and create:
        node[part] = {}
    child = node[part]
    if isinstance(child, str) and part in ("optimizer", "activation", "output_activation"):
        child = node[part] = {"name": child}
    return child


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        parent = key.rpartition(".")[0]
        raise SpecError(f"--set {key}: {parent} has {len(node)} entries, numbered from 0")
    return int(part)


def _normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Write the short forms `optimizer = "adam"` and `activation = "relu"` as tables."""
    training, network = raw.get("training"), raw.get("network")
    if isinstance(training, dict) and isinstance(training.get("optimizer"), str):
        training["optimizer"] = {"name": training["optimizer"]}
    if isinstance(network, dict):
        if isinstance(network.get("output_activation"), str):
            network["output_activation"] = {"name": network["output_activation"]}
        for key in ("hidden", "layers"):
            for layer in network.get(key, []) if isinstance(network.get(key), list) else []:
                if isinstance(layer, dict) and isinstance(layer.get("activation"), str):
                    layer["activation"] = {"name": layer["activation"]}
    return raw


# ---------------------------------------------------------------------------- reading tables

_REQUIRED = object()


class _Table:
    """One TOML table being read: typed access by key, and unknown keys refused at the end."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise SpecError(f"{path} = {raw!r}: must be a table (like {path} = {{ ... }})")
        self.raw, self.path, self.known = raw, path, set()

    def key(self, name: str) -> str:
        """The dotted key of `name` in this table; `key("")` is the prefix of every key here."""
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = _REQUIRED,
            check: Callable[[Any], bool] | None = None, allowed: str = "") -> Any:
        self.known.add(name)
        if name not in self.raw:
            if default is _REQUIRED:
                raise SpecError(f"{self.key(name)} is missing; {allowed or 'it has no default'}")
            return default
        value = _typed(self.raw[name], kind, self.key(name))
        if check is not None and not check(value):
            raise SpecError(f"{self.key(name)} = {value!r}: {allowed}")
        return value

    def table(self, name: str, default: Any = _REQUIRED) -> _Table:
        self.known.add(name)
        if name not in self.raw and default is not _REQUIRED:
            return _Table(default, self.key(name))
        if name not in self.raw:
            raise SpecError(f"{self.key(name)} is missing: add a [{self.key(name)}] table")
        return _Table(self.raw[name], self.key(name))

    def rest(self) -> dict[str, Any]:
        """Keys not yet read, for tables whose keys depend on a value (activation parameters)."""
        return {k: v for k, v in self.raw.items() if k not in self.known}

    def done(self, known: Iterable[str] = ()) -> None:
        known = self.known | set(known)
        for name in self.raw:
            if name not in known:
                where = f"[{self.path}]" if self.path else "the top level"
                raise SpecError(f"unknown key {self.key(name)!r}{suggest(name, known, self.key(''))}; "
                                f"{where} takes: {', '.join(sorted(known))}")


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list", dict: "a table"}


def _typed(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if k not in (int, float) and isinstance(value, k):
            return value
    expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
    return _fail(key, value, f"must be {expected}")


def _fail(key: str, value: Any, why: str) -> Any:
    raise SpecError(f"{key} = {value!r}: {why}")


# ---------------------------------------------------------------------------- sections


def _registries() -> dict[str, Mapping[str, Any]]:
    # Imported here, not at the top: harness.engines imports this module for its types.
    from harness.data import DATASETS
    from harness.engines import ENGINE_NAMES
    from harness.metrics import METRICS

    return {"activation": catalog.ACTIVATIONS, "initializer": dict.fromkeys(catalog.INITIALIZERS),
            "loss": catalog.LOSSES, "optimizer": catalog.OPTIMIZERS, "dataset": DATASETS, "engine": ENGINE_NAMES,
            "metric": METRICS, "layer": table.KINDS}


def _name(t: _Table, key: str, kind: str, registry: Mapping[str, Any], default: Any = _REQUIRED) -> str:
    value = t.get(key, str, default, allowed=f"known: {', '.join(sorted(registry))}")
    if value not in registry:
        raise SpecError(unknown_name(kind, value, registry, key=t.key(key)))
    return value


def _experiment(t: _Table) -> ExperimentSpec:
    reg = _registries()
    name = t.get("name", str, "experiment", check=lambda v: NAME_RE.fullmatch(v) is not None,
                 allowed=f"must be 1-{MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit "
                         "(a name is a label; files are named after it)")
    description = t.get("description", str, "")
    data = _data(t.table("data"), reg)
    network = _network(t.table("network"), reg)
    training = _training(t.table("training"), reg, network)
    evaluation = _evaluation(t.table("evaluation", {}), reg)
    bench = _bench(t.table("bench", {}), reg)
    sweep = _sweep(t, t.raw)
    t.done()
    return ExperimentSpec(name=name, description=description, data=data, network=network,
                          training=training, evaluation=evaluation, bench=bench, sweep=sweep)


def machine_cores() -> int:
    return os.cpu_count() or 1


def _sweep(t: _Table, raw: dict[str, Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`[sweep]`: dotted keys to lists of alternatives (nested tables are read as dotted keys)."""
    t.known.add("sweep")
    table = raw.get("sweep", {})
    if not isinstance(table, dict):
        _fail("sweep", table, 'must be a table of alternatives, like [sweep] "training.batch_size" = [32, 64]')
    found: list[tuple[str, tuple[Any, ...]]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            elif isinstance(v, list) and v:
                if key.split(".")[0] in ("sweep", "bench", "name", "description"):
                    _fail(f"sweep.{key}", v, "a sweep varies data, network, training or evaluation settings")
                found.append((key, tuple(v)))
            else:
                _fail(f"sweep.{key}", v, "must be a non-empty list of alternatives")

    walk(table, "")
    count = math.prod(len(v) for _, v in found)
    if count > MAX_VARIANTS:
        _fail("sweep", f"{count} variants", f"a sweep may have at most {MAX_VARIANTS} variants (the product of "
                                           "its lists' lengths)")
    return tuple(found)


def _data(t: _Table, reg) -> DataSpec:
    spec = DataSpec(
        dataset=_name(t, "dataset", "dataset", reg["dataset"]),
        path=t.get("path", str, None),
        train_size=t.get("train_size", int, None, check=lambda v: v >= 1, allowed="must be >= 1"),
        validation=t.get("validation", float, 0.0, check=lambda v: 0 <= v < 1, allowed="must be in [0, 1)"),
    )
    t.done()
    return spec


MAX_WIDTH = 1 << 20  # units, inputs, outputs: past a million the weight matrices cannot fit in memory
MAX_COUNT = 10**9  # epochs, batch size, evaluation interval


def _positive(t: _Table, key: str, default: Any = _REQUIRED, maximum: int = MAX_COUNT) -> int:
    return t.get(key, int, default, check=lambda v: 1 <= v <= maximum,
                 allowed=f"must be an integer from 1 to {maximum:,}")


def _activation(t: _Table, key: str, reg, hidden: bool, default: Any = _REQUIRED) -> ActivationSpec:
    a = t.table(key, default)
    name = _name(a, "name", "activation", reg["activation"])
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


def _network(t: _Table, reg) -> NetworkSpec:
    """`[network]` in either form: `inputs` + `hidden` (linear layers), or `input_shape` + `layers`."""
    for short, general in (("inputs", "input_shape"), ("hidden", "layers")):
        if short in t.raw and general in t.raw:
            raise SpecError(f"{t.key(short)} and {t.key(general)} are two ways to say one thing: keep one")
    if "input_shape" in t.raw:
        input_shape = _shape(t, "input_shape")
    else:
        input_shape = (_positive(t, "inputs", maximum=MAX_WIDTH),)
    outputs = _positive(t, "outputs", maximum=MAX_WIDTH)
    if "layers" in t.raw:
        layers = tuple(_layer(_Table(raw, t.key(f"layers.{i}")), reg)
                       for i, raw in enumerate(t.get("layers", list)))
    else:
        layers = tuple(_hidden(_Table(raw, t.key(f"hidden.{i}")), reg)
                       for i, raw in enumerate(t.get("hidden", list, [])))
    output = _activation(t, "output_activation", reg, hidden=False, default={"name": "identity"})
    if output.name == "softmax" and outputs < 2:
        raise SpecError(f"{t.key('output_activation')} = 'softmax' needs outputs >= 2, got outputs = {outputs}; "
                        "for one output use sigmoid")
    init = _name(t, "init", "initializer", reg["initializer"], "xavier_uniform")
    t.done()
    spec = NetworkSpec(input_shape=input_shape, outputs=outputs, layers=layers, output_activation=output, init=init)
    _check_shapes(spec, t)
    return spec


def _shape(t: _Table, key: str) -> tuple[int, ...]:
    shape = t.get(key, list, check=lambda v: 1 <= len(v) <= 3,
                  allowed="must list 1 to 3 sizes: [features], or [channels, height, width]")
    for i, n in enumerate(shape):
        _typed(n, int, t.key(f"{key}.{i}"))
        if not 1 <= n <= MAX_WIDTH:
            _fail(t.key(f"{key}.{i}"), n, f"must be an integer from 1 to {MAX_WIDTH:,}")
    return tuple(shape)


def _hidden(t: _Table, reg) -> LayerSpec:
    """One entry of the `hidden` shorthand: a linear layer whose activation must be named."""
    layer = table.linear(_positive(t, "units", maximum=MAX_WIDTH), _activation(t, "activation", reg, hidden=True))
    t.done()
    return layer


def _layer(t: _Table, reg) -> LayerSpec:
    """One entry of `layers`: its `type`, the keys of that kind (defaults filled in), its activation."""
    kind = reg["layer"][_name(t, "type", "layer type", reg["layer"])]
    settings: dict[str, Any] = {}
    for key, k in kind.keys.items():
        default = settings.get(k.same_as) if k.same_as else k.default
        if k.form == "int":
            settings[key] = _positive(t, key, default if default is not None else _REQUIRED, maximum=MAX_WIDTH)
        else:
            settings[key] = _pair(t, key, default, k.minimum)
    activation = (_activation(t, "activation", reg, hidden=True, default={"name": "identity"})
                  if kind.activation else IDENTITY)
    t.done()
    return LayerSpec(kind.name, tuple(settings.items()), activation)


def _pair(t: _Table, key: str, default: Any, minimum: int) -> tuple[int, int]:
    """An int or an [h, w] pair, as (h, w)."""
    allowed = f"must be an integer from {minimum} to {MAX_PAIR:,}, or a pair of them [height, width]"
    value = t.get(key, (int, list), _REQUIRED if default is None else default, allowed=allowed)
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= MAX_PAIR
                                 for v in pair):
        _fail(t.key(key), value, allowed)
    return pair  # type: ignore[return-value]


def _check_shapes(spec: NetworkSpec, t: _Table) -> None:
    """Every layer must take the shape the one before it gives, and none may make an empty output."""
    where = "layers" if not spec.is_dense or "layers" in t.raw else "hidden"
    shape = spec.input_shape
    for i, layer in enumerate(spec.all_layers):
        name = (f"the output layer (linear, outputs = {spec.outputs})" if i == len(spec.layers)
                else f"{t.key(f'{where}.{i}')} ({layer.type})")
        try:
            params = layer.param_shapes(shape)
            out = layer.out_shape(shape)
        except ShapeError as e:
            raise SpecError(f"{name} on input {list(shape)}: {e}") from None
        if any(math.prod(p) > MAX_PARAMS for p in params.values()):
            raise SpecError(f"{name} on input {list(shape)}: more than {MAX_PARAMS:,} parameters")
        if math.prod(out) > MAX_SAMPLE:
            raise SpecError(f"{name} on input {list(shape)}: makes {math.prod(out):,} values per sample; "
                            f"at most {MAX_SAMPLE:,} are allowed")
        shape = out


_OPTIMIZER_CHECKS: dict[str, tuple[type | tuple[type, ...], Callable[[Any], bool], str]] = {
    "learning_rate": (float, lambda v: v > 0, "must be > 0"),
    "momentum": (float, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "dampening": (float, lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "nesterov": (bool, lambda v: True, ""),
    "weight_decay": (float, lambda v: v >= 0, "must be >= 0"),
    "betas": (list, lambda v: len(v) == 2 and all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                                  and 0 <= b < 1 for b in v), "must be two numbers in [0, 1)"),
    "eps": (float, lambda v: v > 0, "must be > 0"),
}


def _optimizer(t: _Table, reg) -> OptimizerSpec:
    name = _name(t, "name", "optimizer", reg["optimizer"], "sgd")
    defaults = reg["optimizer"][name]
    settings = {}
    for key, default in defaults.items():
        kind, check, allowed = _OPTIMIZER_CHECKS[key]
        value = t.get(key, kind, default, check=check, allowed=allowed)
        settings[key] = tuple(float(b) for b in value) if key == "betas" else value
    unknown = t.rest()
    if unknown:
        key = next(iter(unknown))
        raise SpecError(f"unknown key {t.key(key)!r}{suggest(key, defaults, t.key(''))}: optimizer {name!r} takes "
                        f"{', '.join(sorted(['name', *defaults]))}")
    if settings.get("nesterov") and (settings["momentum"] <= 0 or settings["dampening"] != 0):
        raise SpecError(f"{t.key('nesterov')} = true needs momentum > 0 and dampening = 0, got "
                        f"momentum = {settings['momentum']}, dampening = {settings['dampening']}")
    return OptimizerSpec(name=name, settings=tuple(sorted(settings.items())))


def _training(t: _Table, reg, network: NetworkSpec) -> TrainingSpec:
    loss = _name(t, "loss", "loss", reg["loss"])
    allowed_outputs = reg["loss"][loss]
    out = network.output_activation.name
    if allowed_outputs is not None and out not in allowed_outputs:
        raise SpecError(f"training.loss = {loss!r} needs network.output_activation = "
                        f"{' or '.join(repr(a) for a in allowed_outputs)}, got {out!r}")
    spec = TrainingSpec(
        loss=loss,
        optimizer=_optimizer(t.table("optimizer", {}), reg),
        epochs=_positive(t, "epochs", 10),
        batch_size=_positive(t, "batch_size", 32),
        shuffle=t.get("shuffle", bool, True),
        dtype=t.get("dtype", str, "float32", check=lambda v: v in DTYPES, allowed=f"allowed: {', '.join(DTYPES)}"),
        threads=t.get("threads", int, 0, check=lambda v: 0 <= v <= machine_cores(),
                      allowed=f"must be between 0 (every core) and {machine_cores()}, the cores of this machine"),
        lr_decay=t.get("lr_decay", float, 1.0, check=lambda v: 0 < v <= 1, allowed="must be in (0, 1]"),
    )
    t.done()
    return spec


def _evaluation(t: _Table, reg) -> EvaluationSpec:
    metric = _name(t, "metric", "metric", reg["metric"], "accuracy")
    spec = EvaluationSpec(
        metric=metric,
        target=t.get("target", float, None),
        every=_positive(t, "every", 1),
    )
    t.done()
    return spec


def _bench(t: _Table, reg) -> BenchSpec:
    seeds = t.get("seeds", list, [0, 1, 2], check=bool, allowed="must list at least one seed")
    for i, s in enumerate(seeds):
        _typed(s, int, t.key(f"seeds.{i}"))
        if s < 0:
            _fail(t.key(f"seeds.{i}"), s, "must be >= 0")
    if len(set(seeds)) != len(seeds):
        _fail(t.key("seeds"), seeds, "must not repeat a seed")
    engines = t.get("engines", list, ["scratch", "torch"], check=bool, allowed="must list at least one engine")
    for i, e in enumerate(engines):
        _typed(e, str, t.key(f"engines.{i}"))
        if e not in reg["engine"]:
            raise SpecError(unknown_name("engine", e, reg["engine"], key=t.key(f"engines.{i}")))
    t.done()
    return BenchSpec(seeds=tuple(seeds), engines=tuple(dict.fromkeys(engines)))


def network_from_dict(raw: Mapping[str, Any], source: str = "network") -> NetworkSpec:
    """Validate a `[network]` table alone (as saved beside a model) into a `NetworkSpec`."""
    try:
        return _network(_Table(_normalize({"network": copy.deepcopy(dict(raw))})["network"], "network"),
                        _registries())
    except SpecError as e:
        raise SpecError(f"{source}: {e}") from None


def network_to_dict(spec: NetworkSpec) -> dict[str, Any]:
    return _plain(spec)


# ---------------------------------------------------------------------------- writing


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


def _plain(obj: Any) -> Any:
    if isinstance(obj, NetworkSpec):
        return _plain_network(obj)
    if isinstance(obj, ActivationSpec):
        return {"name": obj.name, **obj.kwargs()}
    if isinstance(obj, OptimizerSpec):
        return {"name": obj.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in obj.settings}}
    if isinstance(obj, ExperimentSpec) and obj.sweep:
        out = _plain(dataclasses.replace(obj, sweep=()))
        out["sweep"] = {key: list(values) for key, values in obj.sweep}
        return out
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None and not (f.name == "sweep" and not value):
                out[f.name] = _plain(value)
        return out
    if isinstance(obj, (tuple, list)):
        return [_plain(v) for v in obj]
    return obj


def _plain_network(net: NetworkSpec) -> dict[str, Any]:
    """A dense network in the shorthand it was (or could have been) written in, any other in full."""
    out: dict[str, Any] = {}
    if net.is_dense:
        out["inputs"] = net.inputs
        out["outputs"] = net.outputs
        out["hidden"] = [{"units": h.units, "activation": _plain(h.activation)} for h in net.layers]
    else:
        out["input_shape"] = list(net.input_shape)
        out["outputs"] = net.outputs
        out["layers"] = [{"type": layer.type, **{k: table.setting_to_plain(v) for k, v in layer.settings},
                          **({"activation": _plain(layer.activation)} if layer.kind.activation else {})}
                         for layer in net.layers]
    out["output_activation"] = _plain(net.output_activation)
    out["init"] = net.init
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v, separators=(",", ":"))
        else:
            out[key] = v
    return out
