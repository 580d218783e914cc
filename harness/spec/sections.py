"""The `[data]`, `[training]`, `[evaluation]` and `[bench]` tables of an experiment file: their
specs and how each is read and checked (`[network]` is `harness.spec.network`'s)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from harness.errors import SpecError, suggest, unknown_name, usable_path
from harness.spec.network import NetworkSpec
from harness.spec.tables import Table, fail, name_in, positive, typed

DTYPES = ("float32", "float64")


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
    length: int | None = None  # sort: tokens per sequence
    vocab: int | None = None  # sort: token ids 0 to vocab - 1


@dataclass(frozen=True)
class EvaluationSpec:
    metric: str = "accuracy"
    target: float | None = None
    every: int = 1  # evaluate on the test set every this many epochs


@dataclass(frozen=True)
class BenchSpec:
    seeds: tuple[int, ...] = (0, 1, 2)
    engines: tuple[str, ...] = ("scratch", "torch")


def machine_cores() -> int:
    return os.cpu_count() or 1


def read_data(t: Table, reg) -> DataSpec:
    dataset = name_in(t, "dataset", "dataset", reg["dataset"])
    takes = reg["dataset"][dataset].options
    for key in dict.fromkeys(k for info in reg["dataset"].values() for k in info.options):
        if key in t.raw and key not in takes:  # a key of another dataset is a mistake here, not a no-op
            others = [name for name, info in reg["dataset"].items() if key in info.options]
            fail(t.key(key), t.raw[key], f"dataset {dataset!r} takes no {key}; only {', '.join(others)} "
                                         f"{'does' if len(others) == 1 else 'do'}")
    spec = DataSpec(
        dataset=dataset,
        path=_folder(t) if "path" in takes else None,
        train_size=t.get("train_size", int, None, check=lambda v: v >= 1, allowed="must be >= 1"),
        validation=t.get("validation", float, 0.0, check=lambda v: 0 <= v < 1, allowed="must be in [0, 1)"),
    )
    if "features" in takes:
        spec = replace(spec, **_plane_options(t))
    if "vocab" in takes:
        spec = replace(spec, **_sort_options(t))
    t.done()
    return spec


def _folder(t: Table) -> str | None:
    """`data.path` as written, refused where no file system could hold it (it is read when the data is)."""
    path = t.get("path", str, None)
    if path is not None:
        usable_path(path, t.key("path"), SpecError)
    return path


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


def _sort_options(t: Table) -> dict[str, Any]:
    """length, vocab and test_size of the sort dataset, defaults filled in."""
    from harness.data import sort

    def sized(key: str, default: int, low: int, high: int) -> int:
        return t.get(key, int, default, check=lambda v: low <= v <= high,
                     allowed=f"must be an integer from {low} to {high:,}")

    return {"length": sized("length", sort.LENGTH, 1, sort.MAX_LENGTH),
            "vocab": sized("vocab", sort.VOCAB, 2, sort.MAX_VOCAB),
            "test_size": sized("test_size", sort.DEFAULT_TEST_SIZE, 1, sort.MAX_ROWS)}


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


def read_training(t: Table, reg, network: NetworkSpec) -> TrainingSpec:
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


def read_evaluation(t: Table, reg) -> EvaluationSpec:
    metric = name_in(t, "metric", "metric", reg["metric"], "accuracy")
    spec = EvaluationSpec(
        metric=metric,
        target=t.get("target", float, None),
        every=positive(t, "every", 1),
    )
    t.done()
    return spec


def read_bench(t: Table, reg) -> BenchSpec:
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
