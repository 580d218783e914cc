"""`harness history`: every figure of every bench and perf run in the store, commit by commit.

For each figure and each machine (figures of different machines are never mixed: the machine record
groups them, `history.machines`), one point per commit: the median of every timing of every run at
that commit pooled, with its 95% interval (the bootstrap of `stats.resample`, hierarchical over the
processes and the timings inside each) and the lowest to highest process. Commits are in git's order
(`git rev-list --topo-order`) when the project's repository knows them all, else in the order of
their runs' start times; the output says which. The steps (`history.steps`) are flagged at the first
commit of each new level. Runs measured on a busy machine, and runs without a commit, are left out
and counted.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import stats
from harness.errors import NothingToReport, writable_folder
from harness.history import git, machines, steps
from harness.history.samples import Sample, bench_samples, perf_samples
from harness.text import figure, plural, table
from harness.tracking.read import runs_of_kind
from harness.tracking.store import resolve_uri


@dataclass(frozen=True)
class Point:
    """One commit of one figure's history: every process of its runs, their pooled median with its 95%
    interval, and the lowest and highest process (each by its own median)."""

    commit: str
    runs: int
    processes: tuple[tuple[float, ...], ...]
    median: float
    low: float
    high: float
    lowest: float
    highest: float


@dataclass(frozen=True)
class Series:
    figure: str
    kind: str
    machine: int  # which of the machines `series` names
    higher_is_better: bool
    points: list[Point]
    steps: list[steps.Step]


def point(commit: str, samples: Sequence[Sample]) -> Point:
    """The commit's point: its runs' processes pooled, the median's interval by the hierarchical bootstrap."""
    procs = tuple(p for s in samples for p in s.processes)
    draws = stats.resample(procs)
    tail = (1 - stats.LEVEL) / 2 * 100
    low, high = (float(v) for v in np.percentile(draws, [tail, 100 - tail]))
    own = [float(np.median(p)) for p in procs]
    return Point(commit, len(samples), procs, float(np.median(np.concatenate(procs))), low, high, min(own), max(own))


def read(uri: str | None) -> list[Sample]:
    """Every sample of every bench and finished perf run in the store."""
    parents, children = runs_of_kind("bench", uri), runs_of_kind("run", uri)
    out = bench_samples(parents, children)
    perf = runs_of_kind("perf", uri)
    if not perf.empty:
        for _, run in perf[perf["status"] == "FINISHED"].iterrows():
            out += perf_samples(run, uri)
    return out


def order(samples: Sequence[Sample], repo: Path | None = None) -> tuple[list[str], str]:
    """The commits of the samples in git's order when the repository knows every one, else by their
    first run's start time; and which of the two it is, in words."""
    first: dict[str, float] = {}
    for s in samples:
        first[s.commit] = min(first.get(s.commit, math.inf), s.started if math.isfinite(s.started) else math.inf)
    known = git.topo_order(repo)
    if known:
        index = {c: i for i, c in enumerate(known)}
        if all(c in index for c in first):
            return sorted(first, key=index.__getitem__), "commits in git's order (git rev-list --topo-order)"
    missing = sum(c not in set(known or ()) for c in first)
    why = "no git repository" if known is None else f"the repository does not know {plural(missing, 'commit')}"
    return sorted(first, key=lambda c: (first[c], c)), f"commits in the order of their runs' start times ({why})"


def select(samples: Sequence[Sample], experiment: str | None, pattern: str | None) -> list[Sample]:
    """The samples `--experiment` (a bench experiment and its sweep variants) and `--figure` (a name or a
    shell-style pattern) keep; a one-line error naming what there is when none is kept."""
    kept = [s for s in samples if experiment is None or s.experiment == experiment
            or s.experiment.startswith(experiment + " [")]
    if experiment is not None and not kept:
        known = sorted({s.experiment for s in samples if s.experiment})
        raise NothingToReport(f"no bench of experiment {experiment!r} in the store; experiments: "
                              + (", ".join(known) or "none"))
    out = [s for s in kept if pattern is None or fnmatch.fnmatchcase(s.figure, pattern)]
    if not out:
        known = sorted({s.figure for s in kept})
        raise NothingToReport(f"no figure matches --figure {pattern!r}; figures: {', '.join(known[:12])}"
                              + (f" and {len(known) - 12} more" if len(known) > 12 else ""))
    return out


def series(samples: Sequence[Sample], commits: Sequence[str],
           threshold: float = stats.THRESHOLD) -> tuple[list[Series], list[machines.Machine]]:
    """One series per (machine, figure), its points in the order of `commits`, its steps found; and the
    machines, in the order their first run started (`machines.group`)."""
    index, found = machines.group([s.machine for s in sorted(samples, key=lambda s: s.started)])
    grouped: dict[tuple[int, str, str], dict[str, list[Sample]]] = {}
    for s in samples:
        grouped.setdefault((index[s.machine], s.kind, s.figure), {}).setdefault(s.commit, []).append(s)
    out = []
    for (m, kind, name), by_commit in grouped.items():
        points = [point(c, by_commit[c]) for c in commits if c in by_commit]
        medians = [p.median for p in points]
        w = steps.weights(medians, [p.low for p in points], [p.high for p in points])
        steps_found = steps.steps([p.processes for p in points], medians, w, threshold)
        higher = next(iter(by_commit.values()))[0].higher_is_better
        out.append(Series(name, kind, m, higher, points, steps_found))
    return out, found


def step_words(s: Series, step: steps.Step) -> str:
    """`1.30x [1.27–1.33] (1.25–1.35) slower`: the figure after the step over the figure before."""
    worse = (step.comparison.ratio < 1) if s.higher_is_better else (step.comparison.ratio > 1)
    return f"step {stats.cell(step.comparison)} {'slower' if worse else 'faster'}"


def lines_of(s: Series) -> list[str]:
    """A series as its heading and table."""
    at = {step.at: step_words(s, step) for step in s.steps}
    rows = [[p.commit[:12], str(p.runs), figure(p.median), f"{figure(p.low)}–{figure(p.high)}",
             f"{figure(p.lowest)}–{figure(p.highest)}", at.get(i, "")] for i, p in enumerate(s.points)]
    better = "higher" if s.higher_is_better else "lower"
    unit = " (seconds per epoch)" if s.kind == "bench" else ""
    return [f"### {s.figure}{unit}, {better} is better", "",
            *table(["commit", "runs", "median", "95% interval", "min–max", "step"], rows)]


SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def history(uri: str | None = None, experiment: str | None = None, pattern: str | None = None,
            out_dir: str | Path = "results/history", threshold: float = stats.THRESHOLD, repo: Path | None = None,
            log: Callable[[str], None] = print) -> list[Series]:
    """Print each figure's history, machine by machine, and write its plot and history.md into `out_dir`."""
    from harness.history.plots import history_plot

    every = read(uri)
    if not every:
        raise NothingToReport(f"no bench or perf run in {resolve_uri(uri)}; run `harness bench` or `harness perf` "
                              "first")
    chosen = select(every, experiment, pattern)
    busy = [s for s in chosen if s.busy]
    orphans = [s for s in chosen if not s.busy and not s.commit]
    kept = [s for s in chosen if not s.busy and s.commit]
    if not kept:
        raise NothingToReport("every run matched was measured on a busy machine or has no git commit: no history")
    commits, how = order(kept, repo)
    found, ids = series(kept, commits, threshold)
    out = writable_folder(Path(out_dir), "the history")
    text = [f"history of {plural(len(found), 'figure')} over {plural(len(commits), 'commit')}, {how}; a figure's "
            "median with its 95% interval per commit, every run at a commit pooled; a step is where the figure "
            f"moved beyond 1 ± {threshold * 100:g}% and stayed (Potts-model segmentation, confirmed by the bootstrap)"]
    if busy:
        text.append(f"left out: {plural(len(busy), 'run')} measured on a busy machine (see the README's \"A busy "
                    "machine\")")
    if orphans:
        text.append(f"left out: {plural(len(orphans), 'run')} without a git commit")
    for n, m in enumerate(ids, 1):
        text += ["", f"## Machine {n}: {machines.describe(m)}", ""]
        for s in sorted((s for s in found if s.machine == n - 1), key=lambda s: (s.kind, s.figure)):
            name = SAFE.sub("_", s.figure) + (f"-machine{n}" if len(ids) > 1 else "") + ".png"
            history_plot(s, machines.describe(m), out / name)
            text += [*lines_of(s), "", f"![{s.figure}]({name})", ""]
    flagged = sum(len(s.steps) for s in found)
    text += [f"{plural(flagged, 'step')} found; plots and history.md written to {out}"]
    (out / "history.md").write_text("\n".join(text) + "\n")
    shown = [line for line in text if not line.startswith("![")]  # the plots' links are for history.md
    for line, before in zip(shown, ["x", *shown], strict=False):
        if line or before:
            log(line)
    return found
