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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import catalog
from harness import layers as table
from harness.errors import SpecError, suggest, unknown_name
from harness.layers import ActivationSpec, LayerSpec
from harness.spec_network import MAX_WIDTH, NetworkSpec, plain_network, read_network
from harness.spec_tables import Table, fail, name_in, positive, typed

__all__ = ["MAX_WIDTH", "ActivationSpec", "BenchSpec", "DataSpec", "EvaluationSpec", "ExperimentSpec", "LayerSpec",
           "NetworkSpec", "OptimizerSpec", "TrainingSpec", "from_dict", "load", "network_from_dict", "network_to_dict"]

DTYPES = ("float32", "float64")
MAX_NAME = 64
NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
MAX_VARIANTS = 1000
MAX_FILE_BYTES = 1024 * 1024


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
    test_size: int | None = None  # the 2-D datasets: test points drawn (None: that dataset's default)
    noise: float | None = None  # the 2-D datasets: 0 to 0.5, TF Playground's 0-50
    features: tuple[str, ...] | None = None  # the 2-D datasets: the inputs computed from (x1, x2), in order


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
        spec = _experiment(Table(raw, ""))
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

# ---------------------------------------------------------------------------- sections


def _registries() -> dict[str, Mapping[str, Any]]:
    # Imported here, not at the top: harness.engines imports this module for its types.
    from harness.data import DATASETS
    from harness.engines import ENGINE_NAMES
    from harness.metrics import METRICS

    return {"activation": catalog.ACTIVATIONS, "initializer": dict.fromkeys(catalog.INITIALIZERS),
            "loss": catalog.LOSSES, "optimizer": catalog.OPTIMIZERS, "dataset": DATASETS, "engine": ENGINE_NAMES,
            "metric": METRICS, "layer": table.KINDS}


def _experiment(t: Table) -> ExperimentSpec:
    reg = _registries()
    name = t.get("name", str, "experiment", check=lambda v: NAME_RE.fullmatch(v) is not None,
                 allowed=f"must be 1-{MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit "
                         "(a name is a label; files are named after it)")
    description = t.get("description", str, "")
    data = _data(t.table("data"), reg)
    network = read_network(t.table("network"), reg)
    training = _training(t.table("training"), reg, network)
    evaluation = _evaluation(t.table("evaluation", {}), reg)
    bench = _bench(t.table("bench", {}), reg)
    sweep = _sweep(t, t.raw)
    t.done()
    return ExperimentSpec(name=name, description=description, data=data, network=network,
                          training=training, evaluation=evaluation, bench=bench, sweep=sweep)


def machine_cores() -> int:
    return os.cpu_count() or 1


def _sweep(t: Table, raw: dict[str, Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`[sweep]`: dotted keys to lists of alternatives (nested tables are read as dotted keys)."""
    t.known.add("sweep")
    table = raw.get("sweep", {})
    if not isinstance(table, dict):
        fail("sweep", table, 'must be a table of alternatives, like [sweep] "training.batch_size" = [32, 64]')
    found: list[tuple[str, tuple[Any, ...]]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            elif isinstance(v, list) and v:
                if key.split(".")[0] in ("sweep", "bench", "name", "description"):
                    fail(f"sweep.{key}", v, "a sweep varies data, network, training or evaluation settings")
                found.append((key, tuple(v)))
            else:
                fail(f"sweep.{key}", v, "must be a non-empty list of alternatives")

    walk(table, "")
    count = math.prod(len(v) for _, v in found)
    if count > MAX_VARIANTS:
        fail("sweep", f"{count} variants", f"a sweep may have at most {MAX_VARIANTS} variants (the product of "
                                           "its lists' lengths)")
    return tuple(found)


def _data(t: Table, reg) -> DataSpec:
    dataset = name_in(t, "dataset", "dataset", reg["dataset"])
    takes = reg["dataset"][dataset].options
    for key in dict.fromkeys(k for info in reg["dataset"].values() for k in info.options):
        if key in t.raw and key not in takes:  # a key of another dataset is a mistake here, not a no-op
            others = [name for name, info in reg["dataset"].items() if key in info.options]
            fail(t.key(key), t.raw[key], f"dataset {dataset!r} takes no {key}; only {', '.join(others)} "
                                         f"{'does' if len(others) == 1 else 'do'}")
    spec = DataSpec(
        dataset=dataset,
        path=t.get("path", str, None) if "path" in takes else None,
        train_size=t.get("train_size", int, None, check=lambda v: v >= 1, allowed="must be >= 1"),
        validation=t.get("validation", float, 0.0, check=lambda v: 0 <= v < 1, allowed="must be in [0, 1)"),
    )
    if "features" in takes:
        spec = dataclasses.replace(spec, **_plane_options(t))
    t.done()
    return spec


def _plane_options(t: Table) -> dict[str, Any]:
    """test_size, noise and features of a 2-D dataset, defaults filled in."""
    from harness.data import plane

    names = t.get("features", list, list(plane.DEFAULT_FEATURES), check=bool,
                  allowed=f"must list at least one of {', '.join(plane.FEATURES)}")
    for i, name in enumerate(names):
        typed(name, str, t.key(f"features.{i}"))
        if name not in plane.FEATURES:
            raise SpecError(unknown_name("feature", name, plane.FEATURES, key=t.key(f"features.{i}")))
    if len(set(names)) != len(names):
        fail(t.key("features"), names, "must not repeat a feature")
    return {
        "test_size": t.get("test_size", int, plane.DEFAULT_TEST_SIZE, check=lambda v: 1 <= v <= plane.MAX_POINTS,
                           allowed=f"must be an integer from 1 to {plane.MAX_POINTS:,}"),
        "noise": t.get("noise", float, 0.0, check=lambda v: 0 <= v <= plane.MAX_NOISE,
                       allowed=f"must be from 0 to {plane.MAX_NOISE} (TF Playground's 0-50 as a fraction)"),
        "features": tuple(names),
    }


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


def _optimizer(t: Table, reg) -> OptimizerSpec:
    name = name_in(t, "name", "optimizer", reg["optimizer"], "sgd")
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


def _training(t: Table, reg, network: NetworkSpec) -> TrainingSpec:
    loss = name_in(t, "loss", "loss", reg["loss"])
    allowed_outputs = reg["loss"][loss]
    out = network.output_activation.name
    if allowed_outputs is not None and out not in allowed_outputs:
        raise SpecError(f"training.loss = {loss!r} needs network.output_activation = "
                        f"{' or '.join(repr(a) for a in allowed_outputs)}, got {out!r}")
    spec = TrainingSpec(
        loss=loss,
        optimizer=_optimizer(t.table("optimizer", {}), reg),
        epochs=positive(t, "epochs", 10),
        batch_size=positive(t, "batch_size", 32),
        shuffle=t.get("shuffle", bool, True),
        dtype=t.get("dtype", str, "float32", check=lambda v: v in DTYPES, allowed=f"allowed: {', '.join(DTYPES)}"),
        threads=t.get("threads", int, 0, check=lambda v: 0 <= v <= machine_cores(),
                      allowed=f"must be between 0 (every core) and {machine_cores()}, the cores of this machine"),
        lr_decay=t.get("lr_decay", float, 1.0, check=lambda v: 0 < v <= 1, allowed="must be in (0, 1]"),
    )
    t.done()
    return spec


def _evaluation(t: Table, reg) -> EvaluationSpec:
    metric = name_in(t, "metric", "metric", reg["metric"], "accuracy")
    spec = EvaluationSpec(
        metric=metric,
        target=t.get("target", float, None),
        every=positive(t, "every", 1),
    )
    t.done()
    return spec


def _bench(t: Table, reg) -> BenchSpec:
    seeds = t.get("seeds", list, [0, 1, 2], check=bool, allowed="must list at least one seed")
    for i, s in enumerate(seeds):
        typed(s, int, t.key(f"seeds.{i}"))
        if s < 0:
            fail(t.key(f"seeds.{i}"), s, "must be >= 0")
    if len(set(seeds)) != len(seeds):
        fail(t.key("seeds"), seeds, "must not repeat a seed")
    engines = t.get("engines", list, ["scratch", "torch"], check=bool, allowed="must list at least one engine")
    for i, e in enumerate(engines):
        typed(e, str, t.key(f"engines.{i}"))
        if e not in reg["engine"]:
            raise SpecError(unknown_name("engine", e, reg["engine"], key=t.key(f"engines.{i}")))
    t.done()
    return BenchSpec(seeds=tuple(seeds), engines=tuple(dict.fromkeys(engines)))


def network_from_dict(raw: Mapping[str, Any], source: str = "network") -> NetworkSpec:
    """Validate a `[network]` table alone (as saved beside a model) into a `NetworkSpec`."""
    try:
        return read_network(Table(_normalize({"network": copy.deepcopy(dict(raw))})["network"], "network"),
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
        return plain_network(obj)
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
