"""`harness perf`: the engines, their peers and the machine, timed by one method.

The method, the same for every row:
- each repeat starts a fresh process per runtime (imports, data, model built outside the
  clock), and the runtimes take turns, in an order that rotates from one repeat to the next,
  so that drift in a shared machine touches every row alike;
- a timed training figure is one whole epoch (60,000 MNIST samples) after a warm-up of a
  tenth of an epoch; a per-step figure (XOR) is at least 1 s of steps after 200 warm-up
  steps; an inference figure is whole passes over the test set for at least 1 s after one
  warm-up pass (`Method`);
- every figure is the median of `repeats` processes, logged with its min and max.

Rows: the harness's two engines (`scratch`, `torch`); PyTorch as its users write it
(`torch_plain`, and `torch_compile` where torch.compile works on this machine); scikit-learn's
MLPClassifier (`sklearn`, an optional extra); onnxruntime on each engine's exported file. The
machine: float32 GEMM peak of NumPy's and of torch's BLAS (and, where an environment variable
forces a kernel, the peak with the override removed, measured in a subprocess), and the
machine record of every runtime's process. Peak memory comes from one epoch of each engine in a
fresh process, as `harness bench` measures it.
"""

from __future__ import annotations

import itertools
import math
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness import machine
from harness import spec as specs
from harness.batches import epoch_batches
from harness.engines import engine_class, pin_threads
from harness.prepare import RunInputs, prepare, threads_for

TRAIN_BATCHES = (64, 256)
INFER_BATCHES = (256, 1024)
XOR_WARMUP_STEPS = 200


@dataclass(frozen=True)
class Method:
    """How every figure is taken (handed to each runtime's process)."""

    train_batches: tuple[int, ...] = TRAIN_BATCHES
    infer_batches: tuple[int, ...] = INFER_BATCHES
    warmup_share: float = 0.1  # of an epoch, before the timed epoch
    min_window_s: float = 1.0  # of steps (XOR) or inference passes


ENGINES = ("scratch", "torch")
# runtime -> what its process measures
PLAN: dict[str, tuple[str, ...]] = {
    "scratch": ("gemm", "train", "xor", "infer", "profile"),
    "torch": ("gemm", "train", "xor", "infer"),
    "torch_plain": ("train", "xor"),
    "torch_compile": ("train",),
    "sklearn": ("train",),
    "onnxruntime_scratch": ("infer",),
    "onnxruntime_torch": ("infer",),
}


def train_flops_per_sample(network: specs.NetworkSpec) -> int:
    """Matmul FLOPs of one training sample: forward x·Wᵀ, backward dW = gᵀx, and dx = g·W for
    every layer but the first (2 FLOPs per multiply-add). A correct backward needs no more."""
    pairs = list(itertools.pairwise(network.sizes))
    macs = sum(i * o for i, o in pairs)
    return 2 * (2 * macs + macs - pairs[0][0] * pairs[0][1])


def infer_flops_per_sample(network: specs.NetworkSpec) -> int:
    return 2 * sum(i * o for i, o in itertools.pairwise(network.sizes))


# ---------------------------------------------------------------------------- in the runtime's process


def _timed_window(step: Callable[[], int], min_s: float) -> float:
    """Calls `step` (which returns how many units it did) until `min_s` have passed; units per second."""
    done, t0 = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return done / elapsed


def _warm_and_time_epoch(inputs: RunInputs, batch: int, warmup_share: float, train: Callable[[object], object],
                         before: Callable[[list[np.ndarray]], object] = lambda plan: plan) -> float:
    """Warm up on the first `warmup_share` of epoch 0's batches, then time the whole of epoch 1;
    seconds. `before(plan)` turns a batch order into what `train` takes, outside the clock."""
    n = len(inputs.x_train)
    warm = epoch_batches(n, batch, inputs.seed, 0)
    train(before(warm[:max(1, round(len(warm) * warmup_share))]))
    plan = before(epoch_batches(n, batch, inputs.seed, 1))
    t0 = time.perf_counter()
    train(plan)
    return time.perf_counter() - t0


def _accuracy(predict: Callable[[np.ndarray], np.ndarray], inputs: RunInputs) -> float:
    labels = inputs.y_test if inputs.y_test.ndim == 1 else inputs.y_test.argmax(axis=1)
    return float(np.mean(predict(inputs.x_test).argmax(axis=1) == labels))


def _train_rows(runtime: str, spec: specs.ExperimentSpec, inputs: RunInputs, method: Method) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in method.train_batches:
        # a constant learning rate: MLPClassifier and the plain loop have no schedule, and a warm-up
        # counted as an epoch would decay the engines' rate before the timed one
        s = specs.from_dict(spec.to_dict(), [f"training.batch_size={b}", "training.lr_decay=1.0"])
        if runtime in ENGINES:
            e = engine_class(runtime)(s.network, s.training, inputs.initial)
            seconds = _warm_and_time_epoch(inputs, b, method.warmup_share,
                                           lambda plan, e=e: e.train_epoch(inputs.x_train, inputs.y_train, plan))
            predict = e.predict
        elif runtime in ("torch_plain", "torch_compile"):
            from harness.reference.plain import PlainTorch

            p = PlainTorch(s.network, s.training, inputs.initial, compile=runtime == "torch_compile")
            seconds = _warm_and_time_epoch(inputs, b, method.warmup_share, p.train,
                                           lambda plan, p=p: p.slice_batches(inputs.x_train, inputs.y_train, plan))
            predict = p.predict
        else:  # sklearn: its own shuffling, one partial_fit an epoch
            from harness.peers import SklearnMLP

            m = SklearnMLP(s, b, inputs.seed)
            warm_rows = max(1, int(len(inputs.x_train) * method.warmup_share))
            m.train_epoch(inputs.x_train[:warm_rows], inputs.y_train[:warm_rows])
            t0 = time.perf_counter()
            m.train_epoch(inputs.x_train, inputs.y_train)
            seconds = time.perf_counter() - t0
            predict = m.model.predict_proba
        out[f"train_sps.{runtime}.b{b}"] = len(inputs.x_train) / seconds
        out[f"test_accuracy.{runtime}.b{b}"] = _accuracy(predict, inputs)
    return out


def _xor_row(runtime: str, xor_file: str, min_s: float) -> dict[str, float]:
    x = prepare(specs.load(xor_file), 0)
    plan = x.batches(0) * 500  # one step per batch: XOR's whole training set is one batch
    if runtime in ENGINES:
        e = engine_class(runtime)(x.spec.network, x.spec.training, x.initial)
        e.train_epoch(x.x_train, x.y_train, plan[:XOR_WARMUP_STEPS])
        rate = _timed_window(lambda: (e.train_epoch(x.x_train, x.y_train, plan), len(plan))[1], min_s)
    else:
        from harness.reference.plain import PlainTorch

        p = PlainTorch(x.spec.network, x.spec.training, x.initial)
        sliced = p.slice_batches(x.x_train, x.y_train, plan)
        p.train(sliced[:XOR_WARMUP_STEPS])
        rate = _timed_window(lambda: (p.train(sliced), len(sliced))[1], min_s)
    return {f"xor_steps_per_s.{runtime}": rate}


def _infer_rows(runtime: str, spec: specs.ExperimentSpec, inputs: RunInputs, model_file: str | None,
                method: Method) -> dict[str, float]:
    if runtime in ENGINES:
        predict = engine_class(runtime)(spec.network, spec.training, inputs.initial).predict
    else:
        from harness.onnx_runtime import predict_onnx, session

        sess = session(model_file)
        predict = lambda x: predict_onnx(sess, x)  # noqa: E731
    out = {}
    for b in method.infer_batches:
        chunks = [inputs.x_test[i:i + b] for i in range(0, len(inputs.x_test) - b + 1, b)]

        def one_pass(chunks=chunks) -> int:
            for c in chunks:
                predict(c)
            return sum(len(c) for c in chunks)

        one_pass()
        out[f"infer_sps.{runtime}.b{b}"] = _timed_window(one_pass, method.min_window_s)
    return out


def _profile(spec: specs.ExperimentSpec, inputs: RunInputs, batch: int = 64, top: int = 12) -> dict[str, float]:
    """Share of one scratch epoch's time spent in each function (cProfile, own time), the top ones.
    The profiler's own cost inflates the Python-level entries; the shares locate, they do not time."""
    import cProfile
    import pstats

    s = specs.from_dict(spec.to_dict(), [f"training.batch_size={batch}"])
    e = engine_class("scratch")(s.network, s.training, inputs.initial)
    e.train_epoch(inputs.x_train, inputs.y_train, epoch_batches(len(inputs.x_train), batch, inputs.seed, 0)[:50])
    plan = epoch_batches(len(inputs.x_train), batch, inputs.seed, 1)
    prof = cProfile.Profile()
    prof.runcall(e.train_epoch, inputs.x_train, inputs.y_train, plan)
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    rows = sorted(((v[2], _function_name(k)) for k, v in stats.items()), reverse=True)[:top]
    return {f"profile.b{batch}.{name}": own / total for own, name in rows}


def _function_name(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":  # a builtin or C function: "<built-in method numpy...matmul>"
        name = name.strip("<>").removeprefix("built-in method ").removeprefix("method ")
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]
    module = Path(file).stem
    return f"{module}.{name}:{line}"


def _serve(conn, runtime: str, spec: specs.ExperimentSpec, xor_file: str, threads: int,
           model_file: str | None, tasks: tuple[str, ...], method: Method) -> None:
    """A runtime's process: pin threads, load data, measure its tasks, send back figures and its machine record."""
    try:
        engines = [runtime] if runtime in ENGINES else (["torch"] if runtime.startswith("torch") else [])
        pin_threads(threads, engines)
        inputs = prepare(spec, 0)
        out: dict[str, float] = {}
        for task in tasks:
            if task == "gemm":
                rates = machine.gemm_gflops("numpy" if runtime == "scratch" else "torch", threads)
                out[f"gflops.{'numpy' if runtime == 'scratch' else 'torch'}"] = statistics.median(rates)
            elif task == "train":
                out.update(_train_rows(runtime, spec, inputs, method))
                out["train_samples"] = float(len(inputs.x_train))
            elif task == "xor":
                out.update(_xor_row(runtime, xor_file, method.min_window_s))
            elif task == "infer":
                out.update(_infer_rows(runtime, spec, inputs, model_file, method))
            elif task == "profile":
                out.update(_profile(spec, inputs, min(method.train_batches)))
        conn.send(("ok", (out, machine.record())))
    except BaseException as e:  # reported to the parent, which records the row as failed
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _export(conn, engine: str, spec: specs.ExperimentSpec, path: str) -> None:
    try:
        inputs = prepare(spec, 0)
        e = engine_class(engine)(spec.network, spec.training, inputs.initial)
        conn.send(("ok", str(e.export_onnx(path))))
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def _in_fresh_process(target, *args, timeout: float = 900):
    """target(conn, *args) in a fresh spawned process; what it sent, or RuntimeError with its error."""
    import multiprocessing as mp

    from harness.runner import start_clean

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    start_clean(proc)
    child.close()
    try:
        if not parent.poll(timeout):
            raise RuntimeError(f"no answer within {timeout:.0f} s")
        kind, value = parent.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"the process died (exit code {proc.exitcode})") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
        parent.close()
    if kind == "error":
        raise RuntimeError(value)
    return value


# ---------------------------------------------------------------------------- the parent


def spread(values: list[float]) -> dict[str, float]:
    return {"": statistics.median(values), ".min": min(values), ".max": max(values), ".n": float(len(values))}


def measure(spec_file: Path, xor_file: Path, threads: int | None = None, repeats: int = 5,
            log: Callable[[str], None] = print, runtimes: tuple[str, ...] | None = None, method: Method = Method()
            ) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Every figure of the perf report as flat metrics (median, `.min`, `.max`, `.n`), the settings
    they were taken with, and the tags (machine record, and why a row is missing)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    check(spec_file, xor_file)
    spec = specs.load(spec_file)
    n = threads_for(spec, threads)
    runtimes = tuple(runtimes or PLAN)
    tags: dict[str, str] = {}
    skip = _unavailable(spec, runtimes)
    tags.update({f"perf.missing.{k}": v for k, v in skip.items()})
    order = [r for r in runtimes if r not in skip]
    started = time.perf_counter()
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="harness-perf-") as tmp:
        files = {}
        for engine in ENGINES:
            if f"onnxruntime_{engine}" in order:
                files[f"onnxruntime_{engine}"] = _in_fresh_process(_export, engine, spec,
                                                                   str(Path(tmp) / f"perf-{engine}.onnx"))
        log(f"perf: {n} threads, {repeats} repeats; each repeat a fresh process per runtime, in turn: "
            + ", ".join(order))
        for r in range(repeats):
            turn = order[r % len(order):] + order[:r % len(order)]
            t0 = time.perf_counter()
            for runtime in turn:
                try:
                    figures, record = _in_fresh_process(_serve, runtime, spec, str(xor_file), n, files.get(runtime),
                                                        PLAN[runtime], method)
                except RuntimeError as e:
                    tags[f"perf.failed.{runtime}"] = str(e).splitlines()[0][:500]
                    log(f"perf: {runtime} failed: {str(e).splitlines()[0]}")
                    continue
                for k, v in figures.items():
                    samples.setdefault(k, []).append(v)
                tags.update({k: v for k, v in record.items() if k not in tags})
            log(f"perf: repeat {r + 1}/{repeats} done in {time.perf_counter() - t0:.0f} s")
    metrics: dict[str, float] = {"train_flops_per_sample": train_flops_per_sample(spec.network),
                                 "infer_flops_per_sample": infer_flops_per_sample(spec.network)}
    for key, values in samples.items():
        if key.startswith("profile.") or key == "train_samples":
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
    settings = {"threads": str(n), "repeats": str(repeats), "experiment": spec.name, "runtimes": ",".join(order),
                **{k: ",".join(map(str, v)) if isinstance(v, tuple) else str(v) for k, v in asdict(method).items()}}
    return metrics, settings, tags


def check(spec_file: Path, xor_file: Path) -> None:
    """A clear error now for a bad file or a dataset not fetched, not a traceback in a worker."""
    from harness.bench import load_all

    for f in (spec_file, xor_file):
        load_all([f], ())


def _unavailable(spec: specs.ExperimentSpec, runtimes: tuple[str, ...]) -> dict[str, str]:
    """Rows that cannot run here, and why."""
    out = {}
    if "sklearn" in runtimes:
        from harness import peers

        why = peers.available() or peers.unsupported(spec)
        if why:
            out["sklearn"] = why
    if "torch_compile" in runtimes:
        why = _in_fresh_process(_compile_check, timeout=600)
        if why:
            out["torch_compile"] = f"torch.compile does not work on this machine: {why}"
    return out


def _compile_check(conn) -> None:
    try:
        import torch

        m = torch.compile(torch.nn.Linear(2, 1))
        m(torch.zeros(1, 2)).sum().backward()
        conn.send(("ok", ""))
    except BaseException as e:  # a missing compiler, an unsupported platform: the row says so
        conn.send(("ok", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]))
    finally:
        conn.close()


def peak_rss(spec: specs.ExperimentSpec, threads: int) -> dict[str, float]:
    """Memory of one training epoch, each engine in its own fresh process: the baseline before
    training (imports, data), the peak inside the training window, and the difference."""
    from harness.runner import run_isolated

    one = specs.from_dict(spec.to_dict(), ["training.epochs=1"])
    out = {}
    for name in ENGINES:
        r = run_isolated(one, name, 0, threads=threads, monitor={"interval": 0.02})
        for key in ("rss_baseline_mb", "rss_peak_mb", "rss_train_mb", "cpu_percent_mean"):
            out[f"{key}.{name}"] = r.resources[key]
    return out


def ratio(m: dict[str, float], a: str, b: str) -> tuple[float, float, float]:
    """a / b as (median ratio, lowest, highest): the spread pairs a's worst with b's best and back."""
    if not all(k in m for k in (a, b, a + ".min", a + ".max", b + ".min", b + ".max")):
        return math.nan, math.nan, math.nan
    return m[a] / m[b], m[a + ".min"] / m[b + ".max"], m[a + ".max"] / m[b + ".min"]
