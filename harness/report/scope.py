"""Which benches of the store a report covers, and what it leaves out, said at its top.

A store holds every bench ever run into it. By default the report covers the newest bench alone;
`--bench-id` names another; `--all` takes the newest bench of every experiment (a sweep's variants
come with their bench). Whatever the choice, the report names the experiments of the store that it
does not show and counts the benches it leaves out, so that an experiment is never dropped
without a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.text import plural

LISTED = 5  # benches named one by one in the note; the rest are counted


@dataclass(frozen=True)
class Scope:
    """`chosen`: bench id -> the experiments reported from it, newest bench first; `left_out`: the
    store's other benches, newest first; `missing`: experiments of the store in none of `chosen`,
    each with its newest bench."""

    chosen: dict[str, tuple[str, ...]]
    left_out: list[str]
    missing: dict[str, str]


def choose(index: list[tuple[str, pd.Timestamp, tuple[str, ...]]], bench_id: str | None = None,
           every: bool = False) -> Scope:
    """From `tracking.bench_index` (newest first): the newest bench, the bench `bench_id`, or with
    `every` the newest bench of each experiment."""
    if every:
        chosen: dict[str, tuple[str, ...]] = {}
        taken: set[str] = set()
        for bid, _, experiments in index:
            new = tuple(e for e in experiments if e not in taken)
            if new:
                chosen[bid] = new
                taken.update(new)
    else:
        found = [b for b in index if b[0] == bench_id] if bench_id else index[:1]
        chosen = {found[0][0]: found[0][2]} if found else {}
    newest = {}
    for bid, _, experiments in index:
        for e in experiments:
            newest.setdefault(e, bid)
    shown = {e for experiments in chosen.values() for e in experiments}
    left_out = [bid for bid, _, _ in index if bid not in chosen]
    return Scope(chosen, left_out, {e: b for e, b in newest.items() if e not in shown})


def note(scope: Scope) -> list[str]:
    """The report's lines on what it leaves out (none where it covers the whole store)."""
    lines = []
    if scope.missing:
        listed = ", ".join(f"**{e}** (newest in bench `{b}`)" for e, b in scope.missing.items())
        lines.append(f"**Left out of this report**: {listed}. `harness report --all` reports the newest bench of "
                     "every experiment; `--bench-id ID` one bench.")
    if scope.left_out:
        more = len(scope.left_out) - LISTED
        named = ", ".join(f"`{b}`" for b in scope.left_out[:LISTED]) + (f" and {more} more" if more > 0 else "")
        others = plural(len(scope.left_out), "other bench", "other benches")
        lines.append(f"The store holds {others} this report leaves out ({named}); `--bench-id ID` reports one.")
    return ["", *lines] if lines else []
