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

from harness.errors import SpecError, suggest, unknown_name

DTYPES = ("float32", "float64")
MAX_NAME = 64
NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
MAX_VARIANTS = 1000
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    params: tuple[tuple[str, float], ...] = ()

    def kwargs(self) -> dict[str, float]:
        return dict(self.params)


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: ActivationSpec


@dataclass(frozen=True)
class NetworkSpec:
    inputs: int
    outputs: int
    hidden: tuple[LayerSpec, ...] = ()
    output_activation: ActivationSpec = ActivationSpec("identity")
    init: str = "xavier_uniform"

    @property
    def sizes(self) -> list[int]:
        """Widths of every layer, input first: [inputs, *hidden units, outputs]."""
        return [self.inputs, *(h.units for h in self.hidden), self.outputs]

    @property
    def activations(self) -> list[ActivationSpec]:
        """The activation after each linear layer, the output's last."""
        return [*(h.activation for h in self.hidden), self.output_activation]


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
        for layer in network.get("hidden", []) if isinstance(network.get("hidden"), list) else []:
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
    # Imported here, not at the top: the engine packages import this module for its types.
    from harness.data import DATASETS
    from harness.engines import ENGINE_NAMES
    from harness.metrics import METRICS
    from harness.scratch.activations import ACTIVATIONS
    from harness.scratch.init import INITIALIZERS
    from harness.scratch.losses import LOSSES
    from harness.scratch.optim import OPTIMIZERS

    return {"activation": ACTIVATIONS, "initializer": INITIALIZERS, "loss": LOSSES,
            "optimizer": OPTIMIZERS, "dataset": DATASETS, "engine": ENGINE_NAMES, "metric": METRICS}


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


def _network(t: _Table, reg) -> NetworkSpec:
    inputs = _positive(t, "inputs", maximum=MAX_WIDTH)
    outputs = _positive(t, "outputs", maximum=MAX_WIDTH)
    layers = t.get("hidden", list, [])
    hidden = []
    for i, raw in enumerate(layers):
        layer = _Table(raw, t.key(f"hidden.{i}"))
        hidden.append(LayerSpec(units=_positive(layer, "units", maximum=MAX_WIDTH),
                                activation=_activation(layer, "activation", reg, hidden=True)))
        layer.done()
    output = _activation(t, "output_activation", reg, hidden=False, default={"name": "identity"})
    if output.name == "softmax" and outputs < 2:
        raise SpecError(f"{t.key('output_activation')} = 'softmax' needs outputs >= 2, got outputs = {outputs}; "
                        "for one output use sigmoid")
    init = _name(t, "init", "initializer", reg["initializer"], "xavier_uniform")
    t.done()
    return NetworkSpec(inputs=inputs, outputs=outputs, hidden=tuple(hidden),
                       output_activation=output, init=init)


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
    defaults = reg["optimizer"][name].defaults
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
    allowed_outputs = reg["loss"][loss].allowed_outputs
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
