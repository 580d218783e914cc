"""The store's bench and perf runs as samples: one run's timings of one figure, with its machine,
commit and start time, what `compare` and `history` both read (through harness.tracking alone).

A bench figure is an experiment's (or sweep variant's) steady-state epoch time on one engine,
`<experiment>.<engine>.steady_epoch_s`: a child run is one process, its timings its epochs but the
first (the warm-up, left out as the bench's speedup leaves it out: `run.runner.steady_epochs`); lower
is better. A perf figure is every key of a perf run logged with its repeats (`<key>.repeats`), named
by the key as perf names it (opaque here), each repeat a process; perf's figures are rates, higher is
better. perf's own interference figures (`busy.`) are not figures of the code and are left out.

A run tagged as measured on a busy machine (`harness.busy` = true) is kept apart: its sample says so,
and the callers leave it out and say how many they did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.history.machines import Machine, machine
from harness.run.interference import BUSY_TAG
from harness.tracking.read import REPEATS, metric_history, read_run
from harness.tracking.store import BENCH_TAG

COMMIT = "git.commit"
BENCH_FIGURE = "steady_epoch_s"


@dataclass(frozen=True)
class Sample:
    """One run's timings of one figure: `processes` holds one tuple of timings per process."""

    figure: str
    kind: str  # "bench" or "perf"
    source: str  # the bench id or the perf run id
    machine: Machine
    commit: str  # "" where the run recorded none
    started: float  # the run's start, seconds since the epoch
    processes: tuple[tuple[float, ...], ...]
    higher_is_better: bool
    busy: bool
    experiment: str = ""  # a bench figure's experiment (and variant)
    engine: str = ""
    metric: str = ""  # a bench run's test metric: its name and value
    metric_value: float = math.nan


def _tag(row: pd.Series, name: str) -> str:
    value = row.get(f"tags.{name}")
    return value if isinstance(value, str) else ""


def _tags(row: pd.Series) -> dict[str, str]:
    return {k.removeprefix("tags."): v for k, v in row.items() if k.startswith("tags.") and isinstance(v, str)}


def _started(row: pd.Series) -> float:
    t = row.get("start_time")
    return pd.Timestamp(t).timestamp() if t is not None and not pd.isna(t) else math.nan


def group_name(parent: pd.Series) -> str:
    """A bench's experiment, or one variant of its sweep: `xor [network.hidden.0.units=8]`."""
    variant = parent.get("params.variant")
    return str(parent.get("params.experiment")) + (f" [{variant}]" if isinstance(variant, str) and variant else "")


def bench_figure(experiment: str, engine: str) -> str:
    return f"{experiment}.{engine}.{BENCH_FIGURE}"


def bench_samples(parents: pd.DataFrame, children: pd.DataFrame) -> list[Sample]:
    """A sample per finished child run that has epoch times; `parents` name their experiments."""
    from harness.run.runner import steady_epochs

    if children.empty:
        return []
    groups = {p["run_id"]: group_name(p) for _, p in parents.iterrows()}
    out = []
    for _, run in children[children["status"] == "FINISHED"].iterrows():
        experiment, engine = groups.get(run.get("tags.mlflow.parentRunId")), _tag(run, "harness.engine")
        times = [v for _, v in metric_history(run["run_id"], "epoch_time_s")]
        if experiment is None or not engine or not times:
            continue
        name = run.get("params.evaluation.metric")
        name = name if isinstance(name, str) else ""
        value = run.get(f"metrics.test_{name}", math.nan) if name else math.nan
        out.append(Sample(bench_figure(experiment, engine), "bench", _tag(run, BENCH_TAG), machine(_tags(run)),
                          _tag(run, COMMIT), _started(run), (tuple(steady_epochs(times)),), False,
                          _tag(run, BUSY_TAG) == "true", experiment, engine, name,
                          float(value) if value is not None and not pd.isna(value) else math.nan))
    return out


def perf_samples(run: pd.Series, uri: str | None = None) -> list[Sample]:
    """A sample per figure of one perf run (a row of `runs_of_kind("perf")`) that has its repeats, its
    `busy.` figures aside."""
    metrics, _, tags = read_run(run["run_id"], uri)
    out = []
    for key, values in sorted(metrics.items()):
        if key.endswith(REPEATS) and not key.startswith("busy.") and values:
            out.append(Sample(key.removesuffix(REPEATS), "perf", run["run_id"], machine(tags), tags.get(COMMIT, ""),
                              _started(run), tuple((float(v),) for v in values), True, tags.get(BUSY_TAG) == "true"))
    return out
