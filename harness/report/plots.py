"""The report's figures: learning curves per experiment and the training window's resources.

Curves show, per engine, the mean over seeds as a line and the lowest-to-highest seed as a band;
the x axis stops where the curves have settled and the y axis is logarithmic where the shown
values span more than two decades. Resource bars are linear, one panel per experiment and figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness import tracking

# One colour and line style per engine (Okabe-Ito blue and vermilion, apart for colour-blind readers too;
# the MLflow UI draws each engine's runs in the same).
# Scratch is drawn thin and on top, torch wide and dashed beneath: where the two coincide, torch's
# dashes show on both sides of scratch's line and neither hides the other.
STYLES = {
    "scratch": {"color": tracking.ENGINE_COLOURS["scratch"], "linestyle": "-", "lw": 1.4, "zorder": 4, "marker": "o",
                "ms": 3},
    "torch": {"color": tracking.ENGINE_COLOURS["torch"], "linestyle": "--", "lw": 3.0, "zorder": 3, "marker": "s",
              "ms": 6, "mfc": "none"},
}
OTHER = {"color": "tab:gray", "linestyle": ":", "lw": 2.0, "zorder": 2, "marker": "^", "ms": 5}
SETTLED = 0.01  # a curve has settled once it stays within 1% of its whole range of its final value
MARGIN = 1.5  # the x axis runs on half as far again past the later curve's settling epoch
FLOOR = 10  # and never shows fewer epochs than this (or the whole run when it is shorter)
DECADES = 2.0  # a logarithmic y axis where the shown values span more than this many decades
MARKERS_UP_TO = 25  # points per line that still get markers


def band(histories: dict[int, list[tuple[int, float]]]) -> pd.DataFrame:
    """Per step, the mean, lowest and highest value over the seeds' histories ({seed: [(step, value)]})."""
    frame = pd.DataFrame({seed: dict(h) for seed, h in histories.items()}).sort_index()
    out = pd.DataFrame({"mean": frame.mean(axis=1), "min": frame.min(axis=1), "max": frame.max(axis=1)})
    out.attrs["seeds"] = len(histories)
    return out


def settled_step(steps: np.ndarray, values: np.ndarray, tolerance: float = SETTLED) -> int:
    """The first step after which the curve stays within `tolerance` x its range (highest − lowest)
    of its final value; the first step for a flat curve."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) == 0:
        return 0
    off = np.abs(values - values[-1]) > tolerance * (values.max() - values.min())
    outside = np.flatnonzero(off)
    return int(steps[outside[-1] + 1]) if len(outside) else int(steps[0])


def window_end(curves: list[pd.DataFrame], last: int) -> tuple[int, int]:
    """(the last epoch the x axis shows, the epoch after which every mean curve has settled): the
    axis runs MARGIN times past the latest settling epoch, over at least FLOOR epochs, at most the run."""
    settled = max((settled_step(c.index.to_numpy(), c["mean"].to_numpy()) for c in curves if len(c)), default=last)
    return int(min(last, max(FLOOR, math.ceil(MARGIN * settled)))), settled


def wants_log(curves: list[pd.DataFrame]) -> bool:
    """Whether the shown values (every band's edges) are positive and span more than DECADES decades."""
    values = np.concatenate([c[["min", "max"]].to_numpy().ravel() for c in curves]) if curves else np.array([])
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and math.log10(values.max() / values.min()) > DECADES)


def curves_plot(runs: pd.DataFrame, name: str, out: Path) -> Path:
    """Train loss and test metric per epoch: each engine's mean over its finished seeds, with the
    min–max band over seeds, on axes fitted to where the curves move."""
    fig = curves_figure(*curve_bands(runs), name, int(runs["params.training.epochs"].astype(int).max()))
    path = out / f"{file_stem(name)}_curves.png"
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def curve_bands(runs: pd.DataFrame) -> tuple[dict[str, dict[str, pd.DataFrame]], dict[str, str]]:
    """({metric key: {engine: band}}, {metric key: panel title}) of one experiment's finished runs."""
    metric = runs["params.evaluation.metric"].iloc[0]
    titles = {"train_loss": "training loss (mean over the epoch)", f"test_{metric}": f"test {metric}"}
    curves = {key: {engine: band({run["seed"]: tracking.metric_history(run["run_id"], key)
                                  for _, run in group.iterrows()})
                    for engine, group in runs.groupby("engine", sort=False)} for key in titles}
    return curves, titles


def curves_figure(curves: dict[str, dict[str, pd.DataFrame]], titles: dict[str, str], name: str, epochs: int):
    """The figure of `curves_plot` from its bands ({key: {engine: band}}), one panel per key."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.8), sharex=True, squeeze=False)
    end, settled = window_end([c for by_engine in curves.values() for c in by_engine.values()], epochs)
    for ax, (key, by_engine) in zip(axes[0], curves.items(), strict=True):
        shown = {e: c[(c.index >= 1) & (c.index <= end)] for e, c in by_engine.items()}
        for engine, c in shown.items():
            style = dict(STYLES.get(engine, OTHER))
            seeds = by_engine[engine].attrs.get("seeds", 2)
            if seeds > 1:  # scratch's band filled, the others hatched: where bands coincide, both show
                filled = engine == "scratch"
                ax.fill_between(c.index, c["min"], c["max"], zorder=style["zorder"] - 2, lw=0.0 if filled else 0.6,
                                facecolor=style["color"] if filled else "none", edgecolor=style["color"],
                                alpha=0.2 if filled else 0.5, hatch=None if filled else "////",
                                label=f"{engine}: lowest to highest seed")
            if len(c) > MARKERS_UP_TO:
                style.pop("marker"), style.pop("ms"), style.pop("mfc", None)
            ax.plot(c.index, c["mean"], label=f"{engine}: mean of {seeds} seeds" if seeds > 1 else
                    f"{engine}: 1 seed", **style)
        ax.set_yscale("log" if wants_log(list(shown.values())) else "linear")
        ax.set(title=f"{name}: {titles[key]}", ylabel=titles[key].split(" (")[0])
        ax.set_xlim(0.5 if end > 1 else 0, end + 0.5)
        ax.set_xlabel("epoch" if end >= epochs else f"epoch (1–{end} of {epochs}: flat after epoch {settled})")
        ax.grid(alpha=0.3, lw=0.5)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# (summary key, panel title): the training window's figures, none of them the imports before it
RESOURCES = [("cpu_s", "CPU user+sys (s)"), ("cpu_percent_mean", "CPU % (100 = one core; | the peak)"),
             ("rss_train_mb", "peak RSS above baseline (MB)")]


def resources_plot(summary: pd.DataFrame, out: Path) -> Path:
    path = out / "resources.png"
    fig = resources_figure(summary)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def resources_figure(summary: pd.DataFrame):
    """Per experiment (rows) and figure (columns), one bar per engine at the mean over seeds with
    the standard deviation as its error bar, on linear axes; CPU % marks the peak rate as well.
    Each experiment's row has its own scale, so that short runs are not flattened by long ones."""
    plt = _pyplot()
    experiments = list(dict.fromkeys(summary["experiment"]))
    engines = list(dict.fromkeys(summary["engine"]))
    fig, axes = plt.subplots(len(experiments), len(RESOURCES), figsize=(11, 0.85 * len(experiments) + 1.3),
                             squeeze=False)
    peak = summary.get("cpu_percent_max_mean", pd.Series(dtype=float)).max()
    cpu_top = np.nanmax([summary["cpu_percent_mean_mean"].max(), peak if pd.notna(peak) else 0, 100]) * 1.1
    for i, experiment in enumerate(experiments):
        rows = summary[summary["experiment"] == experiment].set_index("engine")
        places = [engines.index(e) for e in rows.index]  # each engine on its own line in every row
        for j, (key, title) in enumerate(RESOURCES):
            ax = axes[i][j]
            means, stds = rows[f"{key}_mean"].fillna(0), rows[f"{key}_std"].fillna(0)
            colours = [STYLES.get(e, OTHER)["color"] for e in rows.index]
            ax.barh(places, means, xerr=stds, color=colours, height=0.7, capsize=2)
            if key == "cpu_percent_mean" and "cpu_percent_max_mean" in rows:
                ax.plot(rows["cpu_percent_max_mean"], places, "k|", ms=12, mew=2)
                ax.set_xlim(0, cpu_top)
            else:
                top = np.nanmax((means + stds).to_numpy(dtype=float), initial=0.0)
                ax.set_xlim(0, top * 1.15 if top > 0 else 1)
            ax.set_xscale("linear")
            ax.set_yticks(range(len(engines)), engines if j == 0 else [""] * len(engines), fontsize=8)
            ax.set_ylim(len(engines) - 0.5, -0.5)  # the first engine on top
            ax.tick_params(axis="x", labelsize=7)
            if j == 0:
                ax.set_ylabel(experiment, rotation=0, ha="right", va="center", fontsize=9)
            if i == 0:
                ax.set_title(title, fontsize=9)
    fig.suptitle("Training window only (mean ± std over seeds); import costs and data loading are before it",
                 fontsize=10)
    fig.tight_layout()
    return fig


def file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
