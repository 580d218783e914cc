"""The benchmark: every experiment x engine x seed, each run in a fresh process, one at a time.

Engines are interleaved seed by seed (scratch 0, torch 0, scratch 1, ...) so that any
drift in the machine touches both alike. Everything is checked before the first run
starts: an experiment file that fails validation creates no run in the store. A run whose
window had other processes using more than `busy_threshold` of the cores is tagged as measured on
a busy machine (`harness.run.interference`), said so in one line, and left out of the speedup.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import spec as specs
from harness import stats, tracking
from harness.data import DATASETS
from harness.errors import HarnessError, SpecError
from harness.metrics import get as get_metric
from harness.run import interference
from harness.run.isolation import RunProcess
from harness.run.prepare import check_fits, threads_for
from harness.run.runner import RunResult
from harness.tracking.store import StoreWriteError

MONITOR = {"interval": 0.05}
COMPARED = ("train_time_s", "median_epoch_s", "steady_epoch_s", "eval_time_s", "samples_per_s", "time_to_target_s",
            "cpu_user_s", "cpu_system_s", "cpu_percent_mean", "rss_baseline_mb", "rss_peak_mb", "rss_train_mb")
EXPERIMENTS_DIR = Path("experiments")


@dataclass
class ExperimentOutcome:
    spec: specs.ExperimentSpec
    parent_run_id: str
    variant: str = ""  # the sweep combination, "" without a sweep
    results: dict[tuple[str, int], RunResult] = field(default_factory=dict)
    failures: dict[tuple[str, int], str] = field(default_factory=dict)
    busy: dict[tuple[str, int], str] = field(default_factory=dict)  # runs measured on a busy machine: why
    comparison: dict[str, float] = field(default_factory=dict)


def default_experiments() -> list[Path]:
    files = sorted(EXPERIMENTS_DIR.glob("*.toml"))
    if not files:
        raise SpecError(f"no experiment files in {EXPERIMENTS_DIR.resolve()}; name some: harness bench FILE.toml")
    return files


def load_all(paths: Sequence[str | Path], overrides: Sequence[str]) -> list[tuple[str, specs.ExperimentSpec]]:
    """Every experiment, each sweep expanded into its variants (label, spec), validated, and each
    network checked against its dataset, before anything runs."""
    files = [specs.load(p, overrides) for p in paths]
    names = [s.name for s in files]
    if len(set(names)) != len(names):
        raise SpecError(f"two experiment files share a name ({', '.join(names)}); names must differ")
    loaded = [(label, variant) for s in files for label, variant in s.variants()]
    for _, s in loaded:
        info = DATASETS[s.data.dataset]
        rows = info.train_rows(s.data)
        if s.data.dataset == "mnist":
            from harness.data import mnist
            from harness.data.base import validation_rows

            if s.data.path:  # the files' headers, before any run: a missing folder is no FAILED run
                n = mnist.check_idx_folder(Path(s.data.path).expanduser())
                n = min(n, s.data.train_size or n)
                rows = n - validation_rows(n, s.data.validation)
            else:
                mnist.read_cache()  # a clear error now, not after other experiments ran
        check_fits(s, info, rows)
    return loaded


Job = tuple[str, int]  # (engine, seed)
Done = tuple[str, int, "RunResult | HarnessError"]


class LocalExecutor:
    """Runs one after another on this machine, each in a fresh process (the default)."""

    name = "local"

    def __init__(self, monitor: dict | None = None) -> None:
        self.monitor = monitor or MONITOR  # the Monitor's arguments in each run's process

    def run(self, tracker: tracking.Tracker, s: specs.ExperimentSpec, jobs: list[Job], threads: int,
            parent_id: str, busy_threshold: float = interference.BUSY_THRESHOLD) -> Iterator[Done]:
        """The jobs in order. Each run's process starts while the one before finishes its untimed work
        (its ONNX check, then the parent's logging), and waits for its turn to start a clock."""
        ahead: RunProcess | None = None

        def start(k: int) -> RunProcess | None:
            if k >= len(jobs):
                return None
            return RunProcess(s, *jobs[k], threads=threads, monitor=self.monitor, export=True)

        try:
            for k, (engine, seed) in enumerate(jobs):
                process, ahead = ahead or start(k), None

                def released(k: int = k) -> None:
                    nonlocal ahead
                    ahead = start(k + 1)

                try:
                    yield engine, seed, run_one(tracker, s, engine, seed, threads, monitor=self.monitor,
                                                busy_threshold=busy_threshold, process=process, on_released=released)
                except HarnessError as e:
                    yield engine, seed, e
        finally:
            if ahead is not None:  # the bench stopped early: the run started ahead never gets its turn
                ahead.close(failed=True)


def bench(paths: Sequence[str | Path], overrides: Sequence[str] = (), uri: str | None = None,
          threads: int | None = None, out: Callable[[str], None] = print,
          executor: LocalExecutor | None = None,
          busy_threshold: float = interference.BUSY_THRESHOLD) -> tuple[str, list[ExperimentOutcome]]:
    """Run the benchmark; returns the bench id and each experiment's outcome. A run whose window had
    other processes above `busy_threshold` of the usable cores is said so and left out of the speedup."""
    experiments = load_all(paths, overrides)
    executor = executor or LocalExecutor()
    tracking.quiet()
    uri = tracking.connect(uri)
    reaped = tracking.reap_orphans(uri)
    if reaped:
        out(f"marked FAILED {reaped} run(s) left RUNNING by a harness process that no longer exists")
    bench_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    tracker = tracking.Tracker(uri, bench_id)
    total = sum(len(s.bench.seeds) * len(s.bench.engines) for _, s in experiments)
    out(f"bench {bench_id}: {len(experiments)} experiments, {total} runs, each in a fresh process "
        f"({executor.name} executor); store {tracking.shown_uri(uri)}")
    started, done, outcomes = time.perf_counter(), 0, []
    for variant, s in experiments:
        n_threads = threads_for(s, threads)
        experiment_started = time.perf_counter()
        with tracker.parent(s, variant) as parent_id:
            outcome = ExperimentOutcome(s, parent_id, variant)
            jobs = [(engine, seed) for seed in s.bench.seeds for engine in s.bench.engines]
            for engine, seed, result in executor.run(tracker, s, jobs, n_threads, parent_id, busy_threshold):
                done += 1
                label = f"[{done:>{len(str(total))}}/{total}] {s.name}{f' [{variant}]' if variant else ''} " \
                        f"{engine} seed {seed}"
                if isinstance(result, StoreWriteError):  # the store refuses writes: no later run could be saved
                    raise result
                if isinstance(result, HarnessError):
                    outcome.failures[(engine, seed)] = str(result)
                    out(f"{label}: FAILED: {result}")
                else:
                    outcome.results[(engine, seed)] = result
                    out(f"{label}: {progress_line(result)}")
                    if interference.is_busy(result.resources, busy_threshold):
                        why = interference.describe(result.resources)
                        outcome.busy[(engine, seed)] = why
                        out(f"{label}: measured on a busy machine: {why} (threshold {busy_threshold:.0%}); "
                            "left out of the speedup")
            outcome.comparison = compare(s, outcome.results, left_out=outcome.busy.keys())
            outcome.comparison["runs_busy"] = float(len(outcome.busy))
            outcome.comparison["runs_failed"] = float(len(outcome.failures))
            outcome.comparison["wall_s"] = time.perf_counter() - experiment_started
            tracker.log_comparison(outcome.comparison)
        outcomes.append(outcome)
    out(f"bench {bench_id} finished in {time.perf_counter() - started:.1f} s")
    return bench_id, outcomes


def run_one(tracker: tracking.Tracker, s: specs.ExperimentSpec, engine: str, seed: int, threads: int,
            run_id: str | None = None, monitor: dict | None = None,
            busy_threshold: float = interference.BUSY_THRESHOLD, process: RunProcess | None = None,
            on_released: Callable[[], None] | None = None) -> RunResult:
    """One run in a fresh process (`process`, when one was started ahead for it), logged as a child
    run (an existing one with `run_id`), tagged with the busy-machine verdict. `on_released()` is
    called when the run has nothing timed left."""
    process = process or RunProcess(s, engine, seed, threads=threads, monitor=monitor or MONITOR, export=True)
    failed = True
    try:
        with tracker.child(s, engine, seed, threads, run_id) as run_id:
            result = process.result(on_released=on_released)
            tracker.log_result(run_id, s, result, interference.busy_tags(result.resources, busy_threshold))
        failed = False
    finally:
        process.close(failed)
    return result


def progress_line(r: RunResult) -> str:
    m = r.metric
    rss = r.resources.get("rss_peak_mb")
    return (f"{m} {r.final[f'test_{m}']:.4f}, training {r.train_time_s:.3f} s ({r.samples_per_s:,.0f} samples/s)"
            + (f", peak RSS {rss:.0f} MB" if rss else ""))


def compare(s: specs.ExperimentSpec, results: dict[tuple[str, int], RunResult],
            left_out: Collection[tuple[str, int]] = ()) -> dict[str, float]:
    """Per engine, mean and std over seeds of every compared figure; then speedup, accuracy gap,
    agreement. A seed with a run `left_out` (measured on a busy machine) counts in no speedup."""
    metric = get_metric(s.evaluation.metric)
    key = f"test_{metric.name}"
    out: dict[str, float] = {}
    for engine in s.bench.engines:
        runs = [r for (e, _), r in sorted(results.items()) if e == engine]
        if not runs:
            continue
        figures = {key: [r.final[key] for r in runs]}
        for name in COMPARED:
            values = [_figure(r, name) for r in runs]
            figures[name] = [v for v in values if v is not None]
        for name, values in figures.items():
            if values:
                out[f"{engine}/{name}_mean"] = float(np.mean(values))
                out[f"{engine}/{name}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    scratch = {seed: r for (e, seed), r in results.items() if e == "scratch"}
    torch_ = {seed: r for (e, seed), r in results.items() if e == "torch"}
    busy_seeds = {seed for _, seed in left_out}  # a seed is compared whole, both engines, or not at all
    quiet = lambda runs: {seed: r for seed, r in runs.items() if seed not in busy_seeds}  # noqa: E731
    if quiet(scratch) and quiet(torch_):
        out.update(speedup(quiet(scratch), quiet(torch_)))
    if scratch and torch_:
        out["accuracy_gap"] = out[f"scratch/{key}_mean"] - out[f"torch/{key}_mean"]
        both = sorted(scratch.keys() & torch_.keys())
        if both:
            agree = [metric.agreement(scratch[k].predictions, torch_[k].predictions) for k in both]
            out["agreement_mean"], out["agreement_min"] = float(np.mean(agree)), float(np.min(agree))
            out["agreement_n"] = float(len(scratch[both[0]].predictions))
        files = [k for k in both if all(r[k].onnx is not None and r[k].onnx.predictions is not None
                                        for r in (scratch, torch_))]
        if files:  # the same question asked of the two saved ONNX files, run by onnxruntime
            n = len(scratch[files[0]].predictions)
            same = [metric.agreement(scratch[k].onnx.predictions, torch_[k].onnx.predictions) * n for k in files]
            out["onnx_agreement_count_min"] = float(round(min(same)))
            out["onnx_agreement_mean"] = float(np.mean(same) / n)
    return out


def speedup(scratch: dict[int, RunResult], torch_: dict[int, RunResult]) -> dict[str, float]:
    """The bench's speedup (`epoch_speedup` of each engine's steady-state epochs, seed by seed), and
    each engine's steady samples/s (median, min, max over its epochs)."""
    out = epoch_speedup({k: r.steady_epoch_times for k, r in scratch.items()},
                        {k: r.steady_epoch_times for k, r in torch_.items()})
    for name, runs in (("scratch", scratch), ("torch", torch_)):
        times = [t for r in runs.values() for t in r.steady_epoch_times]
        n = next(iter(runs.values())).samples_per_epoch
        out[f"{name}/steady_samples_per_s_median"] = n / statistics.median(times)
        out[f"{name}/steady_samples_per_s_min"] = n / max(times)
        out[f"{name}/steady_samples_per_s_max"] = n / min(times)
    return out


def epoch_speedup(scratch: dict[int, list[float]], torch_: dict[int, list[float]]) -> dict[str, float]:
    """The one definition of the bench's speedup, used by the console, the parent run and the report:
    torch's steady-state epoch time over scratch's (above 1, scratch is faster), the ratio of the
    medians over every steady epoch of every seed (the first epoch of each run is the warm-up and is
    left out, as `harness perf` leaves out its own). `speedup_ci_low`/`_high`: its 95% interval by a
    hierarchical bootstrap over seeds (processes) and the epochs of each (`harness.stats`);
    `speedup_verdict` +1 (scratch faster), -1 (slower) or 0 (`~`, inside 1 ± the noise threshold);
    `speedup_min`/`_max`, the outer band, the lowest and highest ratio of one seed's median epochs;
    `speedup_cv` and, above the 10% rule, `speedup_seeds_needed`."""
    c = stats.compare([torch_[k] for k in sorted(torch_)], [scratch[k] for k in sorted(scratch)])
    out = {"speedup": c.ratio, "speedup_ci_low": c.low, "speedup_ci_high": c.high,
           "speedup_verdict": float(c.verdict), "speedup_cv": c.cv}
    if c.repeats_needed:
        out["speedup_seeds_needed"] = float(c.repeats_needed)
    both = sorted(scratch.keys() & torch_.keys())
    per_seed = [statistics.median(torch_[k]) / statistics.median(scratch[k]) for k in both]
    if per_seed:
        out["speedup_min"], out["speedup_max"] = min(per_seed), max(per_seed)
    return out


def speedup_comparison(c: dict[str, float]) -> stats.Comparison | None:
    """The speedup of a comparison (`compare`'s figures, or a parent run's) as a `stats.Comparison`, or None."""
    if not all(k in c and c[k] is not None and np.isfinite(c[k]) for k in ("speedup", "speedup_ci_low",
                                                                           "speedup_ci_high")):
        return None
    lo, hi = c.get("speedup_min", c["speedup"]), c.get("speedup_max", c["speedup"])
    needed = c.get("speedup_seeds_needed")
    return stats.Comparison(c["speedup"], c["speedup_ci_low"], c["speedup_ci_high"], lo, hi,
                            stats.verdict(c["speedup_ci_low"], c["speedup_ci_high"]), c.get("speedup_cv", np.nan),
                            int(needed) if needed is not None and np.isfinite(needed) else 0)


def _figure(r: RunResult, name: str) -> float | None:
    if name in r.resources:
        return r.resources[name]
    if name in ("median_epoch_s", "steady_epoch_s"):
        return getattr(r, name)
    return getattr(r, name, None)
