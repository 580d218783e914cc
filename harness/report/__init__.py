"""The comparison report, built from the tracking store alone.

`build(bench_id)` reads the runs of one bench (or, `every`, of the newest bench of each
experiment: harness.report.scope) with mlflow.search_runs (through harness.tracking) and writes
results/report.md, results/summary.csv and PNG plots (harness.report.plots), the text by
harness.report.markdown. Every number in them is read from the store; none is typed by hand, and
each is written by harness.text.figure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import stats, tracking
from harness.errors import NothingToReport, SpecError, writable_folder
from harness.report import scope
from harness.report.markdown import RESOURCES, TIME, markdown, perf_agreement
from harness.report.plots import curves_plot, resources_plot


@dataclass
class Report:
    bench_ids: list[str]
    files: list[Path]
    summary: pd.DataFrame


def build(bench_id: str | None = None, out_dir: str | Path = "results", uri: str | None = None,
          attach: bool = True, log: Callable[[str], None] = print, every: bool = False) -> Report:
    """Write the report of a bench (default: the newest in the store; `every`: the newest bench of
    each experiment, `scope`) into `out_dir`; report.md says what of the store it leaves out."""
    tracking.quiet()
    if bench_id is not None and not BENCH_ID.fullmatch(bench_id):
        raise SpecError(f"--bench-id {bench_id!r}: a bench id is letters, digits, '.', '_' and '-' "
                        "(as `harness bench` prints it, e.g. 20261123-222809-0b97b8)")
    out = writable_folder(Path(out_dir), "the report")
    index = tracking.bench_index(uri)
    if not index and bench_id is None:
        raise NothingToReport(f"no bench in {tracking.shown_uri(tracking.resolve_uri(uri))}; "
                              "run `harness bench` first")
    covered = scope.choose(index, bench_id, every)
    parents, children = _read(covered.chosen or {bench_id: ()}, uri)  # an unknown bench id: bench_runs says so
    if children.empty:
        raise NothingToReport(f"bench {', '.join(covered.chosen)} has no runs yet: nothing to report")
    parents, children = _complete(parents.copy()), _complete(children.copy())  # copies: defragmented
    parents = parents.sort_values("start_time", kind="stable").reset_index(drop=True)
    children = children.sort_values("start_time", kind="stable").reset_index(drop=True)
    parents["group"] = [group_name(p) for _, p in parents.iterrows()]
    children = children.assign(
        experiment=children["tags.mlflow.parentRunId"].map(dict(zip(parents["run_id"], parents["group"],
                                                                    strict=True))),
        engine=children["params.engine"], seed=children["params.seed"].astype(int))
    children["metrics.cpu_s"] = children["metrics.cpu_user_s"] + children["metrics.cpu_system_s"]
    summary = summarise(children)
    summary.to_csv(out / "summary.csv", index=False)
    files = [out / "summary.csv"]
    for name in summary["experiment"].unique():
        runs = children[(children["experiment"] == name) & (children["status"] == "FINISHED")]
        if not runs.empty:
            files.append(curves_plot(runs, name, out))
    if summary["train_time_s_mean"].notna().any():  # nothing to draw when every run failed
        files.append(resources_plot(summary, out))
    benches = list(covered.chosen)
    md = markdown(benches, parents, children, summary, [f.name for f in files if f.suffix == ".png"],
                  scope.note(covered))
    md += "\n".join(perf_agreement(parents, children, tracking.latest_perf(uri)))
    (out / "report.md").write_text(md)
    files.insert(0, out / "report.md")
    if attach:
        tracking.attach_report(parents["run_id"].tolist(), files, uri)
    log(f"report of {'bench' if len(benches) == 1 else 'benches'} {', '.join(benches)} written to {out}/: "
        f"{', '.join(f.name for f in files)}")
    if covered.missing:
        log(f"left out: {', '.join(covered.missing)} (in other benches): `harness report --all` reports the newest "
            "bench of every experiment")
    return Report(benches, files, summary)


def _read(chosen: dict[str, tuple[str, ...]], uri: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parent runs, child runs) of the chosen benches, each bench's parents of its chosen experiments
    alone (all of them where none are named) and their children."""
    parents, children = [], []
    for bench_id, experiments in chosen.items():
        p, c = tracking.bench_runs(bench_id, uri)
        if experiments:
            p = p[p["params.experiment"].isin(experiments)]
        parents.append(p)
        children.append(c[c["tags.mlflow.parentRunId"].isin(p["run_id"])])
    return (pd.concat(parents, ignore_index=True) if len(parents) > 1 else parents[0].reset_index(drop=True),
            pd.concat(children, ignore_index=True) if len(children) > 1 else children[0].reset_index(drop=True))


BENCH_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# columns the report reads: absent when every run failed, or while a bench still runs
EXPECTED = ("metrics.cpu_user_s", "metrics.cpu_system_s", "metrics.wall_s", "end_time", "tags.harness.engine",
            "params.variant", "params.training.batch_size", "tags.harness.busy", "metrics.others_share")


def _complete(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with every column the report reads (missing ones empty), so that a bench whose runs
    all failed, was interrupted or is still running is reported as far as it got."""
    for col in EXPECTED:
        if col not in runs:
            runs[col] = pd.NaT if col == "end_time" else math.nan
    return runs


def group_name(parent: pd.Series) -> str:
    """An experiment, or one variant of its sweep: `xor [network.hidden.0.units=8]`."""
    variant = parent.get("params.variant")
    return parent["params.experiment"] + (f" [{variant}]" if isinstance(variant, str) and variant else "")


def summarise(children: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, engine): mean and std over the finished seeds of each figure."""
    rows = []
    for (experiment, engine), runs in children.groupby(["experiment", "engine"], sort=False):
        done = runs[runs["status"] == "FINISHED"]
        metric = runs["params.evaluation.metric"].iloc[0]
        row = {"experiment": experiment, "engine": engine, "metric": metric, "runs": len(runs),
               "failed": int((runs["status"] != "FINISHED").sum()),
               "unfinished": ", ".join(f"{n} {s.lower()}" for s, n in
                                       runs.loc[runs["status"] != "FINISHED", "status"].value_counts().items())}
        for key, column in [("test_metric", f"test_{metric}"), ("test_mae", "test_mae"),
                            *((k, k) for k, _ in TIME + RESOURCES),
                            *((f"more_tests.{t}", f"test_{metric}_{t}") for t in more_tests(children, metric))]:
            col = f"metrics.{column}"
            values = done[col].dropna() if col in done else pd.Series(dtype=float)
            row[f"{key}_mean"] = values.mean() if len(values) else math.nan
            row[f"{key}_std"] = values.std(ddof=1) if len(values) > 1 else (0.0 if len(values) else math.nan)
            if key == "time_to_target_s":
                row[f"{key}_olympic"] = stats.olympic_mean(values.tolist())
        rows.append(row)
    return pd.DataFrame(rows)


def more_tests(children: pd.DataFrame, metric: str) -> list[str]:
    """The names of the further test sets the runs were scored on (`test_accuracy_32bit` -> "32bit")."""
    prefix = f"metrics.test_{metric}_"
    return sorted({c.removeprefix(prefix) for c in children.columns
                   if c.startswith(prefix) and children[c].notna().any()})
