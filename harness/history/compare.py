"""`harness compare A B`: two benches, or two perf runs, side by side, from the store alone.

A and B are each a bench id, a perf run id, or `git:REV`, the newest bench (or perf run) at that
commit. Per experiment and engine (bench) or per figure (perf), the ratio of B against A with its
95% interval (`stats.compare`), and `+` (B faster), `-` (B slower) or `~` (no significant difference
within 1 ± the threshold). A bench's ratio is A's steady-state epoch time over B's, hierarchical over
seeds and their epochs; a perf figure's is B's rate over A's, over the repeats. Runs measured on a
busy machine are left out of a bench and said so. Two sides measured on different machines, or of
different kinds, are refused: their figures say nothing about the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import HarnessError
from harness.history import git, machines
from harness.history.samples import COMMIT, Sample, bench_samples, perf_samples
from harness.text import figure, plural, table
from harness.tracking.read import bench_runs, runs_of_kind
from harness.tracking.store import BENCH_TAG, resolve_uri

KINDS = ("bench", "perf")
VERDICT = {1: "+", -1: "-", 0: "~"}
HASH = re.compile(r"[0-9a-f]{4,40}")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: what the user named, what it resolved to, and its samples."""

    ref: str
    kind: str
    ident: str
    commit: str
    samples: list[Sample] = field(default_factory=list)

    def title(self, letter: str) -> str:
        what = f"bench {self.ident}" if self.kind == "bench" else f"perf run {self.ident}"
        via = f" ({self.ref})" if self.ref != self.ident else ""
        return f"{letter}: {what}{via} at commit {self.commit[:12] or 'unknown'}"


@dataclass(frozen=True)
class Outcome:
    lines: list[str]
    regressions: int


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)


class _Store:
    """The bench parents and perf runs of one store, read once, to resolve references."""

    def __init__(self, uri: str | None) -> None:
        self.uri = uri
        self.benches = runs_of_kind("bench", uri)
        perf = runs_of_kind("perf", uri)
        self.perf = perf[perf["status"] == "FINISHED"] if not perf.empty else perf

    def kind_of(self, ident: str) -> str | None:
        if not self.benches.empty and (_column(self.benches, f"tags.{BENCH_TAG}") == ident).any():
            return "bench"
        if not self.perf.empty and (self.perf["run_id"] == ident).any():
            return "perf"
        return None

    def runs(self, kind: str) -> pd.DataFrame:
        return self.benches if kind == "bench" else self.perf

    def at_commit(self, rev: str, kind: str, repo: Path | None) -> tuple[str, str]:
        """(the id of the newest run of `kind` at the commit `rev` names, that commit)."""
        runs = self.runs(kind)
        commits = _column(runs, f"tags.{COMMIT}").fillna("").astype(str)
        full = git.rev_parse(rev, repo)
        if full is not None:
            hits = runs[commits == full]
        elif HASH.fullmatch(rev.lower()):
            hits = runs[commits.str.startswith(rev.lower()) & (commits != "")]
            found = sorted(set(commits[hits.index]))
            if len(found) > 1:
                raise HarnessError(f"git:{rev} is ambiguous: {kind} runs at {len(found)} commits start with it "
                                   f"({', '.join(c[:12] for c in found[:5])}); give more digits")
            full = found[0] if found else rev
        else:
            raise HarnessError(f"git:{rev}: no such revision in {repo or git.PROJECT}, nor a commit hash")
        if hits.empty:
            raise HarnessError(f"no {kind} run at commit {full[:12]} (git:{rev}) in {resolve_uri(self.uri)}")
        newest = hits.iloc[0]  # runs_of_kind gives the newest first
        ident = newest[f"tags.{BENCH_TAG}"] if kind == "bench" else newest["run_id"]
        return str(ident), str(newest[f"tags.{COMMIT}"])

    def side(self, ref: str, kind: str, repo: Path | None) -> Side:
        if ref.startswith("git:"):
            ident, commit = self.at_commit(ref.removeprefix("git:"), kind, repo)
        else:
            ident = ref
            row = self.runs(kind)
            row = row[(_column(row, f"tags.{BENCH_TAG}") if kind == "bench" else row["run_id"]) == ident]
            value = row.iloc[0].get(f"tags.{COMMIT}") if not row.empty else None
            commit = value if isinstance(value, str) else ""
        if kind == "bench":
            parents, children = bench_runs(ident, self.uri)
            samples = bench_samples(parents, children)
        else:
            samples = perf_samples(self.perf[self.perf["run_id"] == ident].iloc[0], self.uri)
        return Side(ref, kind, ident, commit, samples)


def resolve(refs: Sequence[str], kind: str | None, uri: str | None, repo: Path | None = None) -> list[Side]:
    """The two sides, their kind from the ids given (else `kind`, else bench); a one-line error for an
    unknown id or revision, or two of different kinds."""
    store = _Store(uri)
    kinds = []
    for ref in refs:
        if ref.startswith("git:"):
            continue
        found = store.kind_of(ref)
        if found is None:
            raise HarnessError(f"unknown bench or perf run {ref!r} in {resolve_uri(uri)}: give a bench id (as "
                               "`harness bench` prints it), a perf run id (as `harness perf` prints it) or git:REV")
        kinds.append((ref, found))
    if len({k for _, k in kinds}) > 1:
        raise HarnessError(f"{kinds[0][0]} is a {kinds[0][1]} and {kinds[1][0]} a {kinds[1][1]}: compare two "
                           "benches or two perf runs")
    if kinds and kind is not None and kinds[0][1] != kind:
        raise HarnessError(f"--kind {kind}, but {kinds[0][0]} is a {kinds[0][1]}")
    chosen = kinds[0][1] if kinds else kind or "bench"
    return [store.side(ref, chosen, repo) for ref in refs]


def compare(a: str, b: str, kind: str | None = None, threshold: float = stats.THRESHOLD, uri: str | None = None,
            repo: Path | None = None) -> Outcome:
    """The comparison of B against A as lines to print, and how many significant regressions it found."""
    sa, sb = resolve([a, b], kind, uri, repo)
    ma, mb = (machines.merged(s.machine for s in side.samples) for side in (sa, sb))
    differ = machines.differences(ma, mb)
    if differ:
        raise HarnessError(f"A and B were measured on different machines ({'; '.join(differ)}): figures are never "
                           "compared across machines")
    head = [sa.title("A"), sb.title("B"), f"machine: {machines.describe(ma)}", ""]
    rows, notes, verdicts = (_bench if sa.kind == "bench" else _perf)(sa, sb, threshold)
    if not rows:
        raise HarnessError(f"nothing to compare between {sa.ident} and {sb.ident}: "
                           + ("; ".join(n for n in notes if not n.startswith("left out")) or "no figure in common"))
    counts = {v: verdicts.count(v) for v in (-1, 1, 0)}
    summary = (f"{plural(counts[-1], 'significant regression')}, {plural(counts[1], 'improvement')}, "
               f"{counts[0]} ~ (threshold ±{threshold * 100:g}%)")
    return Outcome(head + rows + ([""] + notes if notes else []) + ["", summary], counts[-1])


def _pooled(processes: Sequence[Sequence[float]]) -> float:
    return float(np.median(np.concatenate([np.asarray(p, dtype=float) for p in processes])))


def _bench(a: Side, b: Side, threshold: float) -> tuple[list[str], list[str], list[int]]:
    """Per experiment and engine, A's steady epoch time over B's."""
    groups: dict[tuple[str, str], dict[str, list[Sample]]] = {}
    for letter, side in (("A", a), ("B", b)):
        for s in sorted(side.samples, key=lambda s: s.started):
            groups.setdefault((s.experiment, s.engine), {"A": [], "B": []})[letter].append(s)
    rows, notes, verdicts, busy = [], [], [], {"A": 0, "B": 0}
    for (experiment, engine), sides in groups.items():
        quiet = {k: [s for s in v if not s.busy] for k, v in sides.items()}
        for k, v in sides.items():
            busy[k] += len(v) - len(quiet[k])
        if not quiet["A"] or not quiet["B"]:
            absent = [k for k in "AB" if not sides[k]]
            busy_only = [k for k in "AB" if sides[k] and not quiet[k]]
            why = ([f"not in {absent[0]}"] if absent else []) + (
                [f"every run of {' and '.join(busy_only)} measured on a busy machine"] if busy_only else [])
            notes.append(f"{experiment} {engine}: not compared, {' and '.join(why)}")
            continue
        pa, pb = ([p for s in quiet[k] for p in s.processes] for k in "AB")
        c = stats.compare(pa, pb, threshold)
        verdicts.append(c.verdict)
        metric = quiet["A"][0].metric or quiet["B"][0].metric
        acc = [np.nanmean([s.metric_value for s in quiet[k]]) if any(np.isfinite(s.metric_value) for s in quiet[k])
               else np.nan for k in "AB"]
        rows.append([experiment, engine, f"{len(pa)} / {len(pb)}", figure(_pooled(pa)), figure(_pooled(pb)),
                     stats.cell(c), VERDICT[c.verdict], f"{metric} {figure(acc[0])} → {figure(acc[1])}"])
        if c.warning():
            notes.append(f"{experiment} {engine}: {c.warning('seeds')}")
    if busy["A"] or busy["B"]:
        notes.insert(0, f"left out: {plural(busy['A'] + busy['B'], 'run')} measured on a busy machine (A {busy['A']}, "
                        f"B {busy['B']}; see the README's \"A busy machine\")")
    header = ["experiment", "engine", "seeds A / B", "epoch s A", "epoch s B", "A / B [95%] (min–max)", "",
              "test A → B"]
    intro = ["steady-state epoch time, median over every epoch but the first of every seed; the ratio is A's "
             "over B's (above 1: B is faster): + B faster, - B slower, ~ no significant difference", ""]
    return (intro + table(header, rows, 2) if rows else []), notes, verdicts


def _perf(a: Side, b: Side, threshold: float) -> tuple[list[str], list[str], list[int]]:
    """Per figure both runs have with its repeats, B's rate over A's."""
    fa, fb = ({s.figure: s for s in side.samples} for side in (a, b))
    rows, notes, verdicts = [], [], []
    for name in sorted(fa.keys() & fb.keys()):
        c = stats.compare(fb[name].processes, fa[name].processes, threshold)
        verdicts.append(c.verdict)
        rows.append([name, figure(_pooled(fa[name].processes)), figure(_pooled(fb[name].processes)), stats.cell(c),
                     VERDICT[c.verdict]])
        if c.warning():
            notes.append(f"{name}: {c.warning()}")
    for letter, side, others in (("A", a, fb), ("B", b, fa)):
        alone = sorted(s.figure for s in side.samples if s.figure not in others)
        if alone:
            notes.append(f"only in {letter}: {', '.join(alone)}")
        if any(s.busy for s in side.samples):
            notes.insert(0, f"{letter} (perf run {side.ident}) was measured on a busy machine: its figures tell of the "
                            "machine as much as of the code (see the README's \"A busy machine\")")
    header = ["figure", "A", "B", "B / A [95%] (min–max)", ""]
    intro = ["median of the repeats; the ratio is B's over A's (rates: above 1, B is faster): + B faster, - B slower, "
             "~ no significant difference", ""]
    return (intro + table(header, rows) if rows else []), notes, verdicts
