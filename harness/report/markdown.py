"""The text of report.md: a table per window (test set, the engines compared, training time,
resources), then a section per experiment with its network, failures, ONNX check and curves.

Every figure in it is harness.text.figure(mean, spread); no line is repeated.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from harness import machine, stats
from harness.errors import SpecError
from harness.report import busy
from harness.report import plots as plots_rule
from harness.report.plots import file_stem
from harness.spec import network_from_dict, set_path
from harness.text import duration, figure, plural, table

# (summary key = metric key in the child runs, column title), one list per table: each table one window
TIME = [("train_time_s", "training (s)"), ("median_epoch_s", "median epoch (s)"), ("samples_per_s", "samples/s"),
        ("eval_time_s", "evaluation (s)"), ("time_to_target_s", "time to target (s)")]
RESOURCES = [("cpu_s", "CPU user+sys (s)"), ("cpu_percent_mean", "CPU % mean"), ("cpu_percent_max", "CPU % peak"),
             ("rss_baseline_mb", "baseline RSS (MB)"), ("rss_peak_mb", "peak RSS (MB)"),
             ("rss_train_mb", "peak above baseline (MB)")]


def perf_agreement(parents: pd.DataFrame, children: pd.DataFrame, perf: tuple | None) -> list[str]:
    """Whether this bench's speedup and the newest `harness perf` run's scratch / torch ratio at the same
    batch size overlap, by their 95% intervals (by their ranges where a run has none): the two tools time
    the same steady-state epochs."""
    if perf is None:
        return []
    run_id, m, params, _ = perf
    lines = ["", "## Agreement with `harness perf`", "",
             f"The newest `harness perf` run (`{run_id[:8]}`, {params.get('experiment')}) timed the same network's "
             "steady-state epochs another way (a fresh process per repeat, one whole epoch after a warm-up). "
             "The bench's speedup against perf's scratch / torch ratio, each by its 95% interval (by the lowest to "
             "highest seed and repeat where a run has no interval):", ""]
    found = False
    for _, parent in parents.iterrows():
        runs = children[children["tags.mlflow.parentRunId"] == parent["run_id"]]
        if parent["params.experiment"] != params.get("experiment") or runs.empty:
            continue
        batch = runs["params.training.batch_size"].iloc[0]
        key = f"train_sps.{{}}.b{batch}"
        what, (lo, hi), (s_lo, s_hi) = _agreement_bands(parent, m, key.format("scratch"), key.format("torch"))
        if any(pd.isna(v) for v in (lo, hi, s_lo, s_hi)):
            continue
        found = True
        overlap = s_lo <= hi and lo <= s_hi
        lines.append(f"- {parent['group']}, batch {batch}: bench {s_lo:.2f}–{s_hi:.2f}, perf {lo:.2f}–{hi:.2f}: "
                     + (f"the {what} overlap." if overlap else f"**the {what} do not overlap**: the machine "
                                                              "changed between the two, or one of them is wrong."))
    return lines + [""] if found else []


def _agreement_bands(parent: pd.Series, m: dict, a: str, b: str) -> tuple[str, tuple, tuple]:
    """What the bench and perf are compared by: their 95% intervals where both have one, else their
    ranges (the lowest to highest seed, the widest pairing of perf's repeats)."""
    from harness.perf import comparison, ratio

    c = comparison(m, a, b)
    bench_ci = tuple(parent.get(f"metrics.speedup_ci_{k}") for k in ("low", "high"))
    if c is not None and not any(v is None or pd.isna(v) for v in bench_ci):
        return "95% intervals", (c.low, c.high), bench_ci
    return "ranges", ratio(m, a, b)[1:], tuple(parent.get(f"metrics.speedup_{k}") for k in ("min", "max"))


def _cell(row: pd.Series, key: str) -> str:
    return figure(row.get(f"{key}_mean"), row.get(f"{key}_std"))


def _machine_tags(children: pd.DataFrame) -> dict[str, str]:
    """The machine record as the runs' own processes saw it: NumPy's BLAS from any run, torch's
    from a torch run (the parent process never loads torch)."""
    out: dict[str, str] = {}
    for _, run in children.sort_values("tags.harness.engine", ascending=True).iterrows():
        out.update({k.removeprefix("tags."): str(v) for k, v in run.items()
                    if k.startswith("tags.") and isinstance(v, str) and k.removeprefix("tags.") not in out
                    and not k.endswith(".threads")})  # threads differ by experiment: each section says its own
    return out


def markdown(benches: list[str], parents: pd.DataFrame, children: pd.DataFrame, summary: pd.DataFrame,
             plots: list[str], left_out: list[str] = ()) -> str:
    """report.md of the runs of `benches` (one, or the newest of each experiment), with the lines
    `left_out` saying what of the store it does not show."""
    lines = [
        "# nn-harness benchmark report", "",
        *(_bench(benches[0], parents, children) if len(benches) == 1 else
          [f"The newest bench of each experiment, {plural(len(benches), 'bench', 'benches')}:", "",
           *(f"- {_bench(b, *_of(b, parents, children), True)}" for b in benches)]),
        *left_out,
        "",
        "Built by `harness report` from the tracking store. Every figure is the mean ± standard deviation over "
        "an experiment's finished seeds, the spread rounded to one significant digit (two when it begins with "
        "1 or 2) and the mean to the same place; a figure without ± comes from one seed, or every seed gave it "
        "alike. Each run had a fresh process; each table says which part of the run it measures.",
    ]
    lines[1:1] = busy.first_lines(children)  # before anything else: what the figures are worth
    lines += _test_table(summary) + _compared_table(parents, children) + busy.section(children) + _time_table(summary)
    lines += _resource_table(summary, "resources.png" in plots)
    lines += ["", "## Experiments", "",
              "Each plot shows, per engine, the mean over seeds as a line and the lowest to highest seed as a band "
              f"(scratch solid and on top, torch dashed and hatched). The x axis runs to {plots_rule.MARGIN:g} times "
              "the epoch after which every mean curve stays within "
              f"{plots_rule.SETTLED:.0%} of its range of its last value (at least {plots_rule.FLOOR} epochs); "
              f"a y axis is logarithmic where its values span more than {plots_rule.DECADES:g} decades."]
    seen: set[str] = set()
    for _, parent in parents.iterrows():
        name = parent["group"]
        runs = children[children["experiment"] == name]
        if runs.empty:
            continue
        description = parent.get("tags.mlflow.note.content")
        bench = f" (bench `{parent['tags.harness.bench_id']}`)" if len(benches) > 1 else ""
        lines += ["", f"### {name}{bench}", ""]
        if isinstance(description, str) and description not in seen:  # a sweep's variants share theirs
            lines += [description, ""]
            seen.add(description)
        architecture = _architecture(runs.iloc[0])
        lines.append(architecture if architecture not in seen else f"As above, with {parent.get('params.variant')}.")
        seen.add(architecture)
        failures = [f"- **{name}, {run['engine']} seed {run['seed']} {run['status']}**: {_reason(run)}"
                    for _, run in runs[runs["status"] != "FINISHED"].iterrows()]
        lines += _onnx(parent, runs[runs["status"] == "FINISHED"])
        lines += [""] + failures if failures else []
        plot = f"{file_stem(name)}_curves.png"
        if plot in plots:
            metric = runs["params.evaluation.metric"].iloc[0]
            lines += ["", f"![{name}: training loss and test {metric} per epoch, each engine's mean over seeds "
                          f"with its min–max band]({plot})"]
    return "\n".join(lines + [""])


def _of(bench_id: str, parents: pd.DataFrame, children: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The parent and child runs of one bench."""
    return tuple(runs[runs["tags.harness.bench_id"] == bench_id] for runs in (parents, children))


def _bench(bench_id: str, parents: pd.DataFrame, children: pd.DataFrame, one_line: bool = False):
    """What a bench ran, when, on what and at which commit: two lines, or `one_line` naming its experiments."""
    tags = parents.iloc[0]
    tag = lambda k: tags.get(f"tags.{k}", "?")  # noqa: E731
    ran = f"{plural(len(children), 'run')} of " + (", ".join(parents["group"]) if one_line
                                                   else plural(len(parents), "experiment"))
    lines = [f"Bench `{bench_id}`: {ran}, {_wall(parents, children)}.",
             f"Machine: {machine.summary(_machine_tags(children))} MLflow {tag('version.mlflow')}; "
             f"project commit `{str(tag('git.commit'))[:10]}`" + (" (uncommitted changes)."
                                                                  if tag("git.dirty") == "true" else ".")]
    return " ".join(lines) if one_line else lines


def _wall(parents: pd.DataFrame, children: pd.DataFrame) -> str:
    """When the bench started and how long it took: its wall time, stated once."""
    started = pd.to_datetime(children["start_time"]).min()
    text = f"started {started:%Y-%m-%d %H:%M} UTC"
    if parents["metrics.wall_s"].notna().all():
        return f"{text}; it took {duration(parents['metrics.wall_s'].sum())} of wall time, processes and logging " \
            "included"
    ended = pd.to_datetime(children["end_time"]).max()
    return text + ("; not finished" if pd.isna(ended) else
                   f"; not finished, {duration((ended - started).total_seconds())} from the first run's start to "
                   "the last run's end so far")


def _test_table(summary: pd.DataFrame) -> list[str]:
    further = any(c.startswith("more_tests.") and summary[c].notna().any() for c in summary.columns)
    mae = summary["test_mae_mean"].notna().any()
    head = ["experiment", "engine", "seeds", "metric", "test", *(["further test sets"] if further else []),
            *(["test MAE"] if mae else [])]
    rows = []
    for _, row in summary.iterrows():
        seeds = f"{row['runs'] - row['failed']}" + (f" (+{row['unfinished']})" if row["failed"] else "")
        cells = [row["experiment"], row["engine"], seeds, row["metric"], _cell(row, "test_metric")]
        if further:
            names = [c.removeprefix("more_tests.").removesuffix("_mean") for c in row.index
                     if c.startswith("more_tests.") and c.endswith("_mean") and pd.notna(row[c])]
            cells.append("; ".join(f"{t} {_cell(row, f'more_tests.{t}')}" for t in names) or "—")
        cells += [_cell(row, "test_mae")] if mae else []
        rows.append(cells)
    return ["", "## Test set", "",
            "Window: **evaluation**. Each run's model scored once on the experiment's test set after its last "
            "epoch (and on the further test sets where the experiment has some).", "", *table(head, rows, 4)]


def _compared_table(parents: pd.DataFrame, children: pd.DataFrame) -> list[str]:
    rows = [_compared(parent, children[children["experiment"] == parent["group"]]) for _, parent in parents.iterrows()]
    rows = [r for r in rows if r is not None]
    if not rows:
        return []
    head = ["experiment", "speedup [95% CI] (seeds)", "difference", "test gap", "agreement", "lowest seed"]
    return ["", "## The engines compared", "",
            "Scratch and torch trained from the same seed on the same data in the same order. **speedup** "
            "(window: **training**): torch's steady-state epoch time over scratch's, the median over every epoch "
            "of every seed on each side (the first epoch of each run left out as the warm-up, as `harness perf` "
            "leaves out its own); above 1, scratch is faster. It is the figure `harness bench` prints and logs as "
            "the parent run's `engines/scratch_speedup`. In brackets its 95% confidence interval, by a bootstrap "
            "over the seeds and the epochs within each; in parentheses the lowest and highest seed's own ratio. "
            f"**difference** says scratch faster or slower only when the interval lies outside 1 ± "
            f"{stats.THRESHOLD:.0%}; otherwise `~`, no significant difference. The rest (window: **evaluation**): "
            "**test gap** is scratch's test metric minus "
            "torch's, per seed; **agreement** the share of test samples on which the two engines decide alike "
            "(mean over seeds, then the lowest seed). Each experiment's section says how its ONNX files agree.",
            "", *table(head, rows)]


def _compared(parent: pd.Series, runs: pd.DataFrame) -> list[str] | None:
    """One row of the comparison table, or None when the two engines have no seed in common."""
    get = lambda k: parent.get(f"metrics.{k}")  # noqa: E731
    done = runs[runs["status"] == "FINISHED"]
    scratch, torch_ = (done[done["engine"] == e].set_index("seed") for e in ("scratch", "torch"))
    both = scratch.index.intersection(torch_.index)
    if both.empty:
        return None
    left_out = busy.busy_seeds(runs)  # the speedup leaves out every seed with a run on a busy machine
    metric = f"metrics.test_{runs['params.evaluation.metric'].iloc[0]}"
    per_seed = lambda s: figure(s.mean(), s.std(ddof=1) if len(s) > 1 else None)  # noqa: E731
    if both.difference(list(left_out)).empty:
        speed = ["— (busy machine)", "—"]
    else:
        speed = _speedup_cells(parent, done[~done["seed"].isin(left_out)])
    gap = per_seed(scratch.loc[both, metric] - torch_.loc[both, metric]) if metric in done else "—"
    agree, lowest = get("agreement_mean"), get("agreement_min")
    percent = lambda v: "—" if v is None or pd.isna(v) else f"{v:.2%}"  # noqa: E731
    return [parent["group"], *speed, gap, percent(agree), percent(lowest)]


def bench_speedup(runs: pd.DataFrame) -> stats.Comparison | None:
    """The bench's speedup over these finished runs, by the bench's own definition (`run.bench.epoch_speedup`),
    from each run's per-epoch training times in the store; None where an engine has none."""
    from harness import tracking
    from harness.run.bench import epoch_speedup, speedup_comparison
    from harness.run.runner import steady_epochs

    times: dict[str, dict[int, list[float]]] = {"scratch": {}, "torch": {}}
    for _, run in runs.iterrows():
        if run["engine"] in times:
            history = [v for _, v in tracking.metric_history(run["run_id"], "epoch_time_s")]
            if history:
                times[run["engine"]][int(run["seed"])] = steady_epochs(history)
    if not times["scratch"] or not times["torch"]:
        return None
    return speedup_comparison(epoch_speedup(times["scratch"], times["torch"]))


def _speedup_cells(parent: pd.Series, done: pd.DataFrame) -> list[str]:
    """The speedup's two cells: the ratio with its interval and range, and the verdict. A store without
    per-epoch times gives the parent run's figure as it was logged."""
    c = bench_speedup(done)
    if c is None:
        from harness.run.bench import speedup_comparison

        c = speedup_comparison({k: parent.get(f"metrics.{k}") for k in (
            "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_min", "speedup_max", "speedup_cv",
            "speedup_seeds_needed")})
    if c is None:
        return [figure(parent.get("metrics.speedup")), "—"]
    warning = c.warning("seeds")
    return [stats.cell(c), stats.words(c, "scratch faster", "scratch slower") + (f" ({warning})" if warning else "")]


def _onnx(parent: pd.Series, runs: pd.DataFrame) -> list[str]:
    """How the two engines' ONNX files agree (evaluation window), or nothing when they were not compared."""
    same, n = parent.get("metrics.onnx_agreement_count_min"), parent.get("metrics.agreement_n")
    if any(v is None or pd.isna(v) for v in (same, n)):
        return []
    worst = runs["metrics.onnx_max_abs_diff"].max() if "metrics.onnx_max_abs_diff" in runs else math.nan
    return ["", f"ONNX of {parent['group']} (window: **evaluation**): the two engines' saved ONNX files, run by "
                f"onnxruntime, agree on {same:,.0f} of {plural(n, 'test prediction')} (the lowest seed); each file "
                f"reproduces its own engine's outputs to within {worst:.1e}."]


def _time_table(summary: pd.DataFrame) -> list[str]:
    rows = [[row["experiment"], row["engine"], *(_time_cell(row, k) for k, _ in TIME)]
            for _, row in summary.iterrows()]
    return ["", "## Training time", "",
            "Window: **training**, the epochs' training clocks (no data loading, model construction or "
            "evaluation): **training** is their sum, **median epoch** their median, **samples/s** training "
            "samples per second of it. **evaluation** is timed on its own (the last epoch's test-set pass); "
            "**time to target** is training + evaluation until the test metric first reached the experiment's "
            f"target (MLPerf's rule), with at least {stats.OLYMPIC_MIN} seeds also its olympic mean (the "
            "fastest and the slowest seed left out, as MLPerf scores it).", "",
            *table(["experiment", "engine", *(t for _, t in TIME)], rows, 2)]


def _time_cell(row: pd.Series, key: str) -> str:
    olympic = row.get(f"{key}_olympic")
    extra = f" (olympic {figure(olympic, None)})" if olympic is not None and not pd.isna(olympic) else ""
    return _cell(row, key) + extra


def _resource_table(summary: pd.DataFrame, plot: bool) -> list[str]:
    rows = [[row["experiment"], row["engine"], *(_cell(row, k) for k, _ in RESOURCES)]
            for _, row in summary.iterrows()]
    return ["", "## Resources", "",
            "Window: **training** only, the run's own process sampled by psutil every 50 ms. **CPU user+sys**: "
            "CPU seconds; **CPU %**: 100 is one core busy, the mean over the window and the peak over sub-windows "
            "of at least 0.5 s; **baseline RSS**: resident memory as training starts (interpreter, libraries and "
            "data: the import costs); **peak above baseline**: the training's own memory.", "",
            *table(["experiment", "engine", *(t for _, t in RESOURCES)], rows, 2),
            *(["", "![CPU seconds, CPU % and peak RSS above the baseline over the training window, per experiment "
               "and engine](resources.png)"] if plot else [])]


def _reason(run: pd.Series) -> str:
    reason = run.get("tags.harness.failure_reason")
    return reason.splitlines()[0] if isinstance(reason, str) else "no reason recorded"


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
            f"{plural(int(run['params.training.epochs']), 'epoch')} of batch {run['params.training.batch_size']}, "
            f"{run['params.training.dtype']}, {plural(int(run['params.threads']), 'thread')}.")
