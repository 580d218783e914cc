"""The comparison report, built from the tracking store alone.

`build(bench_id)` reads the runs of one bench with mlflow.search_runs (through
harness.tracking) and writes results/report.md, results/summary.csv and PNG plots.
Every number in them is read from the store; none is typed by hand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import machine, tracking
from harness.errors import HarnessError, NothingToReport, SpecError
from harness.spec import network_from_dict, set_path

# (metric key in the child runs, column title, format)
COLUMNS = [
    ("train_time_s", "training (s)", "{:.3g}"),
    ("median_epoch_s", "median epoch (s)", "{:.3g}"),
    ("samples_per_s", "samples/s", "{:,.0f}"),
    ("eval_time_s", "evaluation (s)", "{:.3g}"),
    ("time_to_target_s", "time to target (s)", "{:.3g}"),
    ("cpu_s", "CPU user+sys (s)", "{:.3g}"),
    ("cpu_percent_mean", "CPU %", "{:.0f}"),
    ("rss_peak_mb", "peak RSS (MB)", "{:.0f}"),
]


# scratch solid, torch dashed: where the engines agree, both lines stay visible on top of each other
STYLES = {"scratch": {"color": "tab:blue", "linestyle": "-"}, "torch": {"color": "tab:orange", "linestyle": "--"}}


@dataclass
class Report:
    bench_id: str
    files: list[Path]
    summary: pd.DataFrame


def build(bench_id: str | None = None, out_dir: str | Path = "results", uri: str | None = None,
          attach: bool = True, log: Callable[[str], None] = print) -> Report:
    """Write the report of a bench (default: the newest in the store) into `out_dir`."""
    tracking.quiet()
    if bench_id is not None and not BENCH_ID.fullmatch(bench_id):
        raise SpecError(f"--bench-id {bench_id!r}: a bench id is letters, digits, '.', '_' and '-' "
                        "(as `harness bench` prints it, e.g. 20261123-222809-0b97b8)")
    out = _writable(Path(out_dir))
    if bench_id is None:
        ids = tracking.bench_ids(uri)
        if not ids:
            raise NothingToReport(f"no bench in {tracking.resolve_uri(uri)}; run `harness bench` first")
        bench_id = ids[0]
    parents, children = tracking.bench_runs(bench_id, uri)
    if children.empty:
        raise NothingToReport(f"bench {bench_id} has no runs yet: nothing to report")
    parents, children = _complete(parents), _complete(children)
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
        files.append(bars_plot(summary, out))
    md = markdown(bench_id, parents, children, summary, [f.name for f in files if f.suffix == ".png"])
    md += "\n".join(perf_agreement(parents, children, tracking.latest_perf(uri)))
    (out / "report.md").write_text(md)
    files.insert(0, out / "report.md")
    if attach:
        tracking.attach_report(parents["run_id"].tolist(), files, uri)
    log(f"report of bench {bench_id} written to {out}/: {', '.join(f.name for f in files)}")
    return Report(bench_id, files, summary)


BENCH_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# columns the report reads: absent when every run failed, or while a bench still runs
EXPECTED = ("metrics.cpu_user_s", "metrics.cpu_system_s", "metrics.wall_s", "end_time", "tags.harness.engine",
            "params.variant", "params.training.batch_size")


def _complete(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with every column the report reads (missing ones empty), so that a bench whose runs
    all failed, was interrupted or is still running is reported as far as it got."""
    for col in EXPECTED:
        if col not in runs:
            runs[col] = pd.NaT if col == "end_time" else math.nan
    return runs


def _writable(out: Path) -> Path:
    """The report's folder, made if needed; a clear error if it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".harness-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise HarnessError(f"cannot write the report to {out}: {e.strerror or e}") from None
    return out


def perf_agreement(parents: pd.DataFrame, children: pd.DataFrame, perf: tuple | None) -> list[str]:
    """Whether this bench's speedup and the newest `harness perf` run's scratch / torch ratio at the
    same batch size agree within their spreads: the two tools time the same steady-state epochs."""
    if perf is None:
        return []
    from harness.perf import ratio

    run_id, m, params, _ = perf
    lines = ["", "## Agreement with `harness perf`", "",
             f"The newest `harness perf` run (`{run_id[:8]}`, {params.get('experiment')}) timed the same network's "
             "steady-state epochs another way (a fresh process per repeat, one whole epoch after a warm-up). "
             "Bench speedup (min–max over seeds) against perf's scratch / torch ratio (min–max over repeats):", ""]
    found = False
    for _, parent in parents.iterrows():
        runs = children[children["tags.mlflow.parentRunId"] == parent["run_id"]]
        if parent["params.experiment"] != params.get("experiment") or runs.empty:
            continue
        batch = runs["params.training.batch_size"].iloc[0]
        key = f"train_sps.{{}}.b{batch}"
        mid, lo, hi = ratio(m, key.format("scratch"), key.format("torch"))
        speed, s_lo, s_hi = (parent.get(f"metrics.{k}") for k in ("speedup", "speedup_min", "speedup_max"))
        if any(pd.isna(v) for v in (mid, speed, s_lo, s_hi)):
            continue
        found = True
        overlap = s_lo <= hi and lo <= s_hi
        lines.append(f"- {parent['group']}, batch {batch}: bench {speed:.2f}x ({s_lo:.2f}–{s_hi:.2f}), perf "
                     f"{mid:.2f}x ({lo:.2f}–{hi:.2f}): " + ("the spreads overlap." if overlap else
                                                           "**the spreads do not overlap**: the machine changed "
                                                           "between the two, or one of them is wrong."))
    return lines + [""] if found else []


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
               "failed": int((runs["status"] != "FINISHED").sum())}
        for key, column in [("test_metric", f"test_{metric}"), ("test_mae", "test_mae"),
                            *((c[0], c[0]) for c in COLUMNS),
                            *((f"more_tests.{t}", f"test_{metric}_{t}") for t in more_tests(children, metric))]:
            col = f"metrics.{column}"
            values = done[col].dropna() if col in done else pd.Series(dtype=float)
            row[f"{key}_mean"] = values.mean() if len(values) else math.nan
            row[f"{key}_std"] = values.std(ddof=1) if len(values) > 1 else (0.0 if len(values) else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def more_tests(children: pd.DataFrame, metric: str) -> list[str]:
    """The names of the further test sets the runs were scored on (`test_accuracy_32bit` -> "32bit")."""
    prefix = f"metrics.test_{metric}_"
    return sorted({c.removeprefix(prefix) for c in children.columns
                   if c.startswith(prefix) and children[c].notna().any()})


def _cell(row: pd.Series, key: str, fmt: str) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None or pd.isna(mean):
        return "—"
    return fmt.format(mean) + (f" ± {fmt.format(std)}" if std and not pd.isna(std) and std > 0 else "")


def _machine_tags(children: pd.DataFrame) -> dict[str, str]:
    """The machine record as the runs' own processes saw it: NumPy's BLAS from any run, torch's
    from a torch run (the parent process never loads torch)."""
    out: dict[str, str] = {}
    for _, run in children.sort_values("tags.harness.engine", ascending=True).iterrows():
        out.update({k.removeprefix("tags."): str(v) for k, v in run.items()
                    if k.startswith("tags.") and isinstance(v, str) and k.removeprefix("tags.") not in out
                    and not k.endswith(".threads")})  # threads differ by experiment: each section says its own
    return out


def markdown(bench_id: str, parents: pd.DataFrame, children: pd.DataFrame, summary: pd.DataFrame,
             plots: list[str]) -> str:
    tags = parents.iloc[0]
    tag = lambda k: tags.get(f"tags.{k}", "?")  # noqa: E731
    started = pd.to_datetime(children["start_time"]).min()
    ended = pd.to_datetime(children["end_time"]).max()
    lines = [
        "# nn-harness benchmark report", "",
        f"Bench `{bench_id}`, {len(children)} runs from {started:%Y-%m-%d %H:%M} UTC, "
        f"{(ended - started).total_seconds():.0f} s from first run start to last run end "
        f"({parents['metrics.wall_s'].sum():.0f} s of bench wall time, processes and logging included).",
        f"Machine: {machine.summary(_machine_tags(children))} MLflow {tag('version.mlflow')}; "
        f"project commit `{str(tag('git.commit'))[:10]}`" + (" (uncommitted changes)." if tag("git.dirty") == "true"
                                                             else "."),
        "",
        "Built by `harness report` from the tracking store; every figure is the mean ± standard deviation over "
        "seeds of the child runs' metrics. Training time excludes data loading, model construction and "
        "evaluation; time to target includes evaluation. Each run had a fresh process.",
    ]
    for _, parent in parents.iterrows():
        name = parent["group"]
        rows = summary[summary["experiment"] == name]
        if rows.empty:
            continue
        runs = children[children["experiment"] == name]
        metric = rows["metric"].iloc[0]
        first = runs.iloc[0]
        description = parent.get("tags.mlflow.note.content")
        lines += ["", f"## {name}", ""] + ([description, ""] if isinstance(description, str) else [])
        lines += [_architecture(first), ""]
        extra = ["test_mae"] if rows["test_mae_mean"].notna().any() else []
        further = [t for t in more_tests(runs, metric) if f"more_tests.{t}_mean" in rows]
        head = [f"test {metric}", *(f"test {metric}, {t}" for t in further), *(["test MAE"] if extra else []),
                *(c[1] for c in COLUMNS)]
        lines += ["| engine | runs | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
        for _, row in rows.iterrows():
            cells = [_cell(row, "test_metric", "{:.4f}"), *(_cell(row, f"more_tests.{t}", "{:.4f}") for t in further),
                     *(_cell(row, k, "{:.3g}") for k in extra), *(_cell(row, k, f) for k, _, f in COLUMNS)]
            runs_cell = f"{row['runs'] - row['failed']}" + (f" (+{row['failed']} failed)" if row["failed"] else "")
            lines.append(f"| {row['engine']} | {runs_cell} | " + " | ".join(cells) + " |")
        lines += [""] + _comparison_lines(parent, runs, metric)
        plot = f"{_file_stem(name)}_curves.png"
        if plot in plots:
            lines += ["", f"![{name}: loss and {metric} per epoch, both engines]({plot})"]
    if "resources.png" in plots:
        lines += ["", "## Training time and memory", "", "![training time and peak memory](resources.png)"]
    lines += ["", "## Columns", "",
              "- **training**: sum of the epochs' training clocks; **median epoch**: median of those clocks.",
              "- **samples/s**: training samples per second of training clock.",
              "- **time to target**: training + evaluation time until the test metric first reached the "
              "experiment's target (MLPerf's rule).",
              "- **CPU user+sys**, **CPU %** (100 = one core busy), **peak RSS**: this run's process, "
              "sampled by psutil every 50 ms over the training window.",
              "- **speedup**: torch's median steady-state epoch time over scratch's (the first epoch of each run "
              "is the warm-up and is left out, as `harness perf` leaves out its warm-up); above 1, scratch is "
              "faster. The spread is the lowest and highest ratio of one seed's medians.",
              "- **agreement**: share of test samples on which both engines, trained from the same seed, "
              "make the same decision.", ""]
    return "\n".join(lines)


def _network(run: pd.Series) -> str:
    """The network a run logged (its `network.*` parameters), described as the spec describes it."""
    raw: dict = {}
    for key, value in run.items():
        if isinstance(key, str) and key.startswith("params.network.") and isinstance(value, str):
            try:
                parsed = json.loads(value) if value[:1] in "[{" else value
            except json.JSONDecodeError:
                parsed = value
            set_path(raw, key.removeprefix("params."), _number(parsed), "logged parameter")
    try:
        return network_from_dict(raw["network"], source="logged parameters").describe().replace(" -> ", " → ")
    except (SpecError, KeyError):
        return "(not recorded)"


def _number(value):
    """A logged scalar back as the number it was (MLflow stores parameters as text)."""
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return value


def _architecture(run: pd.Series) -> str:
    return (f"Network {_network(run)}; loss {run['params.training.loss']}, optimizer "
            f"{run['params.training.optimizer.name']} (lr {run['params.training.optimizer.learning_rate']}), "
            f"{run['params.training.epochs']} epochs of batch {run['params.training.batch_size']}, "
            f"{run['params.training.dtype']}, {run['params.threads']} thread(s).")


def _comparison_lines(parent: pd.Series, runs: pd.DataFrame, metric: str) -> list[str]:
    get = lambda k: parent.get(f"metrics.{k}")  # noqa: E731
    out = []
    speedup = get("speedup")
    if speedup is not None and not pd.isna(speedup):
        faster = "scratch" if speedup >= 1 else "torch"
        ratio = speedup if speedup >= 1 else 1 / speedup
        lo, hi = get("speedup_min"), get("speedup_max")
        spread = f" ({lo:.2f}–{hi:.2f} over seeds)" if lo is not None and not pd.isna(lo) else ""
        out.append(f"- **speedup**: {speedup:.2f}{spread} — {faster} trains {ratio:.2f}x faster per steady-state "
                   "epoch (median epoch time, the first epoch of each run left out as the warm-up).")
    gap = get("accuracy_gap")
    if gap is not None and not pd.isna(gap):
        out.append(f"- **{metric} gap** (scratch − torch, mean over seeds): {gap:+.4f}.")
    agree, n = get("agreement_mean"), get("agreement_n")
    if agree is not None and not pd.isna(agree):
        out.append(f"- **agreement**: the two engines decide alike on {agree:.2%} of the {n:,.0f} test samples "
                   f"(mean over seeds; lowest {get('agreement_min'):.2%}).")
    same = get("onnx_agreement_count_min")
    if same is not None and not pd.isna(same) and n is not None and not pd.isna(n):
        worst = runs["metrics.onnx_max_abs_diff"].max() if "metrics.onnx_max_abs_diff" in runs else math.nan
        out.append(f"- **ONNX**: the two engines' saved ONNX files, run by onnxruntime, agree on {same:,.0f} of "
                   f"{n:,.0f} test predictions (the lowest over seeds); each file reproduces its own engine's "
                   f"outputs to within {worst:.1e}.")
    for _, run in runs[runs["status"] != "FINISHED"].iterrows():
        reason = run.get("tags.harness.failure_reason")
        reason = reason.splitlines()[0] if isinstance(reason, str) else "no reason recorded"
        out.append(f"- **{run['engine']} seed {run['seed']} {run['status']}**: {reason}")
    return out


def curves_plot(runs: pd.DataFrame, name: str, out: Path) -> Path:
    """Train loss and test metric per epoch, every seed of both engines overlaid."""
    plt = _pyplot()
    metric = runs["params.evaluation.metric"].iloc[0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for _, run in runs.iterrows():
        style = STYLES.get(run["engine"], {"color": "tab:gray"})
        label = f"{run['engine']} seed {run['seed']}"
        for ax, key in ((a, "train_loss"), (b, f"test_{metric}")):
            history = tracking.metric_history(run["run_id"], key)
            ax.plot([h[0] for h in history], [h[1] for h in history], alpha=0.8, lw=1.3, label=label, **style)
    a.set(xlabel="epoch", ylabel="train loss (mean over the epoch)", yscale="log", title=f"{name}: training loss")
    b.set(xlabel="epoch", ylabel=f"test {metric}", title=f"{name}: test {metric}")
    handles, labels = a.get_legend_handles_labels()
    a.legend(handles, labels, fontsize=7)
    fig.tight_layout()
    path = out / f"{_file_stem(name)}_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bars_plot(summary: pd.DataFrame, out: Path) -> Path:
    """Training time and peak RSS, per experiment and engine, with the std over seeds."""
    plt = _pyplot()
    experiments = list(dict.fromkeys(summary["experiment"]))
    engines = list(dict.fromkeys(summary["engine"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / max(1, len(engines))
    for ax, key, title in ((axes[0], "train_time_s", "training time (s, log scale)"),
                           (axes[1], "rss_peak_mb", "peak RSS (MB)")):
        for j, engine in enumerate(engines):
            rows = summary[summary["engine"] == engine].set_index("experiment").reindex(experiments)
            xs = [i + (j - (len(engines) - 1) / 2) * width for i in range(len(experiments))]
            ax.bar(xs, rows[f"{key}_mean"], width, yerr=rows[f"{key}_std"].fillna(0), label=engine, capsize=3,
                   color=STYLES.get(engine, {}).get("color"))
        ax.set_xticks(range(len(experiments)), experiments, rotation=15)
        ax.set_title(title)
        if key == "train_time_s":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "resources.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
