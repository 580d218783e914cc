"""Runs measured on a busy machine, as the report shows them: a note in the report's first lines,
a section naming each such run with what else the machine did, and the seeds left out of the
speedup. The verdict is the one the bench tagged each run with (`harness.run.interference`);
nothing is decided again here.
"""

from __future__ import annotations

import pandas as pd

from harness.text import plural

BUSY_COLUMN = "tags.harness.busy"


def flags(children: pd.DataFrame) -> pd.Series:
    """True for each child run tagged as measured on a busy machine."""
    if BUSY_COLUMN not in children:
        return pd.Series(False, index=children.index)
    return children[BUSY_COLUMN].eq("true")


def busy_seeds(runs: pd.DataFrame) -> set[int]:
    """The seeds of an experiment with a run measured on a busy machine: a seed is compared with both
    engines or not at all."""
    return set(runs.loc[flags(runs), "seed"].astype(int))


def _threshold(children: pd.DataFrame) -> str:
    column = "tags.harness.busy_threshold"
    values = children[column].dropna().unique() if column in children else []
    return f" (more than {float(values[0]):.0%} of the usable cores)" if len(values) == 1 else ""


def first_lines(children: pd.DataFrame) -> list[str]:
    """The note at the top of the report: how many runs were measured on a busy machine, and each
    experiment whose every run was."""
    busy = flags(children)
    if not busy.any():
        return []
    lines = ["", f"**{plural(int(busy.sum()), 'run')} of {len(children)} measured on a busy machine**: other "
                 f"processes used the cores{_threshold(children)} during their training. They are marked under "
                 "\"Measured on a busy machine\" and left out of the speedup."]
    for name, runs in children.groupby("experiment", sort=False):
        if flags(runs).all():
            lines += ["", f"**Every run of {name} was measured on a busy machine**: it has no speedup, and its times "
                         "tell of the machine, not of the engines."]
    return lines


def section(children: pd.DataFrame) -> list[str]:
    """The runs measured on a busy machine, each with other processes' share of the cores over its window."""
    busy = children[flags(children)]
    if busy.empty:
        return []
    lines = ["", "## Measured on a busy machine", "",
             f"Other processes used the cores{_threshold(children)} during the training window of these runs, "
             "as the bench measured it (the machine's busy CPU time on the usable cores, less the run's own). "
             "Every seed with such a run is left out of the speedup, both engines.", ""]
    for _, run in busy.iterrows():
        share = run.get("metrics.others_share")
        load = [run.get(f"metrics.load_{edge}") for edge in ("start", "end")]
        text = f"other processes used {share:.0%} of the cores" if pd.notna(share) else "no share recorded"
        if all(pd.notna(v) for v in load):
            text += f", load {load[0]:.1f} to {load[1]:.1f}"
        lines.append(f"- {run['experiment']}, {run['engine']} seed {run['seed']}: {text}")
    return lines
