"""What one runtime's process measures for `harness perf`: the side of the method that runs
in the fresh process of each repeat (see harness.perf for the whole method).

Each task warms up first and then times whole units: one whole epoch for training (a fifth of an
epoch for the rows of other networks: convolutional, recurrent, residual, transformer), at least
`Method.min_window_s` of steps for XOR, whole passes over the test set for inference. The training
tasks run at each of the thread counts the parent asks for, in its order. The scratch process also
times each layer kind's forward and backward over a few batches of each other network (`_layer_shares`).
"""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import machine
from harness import spec as specs
from harness.batches import epoch_batches
from harness.engines import engine_class, pin_threads
from harness.run.prepare import RunInputs, prepare

TRAIN_BATCHES = (64, 256)
INFER_BATCHES = (256, 1024)
XOR_WARMUP_STEPS = 200


@dataclass(frozen=True)
class Method:
    """How every figure is taken (handed to each runtime's process)."""

    train_batches: tuple[int, ...] = TRAIN_BATCHES
    infer_batches: tuple[int, ...] = INFER_BATCHES
    warmup_share: float = 0.1  # of an epoch, before the timed epoch
    network_share: float = 0.2  # of an epoch, timed for the rows of other networks (NETWORK_ROWS)
    network_warmup_share: float = 0.02  # of an epoch, before their timed share
    layer_batches: int = 30  # batches of each other network over which scratch's layers are timed by kind
    min_window_s: float = 1.0  # of steps (XOR) or inference passes


ENGINES = ("scratch", "torch")
# the rows of other networks (files named by the CLI), in perf.md's order
NETWORK_ROWS = ("conv", "rnn", "residual", "transformer")
NETWORK_BATCH = 64
# runtime -> what its process measures


def _timed_window(step: Callable[[], int], min_s: float) -> float:
    """Calls `step` (which returns how many units it did) until `min_s` have passed; units per second."""
    done, t0 = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return done / elapsed


def _warm_and_time_epoch(inputs: RunInputs, batch: int, warmup_share: float, train: Callable[[object], object],
                         before: Callable[[list[np.ndarray]], object] = lambda plan: plan,
                         share: float = 1.0) -> tuple[float, int]:
    """Warm up on the first `warmup_share` of epoch 0's batches, then time the first `share` of epoch 1
    (all of it by default); (seconds, samples timed). `before(plan)` turns a batch order into what
    `train` takes, outside the clock."""
    n = len(inputs.x_train)
    warm = epoch_batches(n, batch, inputs.seed, 0)
    train(before(warm[:max(1, round(len(warm) * warmup_share))]))
    timed = epoch_batches(n, batch, inputs.seed, 1)
    timed = timed[:max(1, round(len(timed) * share))]
    plan = before(timed)
    t0 = time.perf_counter()
    train(plan)
    return time.perf_counter() - t0, sum(len(b) for b in timed)


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
            e = engine_class(runtime)(s.network, s.training, inputs.initial, seed=inputs.seed)
            seconds, _ = _warm_and_time_epoch(inputs, b, method.warmup_share,
                                              lambda plan, e=e: e.train_epoch(inputs.x_train, inputs.y_train, plan))
            predict = e.predict
        elif runtime in ("torch_plain", "torch_compile"):
            from harness.reference.plain import PlainTorch

            p = PlainTorch(s.network, s.training, inputs.initial, compile=runtime == "torch_compile")
            seconds, _ = _warm_and_time_epoch(inputs, b, method.warmup_share, p.train,
                                              lambda plan, p=p: p.slice_batches(inputs.x_train, inputs.y_train, plan))
            predict = p.predict
        else:  # sklearn: its own shuffling, one partial_fit an epoch
            from harness.perf.peers import SklearnMLP

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


def _network_inputs(file: str) -> tuple[specs.ExperimentSpec, RunInputs]:
    """Another network's experiment at batch 64 and a constant learning rate, with its data and initial
    tensors: made once in a process, for every thread count."""
    spec = specs.from_dict(specs.load(file).to_dict(), [f"training.batch_size={NETWORK_BATCH}",
                                                        "training.lr_decay=1.0"])
    return spec, prepare(spec, 0)


def _network_rows(runtime: str, row: str, spec: specs.ExperimentSpec, inputs: RunInputs, method: Method,
                  accuracy: bool) -> dict[str, float]:
    """The first `method.network_share` of a training epoch of another network (convolutional, recurrent,
    residual, transformer) after a warm-up of `method.network_warmup_share`: samples/s as `<row>_sps.<runtime>.b64`, the
    samples timed (`<row>_samples`), and where `accuracy` is asked, the test accuracy after it
    (`<row>_accuracy.<runtime>.b64`)."""
    if runtime in ENGINES:
        e = engine_class(runtime)(spec.network, spec.training, inputs.initial, seed=inputs.seed)
        seconds, samples = _warm_and_time_epoch(inputs, NETWORK_BATCH, method.network_warmup_share,
                                                lambda plan: e.train_epoch(inputs.x_train, inputs.y_train, plan),
                                                share=method.network_share)
        predict = e.predict
    else:
        from harness.reference.plain import PlainTorch

        p = PlainTorch(spec.network, spec.training, inputs.initial)
        seconds, samples = _warm_and_time_epoch(inputs, NETWORK_BATCH, method.network_warmup_share, p.train,
                                                lambda plan: p.slice_batches(inputs.x_train, inputs.y_train, plan),
                                                share=method.network_share)
        predict = p.predict
    out = {f"{row}_sps.{runtime}.b{NETWORK_BATCH}": samples / seconds, f"{row}_samples": float(samples)}
    if accuracy:
        out[f"{row}_accuracy.{runtime}.b{NETWORK_BATCH}"] = _accuracy(predict, inputs)
    return out


def _layer_shares(row: str, spec: specs.ExperimentSpec, inputs: RunInputs, batches: int) -> dict[str, float]:
    """Share of scratch's training step spent in each layer kind's forward and backward (the activations
    after layers by their function, `activation.gelu`), over `batches` batches after a few of warm-up, as
    `profile.<row>.<kind>`; what is left (gathering the batch, the loss, the optimizer, the graph's
    bookkeeping) is one minus their sum. Each
    layer's methods are wrapped by a clock, which costs well under a microsecond a call."""
    e = engine_class("scratch")(spec.network, spec.training, inputs.initial, seed=inputs.seed)
    plan = epoch_batches(len(inputs.x_train), NETWORK_BATCH, inputs.seed, 0)
    e.train_epoch(inputs.x_train, inputs.y_train, plan[:5])
    spent: dict[str, float] = {}

    def clocked(method: Callable, kind: str) -> Callable:
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t0
        return call

    for layer in e.net.layers:
        kind = f"activation.{layer.fn.name}" if layer.kind == "activation" else layer.kind  # scratch's own layer
        layer.forward, layer.backward = clocked(layer.forward, kind), clocked(layer.backward, kind)
    t0 = time.perf_counter()
    e.train_epoch(inputs.x_train, inputs.y_train, plan[5:5 + batches])
    total = time.perf_counter() - t0
    return {f"profile.{row}.{kind}": t / total for kind, t in spent.items()}


def _xor_row(runtime: str, xor_file: str, min_s: float) -> dict[str, float]:
    x = prepare(specs.load(xor_file), 0)
    plan = x.batches(0) * 500  # one step per batch: XOR's whole training set is one batch
    if runtime in ENGINES:
        e = engine_class(runtime)(x.spec.network, x.spec.training, x.initial, seed=x.seed)
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
        predict = engine_class(runtime)(spec.network, spec.training, inputs.initial, seed=inputs.seed).predict
    else:
        from harness.onnx.runtime import predict_onnx, session

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
    e = engine_class("scratch")(s.network, s.training, inputs.initial, seed=inputs.seed)
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


def thread_suffix(t: int, threads: int) -> str:
    """The key suffix of a training figure taken at `t` threads: none at the run's own count, `.t1` at one."""
    return "" if t == threads else f".t{t}"


def serve(conn, runtime: str, spec: specs.ExperimentSpec, xor_file: str, threads: int,
          model_file: str | None, tasks: tuple[str, ...], method: Method,
          networks: dict[str, str] | None = None, counts: tuple[int, ...] = ()) -> None:
    """A runtime's process: pin threads, load data, measure its tasks, send back figures and its machine
    record. The training tasks run once at each thread count of `counts`, in that order (by default
    `threads` alone), each figure at a count other than `threads` under its `thread_suffix` (the other
    networks' accuracy only at `threads`); the other tasks and the machine record are at `threads`."""
    try:
        engines = [runtime] if runtime in ENGINES else (["torch"] if runtime.startswith("torch") else [])
        pin_threads(threads, engines)  # held while this process measures, until a training pass re-pins
        inputs = prepare(spec, 0)
        others = ({row: _network_inputs(f) for row, f in (networks or {}).items()}
                  if {"networks", "layers"} & set(tasks) else {})
        out: dict[str, float] = {}
        for task in tasks:
            if task in ("train", "networks"):
                for t in counts or (threads,):
                    pin_threads(t, engines)
                    suffix = thread_suffix(t, threads)
                    if task == "train":
                        out.update({k + suffix: v for k, v in _train_rows(runtime, spec, inputs, method).items()})
                        out["train_samples"] = float(len(inputs.x_train))
                    else:
                        for row, (s, data) in others.items():
                            out.update({k if k.endswith("_samples") else k + suffix: v for k, v in
                                        _network_rows(runtime, row, s, data, method, t == threads).items()})
                pin_threads(threads, engines)
                continue
            if task == "gemm":
                library = "numpy" if runtime == "scratch" else "torch"
                out[f"gflops.{library}"] = statistics.median(machine.gemm_gflops(library, threads))
            elif task == "xor":
                out.update(_xor_row(runtime, xor_file, method.min_window_s))
            elif task == "infer":
                out.update(_infer_rows(runtime, spec, inputs, model_file, method))
            elif task == "profile":
                out.update(_profile(spec, inputs, min(method.train_batches)))
            elif task == "layers":
                for row, (s, data) in others.items():
                    out.update(_layer_shares(row, s, data, method.layer_batches))
        conn.send(("ok", (out, machine.record())))
    except BaseException as e:  # reported to the parent, which records the row as failed
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def export(conn, engine: str, spec: specs.ExperimentSpec, path: str) -> None:
    try:
        inputs = prepare(spec, 0)
        e = engine_class(engine)(spec.network, spec.training, inputs.initial, seed=inputs.seed)
        conn.send(("ok", str(e.export_onnx(path))))
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def compile_check(conn) -> None:
    """Sends "" if torch.compile builds and runs a model in this process, else why not (one line)."""
    try:
        from harness.reference.plain import compile_works

        compile_works()
        conn.send(("ok", ""))
    except BaseException as e:  # a missing compiler, an unsupported platform: the row says so
        conn.send(("ok", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]))
    finally:
        conn.close()
