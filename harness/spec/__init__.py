"""Experiment files: TOML in, frozen dataclasses out, every mistake a one-line `SpecError`.

`load(path, overrides)` reads a file, applies `--set key=value` overrides, and checks
every value against what is allowed. Validation lives here only (with the tables' readers in
spec.network and spec.sections, and override editing in spec.overrides): a spec that comes
out of `load` (or `from_dict`) is one both engines can run.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness import catalog
from harness import layers as table
from harness.errors import SpecError, usable_path
from harness.layers import ActivationSpec, LayerSpec
from harness.spec.network import MAX_WIDTH, NetworkSpec, plain_network, read_network
from harness.spec.overrides import apply_override, normalize, set_path
from harness.spec.sections import (
    DTYPES,
    BenchSpec,
    DataSpec,
    EvaluationSpec,
    OptimizerSpec,
    TrainingSpec,
    machine_cores,
    read_bench,
    read_data,
    read_evaluation,
    read_training,
)
from harness.spec.tables import MAX_DEPTH, Table, fail, too_deep

__all__ = ["DTYPES", "MAX_WIDTH", "ActivationSpec", "BenchSpec", "DataSpec", "EvaluationSpec", "ExperimentSpec",
           "LayerSpec", "NetworkSpec", "OptimizerSpec", "TrainingSpec", "apply_override", "from_dict", "load",
           "machine_cores", "network_from_dict", "network_to_dict", "set_path"]

MAX_NAME = 64
NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
MAX_VARIANTS = 1000
MAX_FILE_BYTES = 1024 * 1024


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
    path = usable_path(path, "experiment file", SpecError)
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
    if too_deep(raw):
        raise SpecError(f"{source}: nested more than {MAX_DEPTH} deep; an experiment is a few tables of values")
    raw = normalize(copy.deepcopy(dict(raw)))
    for item in overrides:
        apply_override(raw, item)
    try:
        spec = _experiment(Table(raw, ""))
        spec.variants()  # every combination of a sweep must be a valid experiment too
        return spec
    except SpecError as e:
        raise SpecError(f"{source}: {e}") from None


# ---------------------------------------------------------------------------- sections


def _registries() -> dict[str, Mapping[str, Any]]:
    # Imported here, not at the top: the datasets and metrics bring NumPy, which `harness check` needs
    # only once a file is read (the engines' names are catalog's, so that no engine is imported).
    from harness.data import DATASETS
    from harness.metrics import METRICS

    return {"activation": catalog.ACTIVATIONS, "initializer": dict.fromkeys(catalog.INITIALIZERS),
            "loss": catalog.LOSSES, "optimizer": catalog.OPTIMIZERS, "dataset": DATASETS,
            "engine": catalog.ENGINE_NAMES, "metric": METRICS, "layer": table.KINDS}


def _experiment(t: Table) -> ExperimentSpec:
    reg = _registries()
    name = t.get("name", str, "experiment", check=lambda v: NAME_RE.fullmatch(v) is not None,
                 allowed=f"must be 1-{MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit "
                         "(a name is a label; files are named after it)")
    description = t.get("description", str, "")
    data = read_data(t.table("data"), reg)
    network = read_network(t.table("network"), reg)
    training = read_training(t.table("training"), reg, network)
    evaluation = read_evaluation(t.table("evaluation", {}), reg)
    bench = read_bench(t.table("bench", {}), reg)
    sweep = _sweep(t, t.raw)
    t.done()
    return ExperimentSpec(name=name, description=description, data=data, network=network,
                          training=training, evaluation=evaluation, bench=bench, sweep=sweep)


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


def network_from_dict(raw: Mapping[str, Any], source: str = "network") -> NetworkSpec:
    """Validate a `[network]` table alone (as saved beside a model) into a `NetworkSpec`."""
    if too_deep(raw):
        raise SpecError(f"{source}: the network is nested more than {MAX_DEPTH} deep")
    try:
        return read_network(Table(normalize({"network": copy.deepcopy(dict(raw))})["network"], "network"),
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
