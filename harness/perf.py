"""`harness perf`: both engines against each other and against the machine's matmul peak.

One process measures, in order: the machine (float32 matmul GFLOP/s on a large square
and on the exact matmuls of a training step of the MNIST network), training throughput
at several batch sizes, inference throughput (scratch, torch, and onnxruntime on each
engine's exported file), per-step overhead on XOR, and the breakdown of a scratch
training step. Every figure is the median of `repeats` timed repeats after a warm-up,
the engines interleaved repeat by repeat so that drift in the machine hits both alike.
Peak RSS comes from one training run of each engine in a fresh process.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import spec as specs
from harness.engines import engine_class, pin_threads
from harness.prepare import RunInputs, prepare, threads_for

BATCHES = (1, 16, 64, 256, 1024)
# Pause between two runtimes' repeats: OpenBLAS's idle threads spin for about 2^28 cycles
# (~0.1 s) after a call before they sleep, and would take a core from the next runtime.
SETTLE_S = 0.25
BREAKDOWN_BATCHES = (64, 256)
ENGINES = ("scratch", "torch")


def train_flops_per_sample(network: specs.NetworkSpec) -> int:
    """Matmul FLOPs of one training sample: forward x·Wᵀ, backward dW = gᵀx, and dx = g·W for
    every layer but the first (2 FLOPs per multiply-add)."""
    pairs = list(itertools.pairwise(network.sizes))
    macs = sum(i * o for i, o in pairs)
    return 2 * (2 * macs + macs - pairs[0][0] * pairs[0][1])


def infer_flops_per_sample(network: specs.NetworkSpec) -> int:
    return 2 * sum(i * o for i, o in itertools.pairwise(network.sizes))


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine(repeats: int) -> dict[str, float]:
    """float32 matmul GFLOP/s on a 2048 square: the machine's practical peak."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    c = np.empty_like(a)
    return {"gflops_square": 2 * 2048**3 / _median_time(lambda: np.matmul(a, a, out=c), repeats) / 1e9}


def step_matmuls(network: specs.NetworkSpec, b: int) -> Callable[[], None]:
    """The matmuls of one training step at batch b, alone: forward x·Wᵀ, dW = gᵀx, and dx = g·W
    for every layer but the first, on buffers made once."""
    rng = np.random.default_rng(0)
    work = []
    for k, (i, o) in enumerate(itertools.pairwise(network.sizes)):
        x, w, g = (rng.random(s, dtype=np.float32) for s in ((b, i), (o, i), (b, o)))
        z, dw, dx = np.empty((b, o), np.float32), np.empty((o, i), np.float32), np.empty((b, i), np.float32)
        work.append(lambda x=x, w=w, z=z: np.matmul(x, w.T, out=z))
        work.append(lambda g=g, x=x, dw=dw: np.matmul(g.T, x, out=dw))
        if k > 0:
            work.append(lambda g=g, w=w, dx=dx: np.matmul(g, w, out=dx))

    def step() -> None:
        for f in work:
            f()

    return step


def _samples_per_repeat(batch: int) -> int:
    return max(2048, 64 * batch)


class _Runtime:
    """One runtime (an engine, or onnxruntime on a file) in its own process, timing what it is told to.

    Separate processes keep each library's thread pool to itself: in one process, OpenBLAS,
    torch's OpenMP and onnxruntime threads spin-wait after their calls and steal the cores
    from whichever runs next. The parent interleaves the runtimes repeat by repeat.
    """

    def __init__(self, kind: str, spec: specs.ExperimentSpec, threads: int, model_file: str | None = None) -> None:
        import multiprocessing as mp

        from harness.runner import start_clean

        ctx = mp.get_context("spawn")
        self.kind = kind
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, kind, spec, threads, model_file), daemon=True)
        start_clean(self.proc)
        child.close()
        self._reply()

    def _reply(self):
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"perf worker {self.kind} died (exit code {self.proc.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"perf worker {self.kind}: {value}")
        return value

    def ask(self, *command):
        self.conn.send(command)
        return self._reply()

    def close(self) -> None:
        if self.proc.is_alive():
            self.conn.send(("stop",))
            self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()


def _serve(conn, kind: str, spec: specs.ExperimentSpec, threads: int, model_file: str | None) -> None:
    """The worker's loop: build the runtime once, then answer timing commands with seconds."""
    import traceback

    try:
        pin_threads(threads, ENGINES if kind in ENGINES else ())
        inputs = prepare(spec, 0)
        if kind in ENGINES:
            engine = engine_class(kind)(spec.network, spec.training, inputs.initial)
            engine.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(0)[:100])  # not a fresh init
            predict = engine.predict
        else:
            from harness.onnx_runtime import predict_onnx, session

            sess = session(model_file)
            predict = lambda x: predict_onnx(sess, x)  # noqa: E731
        conn.send(("ready", None))
        while True:
            command = conn.recv()
            if command[0] == "stop":
                return
            conn.send(("ok", _do(command, kind, spec, inputs, locals().get("engine"), predict)))
    except BaseException as e:  # reported to the parent, which stops the measurement
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def _do(command, kind, spec, inputs: RunInputs, engine, predict) -> object:
    from harness.batches import epoch_batches

    what = command[0]
    if what == "train":  # seconds for `steps` steps at batch b, in the order of epoch r
        _, b, steps, r = command
        plan = epoch_batches(len(inputs.x_train), b, inputs.seed, r + 1)[:steps]
        t0 = time.perf_counter()
        engine.train_epoch(inputs.x_train, inputs.y_train, plan)
        return time.perf_counter() - t0
    if what == "infer":  # seconds to predict `count` test samples in chunks of b
        _, b, count = command
        chunks = [inputs.x_test[i:i + b] for i in range(0, count - b + 1, b)]
        t0 = time.perf_counter()
        for c in chunks:
            predict(c)
        return time.perf_counter() - t0
    if what == "matmuls":  # seconds for the matmuls alone of `steps` training steps at batch b
        _, b, steps, _ = command
        step = _matmul_steps.setdefault(b, step_matmuls(spec.network, b))
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - t0
    if what == "export":
        return str(engine.export_onnx(command[1]))
    if what == "xor":  # seconds for `steps` steps on XOR at batch 4
        _, xor_file, steps = command
        x = prepare(specs.load(xor_file), 0)
        xe = engine_class(kind)(x.spec.network, x.spec.training, x.initial)
        plan = [x.batches(e)[0] for e in range(steps)]
        xe.train_epoch(x.x_train, x.y_train, plan[:100])
        t0 = time.perf_counter()
        xe.train_epoch(x.x_train, x.y_train, plan)
        return time.perf_counter() - t0
    if what == "breakdown":
        return step_breakdown(inputs, command[1], command[2])
    raise ValueError(f"unknown command {what!r}")


_matmul_steps: dict[int, Callable[[], None]] = {}  # in a worker: the matmul-only step of each batch size


def _interleaved(tasks: dict[str, tuple[_Runtime, tuple]], repeats: int) -> dict[str, float]:
    """Median seconds of each (worker, command), one repeat of each in turn, after a warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in tasks}
    for r in range(-1, repeats):
        for k, (w, command) in tasks.items():
            time.sleep(SETTLE_S)
            seconds = w.ask(*[r if c == "REPEAT" else c for c in command])
            if r >= 0:
                times[k].append(seconds)
    return {k: statistics.median(v) for k, v in times.items()}


def training(workers: dict[str, _Runtime], flops_per_sample: int, repeats: int) -> dict[str, float]:
    """Training samples/s of each engine on the MNIST network at each batch size, interleaved with
    the same steps' matmuls alone (the layer-shape peak), so that both see the same machine."""
    out = {}
    for b in BATCHES:
        steps = _samples_per_repeat(b) // b
        tasks = {name: (w, ("train", b, steps, "REPEAT")) for name, w in workers.items()}
        tasks["matmuls"] = (workers["scratch"], ("matmuls", b, steps, "REPEAT"))
        for name, seconds in _interleaved(tasks, repeats).items():
            if name == "matmuls":
                out[f"gflops_layers.b{b}"] = flops_per_sample * b * steps / seconds / 1e9
            else:
                out[f"train_sps.{name}.b{b}"] = steps * b / seconds
    return out


def inference(workers: dict[str, _Runtime], repeats: int) -> dict[str, float]:
    """Inference samples/s of scratch, torch and onnxruntime (on each engine's ONNX file)."""
    out = {}
    for b in BATCHES:
        count = 2048 if b == 1 else 8192
        tasks = {name: (w, ("infer", b, count)) for name, w in workers.items()}
        for name, seconds in _interleaved(tasks, repeats).items():
            out[f"infer_sps.{name}.b{b}"] = (count // b) * b / seconds
    return out


def xor_steps(workers: dict[str, _Runtime], repeats: int, xor_file: Path) -> dict[str, float]:
    """Steps/s on XOR at batch 4: the per-step overhead of each engine, with nothing to compute."""
    steps = 2000
    return {f"xor_steps_per_s.{name}": steps / seconds
            for name, seconds in _interleaved({k: (w, ("xor", str(xor_file), steps)) for k, w in workers.items()},
                                              repeats).items()}


def step_breakdown(inputs: RunInputs, batch: int, repeats: int) -> dict[str, float]:
    """Where a scratch training step's time goes (µs per step): gather, forward, loss head + backward, optimizer."""
    s = specs.from_dict(inputs.spec.to_dict(), [f"training.batch_size={batch}"])
    e = engine_class("scratch")(s.network, s.training, inputs.initial)
    net, loss, opt = e.net, e.loss, e.optimizer
    from harness.batches import epoch_batches

    idx = epoch_batches(len(inputs.x_train), batch, inputs.seed, 0)[0]
    ws = net._workspace(batch)
    fused = loss.fused_with == net.activations[-1].name
    yb = np.take(inputs.y_train, idx, axis=0)
    parts = {
        "gather": lambda: (np.take(inputs.x_train, idx, axis=0, out=ws.x, mode="clip"),
                           np.take(inputs.y_train, idx, axis=0, out=ws.targets(inputs.y_train), mode="clip")),
        "forward": lambda: net.forward(ws.x, head=not fused),
        "loss_and_backward": lambda: net.backward(yb, loss),
        "optimizer": lambda: opt.step({"all": net._flat_grad}),
    }
    parts["gather"]()
    net.forward(ws.x, head=not fused)
    out = {}
    n = 200
    for name, fn in parts.items():
        if name == "optimizer":  # zero gradients: a thousand steps on one gradient would overflow
            net._flat_grad[:] = 0
        out[f"step_us.{name}.b{batch}"] = _median_time(lambda fn=fn: [fn() for _ in range(n)], repeats) / n * 1e6
    return out


def peak_rss(spec: specs.ExperimentSpec, threads: int) -> dict[str, float]:
    """Peak RSS of one epoch of training, each engine in its own fresh process."""
    from harness.runner import run_isolated

    one = specs.from_dict(spec.to_dict(), ["training.epochs=1"])
    out = {}
    for name in ENGINES:
        r = run_isolated(one, name, 0, threads=threads, monitor={"interval": 0.02})
        out[f"rss_peak_mb.{name}"] = r.resources["rss_peak_mb"]
        out[f"rss_hwm_mb.{name}"] = r.resources["rss_hwm_mb"]
    return out


def measure(spec_file: Path, xor_file: Path, threads: int | None = None, repeats: int = 7,
            log: Callable[[str], None] = print) -> tuple[dict[str, float], dict[str, str]]:
    """Every figure of the perf report, as flat metrics, and the settings they were taken with."""
    spec = specs.load(spec_file)
    n = threads_for(spec, threads)
    info = pin_threads(n)
    metrics: dict[str, float] = {"train_flops_per_sample": train_flops_per_sample(spec.network),
                                 "infer_flops_per_sample": infer_flops_per_sample(spec.network)}
    started = time.perf_counter()
    log(f"perf: {n} threads, {repeats} repeats per figure; measuring the machine ...")
    metrics.update(machine(repeats))
    engines = {name: _Runtime(name, spec, n) for name in ENGINES}
    runtimes: dict[str, _Runtime] = {}
    try:
        log("perf: training throughput at batch sizes " + ", ".join(map(str, BATCHES)) + " ...")
        metrics.update(training(engines, metrics["train_flops_per_sample"], repeats))
        with tempfile.TemporaryDirectory(prefix="harness-perf-") as tmp:
            for name, w in engines.items():
                path = w.ask("export", str(Path(tmp) / f"perf-{name}.onnx"))
                runtimes[f"onnxruntime_{name}"] = _Runtime("onnxruntime", spec, n, path)
            log("perf: inference throughput (scratch, torch, onnxruntime on each engine's file) ...")
            metrics.update(inference({**engines, **runtimes}, repeats))
        for w in runtimes.values():
            w.close()
        log("perf: per-step overhead on XOR, and the parts of a scratch step ...")
        metrics.update(xor_steps(engines, repeats, xor_file))
        for b in BREAKDOWN_BATCHES:
            metrics.update(engines["scratch"].ask("breakdown", b, repeats))
    finally:
        for w in (*engines.values(), *runtimes.values()):
            w.close()
    log("perf: peak RSS of a training epoch, each engine in its own process ...")
    metrics.update(peak_rss(spec, n))
    metrics["perf_wall_s"] = time.perf_counter() - started
    settings = {"threads": str(n), "repeats": str(repeats), "experiment": spec.name,
                "batch_sizes": ",".join(map(str, BATCHES)), "blas": str(info.get("blas", "?"))}
    return metrics, settings
