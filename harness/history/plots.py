"""A figure's history as a PNG: per commit, in commit order, the median with its 95% interval as an
error bar and the lowest to highest process as a light bar behind it; each level between steps as a line at
its pooled median, and each step as a dashed line before its first commit, labelled with its ratio."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from harness import stats

LABELS = 30  # commits labelled on the x axis at most; beyond, every k-th


def history_plot(series, machine: str, path: Path) -> Path:
    """Draw one `timeline.Series` into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = series.points
    x = np.arange(len(points))
    med = np.array([p.median for p in points])
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.45 * len(points) + 4)), 3.8))
    ax.vlines(x, [p.lowest for p in points], [p.highest for p in points], color="#0072B2", alpha=0.25, lw=6,
              label="lowest–highest process")
    ax.errorbar(x, med, yerr=[med - [p.low for p in points], [p.high for p in points] - med], fmt="o-",
                color="#0072B2", ms=4, capsize=3, label="median, 95% interval")
    edges = [0, *(s.at for s in series.steps), len(points)]
    for a, b in zip(edges, edges[1:], strict=False):
        level = float(np.median(np.concatenate([np.asarray(t) for p in points[a:b] for t in p.processes])))
        ax.hlines(level, a - 0.3, b - 0.7, color="#D55E00", lw=1.2, zorder=1)
    for s in series.steps:
        ax.axvline(s.at - 0.5, color="#D55E00", linestyle="--", lw=1)
        ax.annotate(stats.cell(s.comparison).split(" (")[0], (s.at - 0.5, 0.0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(3, 4), fontsize=8, color="#D55E00")
    every = max(1, -(-len(points) // LABELS))
    ax.set_xticks(x[::every], [p.commit[:8] for p in points][::every], rotation=45 if len(points) > 6 else 0,
                  ha="right" if len(points) > 6 else "center", fontsize=8)
    better = "higher" if series.higher_is_better else "lower"
    what = "seconds per epoch" if series.kind == "bench" else "median"
    ax.set(xlabel="commit", ylabel=f"{what} ({better} is better)", xlim=(-0.6, len(points) - 0.4))
    ax.set_title(f"{series.figure}\n" + "\n".join(textwrap.wrap(machine, 80)), fontsize=8)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
