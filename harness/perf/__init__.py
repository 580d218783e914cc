"""`harness perf`: the engines, their peers and the machine, timed by one method.

The method, the same for every row:
- each repeat starts a fresh process per runtime (imports, data, model built outside the
  clock), and the runtimes take turns, in an order that rotates from one repeat to the next,
  so that drift in a shared machine touches every row alike;
- a timed training figure is one whole epoch (60,000 MNIST samples) after a warm-up of a
  tenth of an epoch; the rows of other networks (convolutional, recurrent, residual,
  transformer: the four slowest per sample) time a fifth of an epoch after a fiftieth, and
  take their test accuracy at the run's threads only, which keeps the whole run within its 8 minutes; a per-step figure
  (XOR) is at least 1 s of steps after 200 warm-up steps; an inference figure is whole passes
  over the test set for at least 1 s after one warm-up pass (`Method`);
- every training row is timed at the run's threads (all usable cores by default) and at 1
  thread, both in the same process, the order of the two alternating from repeat to repeat
  (a 1-thread figure's key ends in `.t1`): what threads buy each runtime on this machine;
- every figure is the median of `repeats` processes, logged with its min and max and each repeat's
  value; a ratio of two rows has a 95% interval by a bootstrap over those repeats (`comparison`);
- each repeat's window records what other processes did on the machine meanwhile
  (`harness.run.interference`); a perf run with a repeat above `busy_threshold` is tagged as
  measured on a busy machine (`busy_figures`), which perf.md says and the README headline refuses.

Rows: the harness's two engines (`scratch`, `torch`); PyTorch as its users write it
(`torch_plain`, and `torch_compile` where torch.compile works on this machine); scikit-learn's
MLPClassifier (`sklearn`, an optional extra); onnxruntime on each engine's exported file. The
machine: float32 GEMM peak of NumPy's and of torch's BLAS (and, where an environment variable
forces a kernel, the peak with the override removed, measured in a subprocess), and the
machine record of every runtime's process. Where the scratch engine's step goes in each other network
comes from its layers timed by kind over a few batches (`profile.<row>.<kind>`). Peak memory comes
from one epoch of each engine in a fresh process, as `harness bench` measures it.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import layers as table
from harness import machine, stats
from harness import spec as specs
from harness.perf.runtime import ENGINES, INFER_BATCHES, TRAIN_BATCHES, Method, compile_check, export, serve
from harness.run import interference
from harness.run.prepare import threads_for

__all__ = ["ENGINES", "INFER_BATCHES", "PLAN", "REPEATS", "TRAIN_BATCHES", "Method", "busy_figures", "comparison",
           "measure", "ratio",
           "spread"]

PLAN: dict[str, tuple[str, ...]] = {
    "scratch": ("gemm", "train", "xor", "networks", "layers", "infer", "profile"),
    "torch": ("gemm", "train", "xor", "networks", "infer"),
    "torch_plain": ("train", "xor", "networks"),
    "torch_compile": ("train",),
    "sklearn": ("train",),
    "onnxruntime_scratch": ("infer",),
    "onnxruntime_torch": ("infer",),
}



def train_flops_per_sample(network: specs.NetworkSpec) -> int:
    """FLOPs of one training sample, as the layer table counts them (`harness.layers.train_flops`)."""
    return table.train_flops(network.input_shape, network.all_layers)


def infer_flops_per_sample(network: specs.NetworkSpec) -> int:
    return table.forward_flops(network.input_shape, network.all_layers)


def _in_fresh_process(target, *args, timeout: float = 900):
    """target(conn, *args) in a fresh spawned process; what it sent, or RuntimeError with its error."""
    from harness.run.isolation import fresh_process

    with fresh_process(target, *args) as (proc, conn):
        if not conn.poll(timeout):
            raise RuntimeError(f"no answer within {timeout:.0f} s")
        try:
            kind, value = conn.recv()
        except EOFError:
            proc.join()
            raise RuntimeError(f"the process died (exit code {proc.exitcode})") from None
    if kind == "error":
        raise RuntimeError(value)
    return value


# ---------------------------------------------------------------------------- the parent


REPEATS = ".repeats"  # a figure's per-repeat values: a tuple here, a metric history (step = repeat) in the store


def spread(values: list[float]) -> dict[str, float | tuple[float, ...]]:
    """A figure over its repeats: the median, `.min`, `.max`, `.n`, and every repeat (`.repeats`)."""
    return {"": statistics.median(values), ".min": min(values), ".max": max(values), ".n": float(len(values)),
            REPEATS: tuple(float(v) for v in values)}


def measure(spec_file: Path, xor_file: Path, threads: int | None = None, repeats: int = 5,
            log: Callable[[str], None] = print, runtimes: tuple[str, ...] | None = None,
            method: Method | None = None, networks: dict[str, Path] | None = None,
            busy_threshold: float = interference.BUSY_THRESHOLD, readings: interference.Source | None = None,
            ) -> tuple[dict[str, float | tuple[float, ...]], dict[str, str], dict[str, str]]:
    """Every figure of the perf report as flat metrics (median, `.min`, `.max`, `.n`, and `.repeats`, the
    tuple of every repeat's value, from which `comparison` draws a ratio's interval), the settings
    they were taken with, and the tags (machine record, why a row is missing, the busy-machine
    verdict). `networks` names more rows by the files of their networks (`{"conv": mnist_cnn.toml,
    "rnn": ..., "residual": ..., "transformer": ...}`, rows of `runtime.NETWORK_ROWS`); `readings` is the
    source of the machine's readings (the real one by default)."""
    method = method or Method()
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    networks = dict(networks or {})
    check(spec_file, xor_file, *networks.values())
    spec = specs.load(spec_file)
    n = threads_for(spec, threads)
    runtimes = tuple(runtimes or PLAN)
    tags: dict[str, str] = {}
    skip = _unavailable(spec, runtimes)
    tags.update({f"perf.missing.{k}": v for k, v in skip.items()})
    order = [r for r in runtimes if r not in skip]
    counts = (n, 1) if n > 1 else (n,)  # every training row at all the run's threads and at one
    started = time.perf_counter()
    samples: dict[str, list[float]] = {}
    windows: list[dict[str, float]] = []  # what other processes did during each repeat
    with tempfile.TemporaryDirectory(prefix="harness-perf-") as tmp:
        files = {}
        for engine in ENGINES:
            if f"onnxruntime_{engine}" in order:
                files[f"onnxruntime_{engine}"] = _in_fresh_process(export, engine, spec,
                                                                   str(Path(tmp) / f"perf-{engine}.onnx"))
        log(f"perf: {n} threads, {repeats} repeats; each repeat a fresh process per runtime, in turn: "
            + ", ".join(order) + (f"; every training row at {n} threads and at 1, the order alternating from "
                                  "repeat to repeat" if len(counts) > 1 else ""))
        for r in range(repeats):
            turn = order[r % len(order):] + order[:r % len(order)]
            t0 = time.perf_counter()
            others = interference.Interference(readings)
            others.start()
            for runtime in turn:
                try:
                    figures, record = _in_fresh_process(serve, runtime, spec, str(xor_file), n, files.get(runtime),
                                                        PLAN[runtime], method,
                                                        {row: str(f) for row, f in networks.items()},
                                                        counts if r % 2 == 0 else counts[::-1])
                except RuntimeError as e:
                    tags[f"perf.failed.{runtime}"] = str(e).splitlines()[0][:500]
                    log(f"perf: {runtime} failed: {str(e).splitlines()[0]}")
                    continue
                for k, v in figures.items():
                    samples.setdefault(k, []).append(v)
                tags.update({k: v for k, v in record.items() if k not in tags})
            windows.append(others.stop())
            log(f"perf: repeat {r + 1}/{repeats} done in {time.perf_counter() - t0:.0f} s")
            if interference.is_busy(windows[-1], busy_threshold):
                log(f"perf: repeat {r + 1} measured on a busy machine: {interference.describe(windows[-1])} "
                    f"(threshold {busy_threshold:.0%})")
    metrics: dict[str, float | tuple[float, ...]] = {"train_flops_per_sample": train_flops_per_sample(spec.network),
                                 "infer_flops_per_sample": infer_flops_per_sample(spec.network)}
    others = {row: specs.load(f) for row, f in networks.items()}
    metrics.update({f"{row}_train_flops_per_sample": train_flops_per_sample(s.network) for row, s in others.items()})
    for key, values in samples.items():
        if key.startswith("profile.") or key.endswith("_samples"):
            metrics[key] = statistics.median(values)
        else:
            metrics.update({key + suffix: v for suffix, v in spread(values).items()})
    forced = machine.forced_kernels()
    if forced:
        log("perf: a kernel is forced (" + ", ".join(f"{k}={v}" for k, v in forced.items())
            + "); measuring the native kernel's GEMM peak in a subprocess without it ...")
        for lib in ("numpy", "torch"):
            metrics.update({f"gflops_native.{lib}{s}": v
                            for s, v in spread(machine.gemm_in_subprocess(lib, n, repeats, native=True)).items()})
    log("perf: peak memory of one training epoch, each engine in a fresh process ...")
    metrics.update(peak_rss(spec, n))
    metrics["perf_wall_s"] = time.perf_counter() - started
    busy_metrics, busy_tags = busy_figures(windows, busy_threshold)
    metrics.update(busy_metrics)
    tags.update(busy_tags)
    settings = {"threads": str(n), "thread_counts": ",".join(map(str, counts)), "repeats": str(repeats),
                "experiment": spec.name, "runtimes": ",".join(order),
                **{f"{row}_experiment": s.name for row, s in others.items()},
                **{f"{row}_network": s.network.describe() for row, s in others.items()},
                **{k: ",".join(map(str, v)) if isinstance(v, tuple) else str(v) for k, v in asdict(method).items()}}
    return metrics, settings, tags


def busy_figures(windows: list[dict[str, float]], threshold: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Other processes' share of the cores over the repeats (median, min, max, n) and how many
    repeats were busy, as metrics; the verdict as tags: busy when any repeat was."""
    if not windows:
        return {}, {}
    busy = [interference.is_busy(w, threshold) for w in windows]
    metrics = {f"busy.others_share{k}": v for k, v in spread([w["others_share"] for w in windows]).items()}
    metrics["busy.busy_repeats"] = float(sum(busy))
    tags = {interference.BUSY_TAG: str(any(busy)).lower(), "harness.busy_threshold": f"{threshold:g}"}
    return metrics, tags


def check(*files: Path) -> None:
    """A clear error now for a bad file or a dataset not fetched, not a traceback in a worker."""
    from harness.run.bench import load_all

    for f in files:
        load_all([f], ())


def _unavailable(spec: specs.ExperimentSpec, runtimes: tuple[str, ...]) -> dict[str, str]:
    """Rows that cannot run here, and why."""
    out = {}
    if "sklearn" in runtimes:
        from harness.perf import peers

        why = peers.available() or peers.unsupported(spec)
        if why:
            out["sklearn"] = why
    if "torch_compile" in runtimes:
        why = _in_fresh_process(compile_check, timeout=600)
        if why:
            out["torch_compile"] = f"torch.compile does not work on this machine: {why}"
    return out


def peak_rss(spec: specs.ExperimentSpec, threads: int) -> dict[str, float]:
    """Memory of one training epoch, each engine in its own fresh process: the baseline before
    training (imports, data), the peak inside the training window, and the difference."""
    from harness.run.isolation import run_isolated

    one = specs.from_dict(spec.to_dict(), ["training.epochs=1"])
    out = {}
    for name in ENGINES:
        r = run_isolated(one, name, 0, threads=threads, monitor={"interval": 0.02})
        for key in ("rss_baseline_mb", "rss_peak_mb", "rss_train_mb", "cpu_percent_mean"):
            out[f"{key}.{name}"] = r.resources[key]
    return out


def comparison(m: Mapping[str, Any], a: str, b: str, threshold: float = stats.THRESHOLD) -> stats.Comparison | None:
    """a / b of two figures' medians with its 95% interval by a bootstrap over their repeats (`harness.stats`),
    the outer band pairing one side's worst repeat with the other's best; None where either side's
    repeats are not at hand (a run logged before they were)."""
    ra, rb = m.get(a + REPEATS), m.get(b + REPEATS)
    if not ra or not rb or isinstance(ra, float) or isinstance(rb, float):
        return None
    return stats.compare(list(ra), list(rb), threshold)


def ratio(m: Mapping[str, Any], a: str, b: str) -> tuple[float, float, float]:
    """a / b as (median ratio, lowest, highest): the spread pairs a's worst with b's best and back."""
    if not all(k in m for k in (a, b, a + ".min", a + ".max", b + ".min", b + ".max")):
        return math.nan, math.nan, math.nan
    return m[a] / m[b], m[a + ".min"] / m[b + ".max"], m[a + ".max"] / m[b + ".min"]
