"""One run: (experiment, engine, seed) -> data, batches, epochs, with timing and metrics.

Clocks (MLPerf's rules): each epoch's training is timed alone, from its first batch to
its last step; evaluation on the test set is timed on its own; time-to-target is the
training plus evaluation time up to the first evaluation that reaches the target. Data
loading, model construction and everything logged happen outside these clocks.

`run` works in the calling process; `harness.run.isolation.run_isolated` runs it in a fresh
spawned process, so that one engine's imports, threads and memory never touch another's figures.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import machine
from harness.engines import engine_class, pin_threads
from harness.errors import HarnessError, ModelFileError
from harness.metrics import Metric
from harness.metrics import get as get_metric
from harness.run.prepare import RunInputs, prepare, threads_for
from harness.spec import ExperimentSpec


class TrainingDiverged(HarnessError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training loss became {loss} at epoch {epoch}; lower the learning rate")
        self.epoch, self.loss = epoch, loss

    def __reduce__(self):  # picklable, to cross process boundaries (Ray tasks)
        return type(self), (self.epoch, self.loss)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    epoch_time_s: float
    test_metric: float | None = None  # None where the epoch was not evaluated
    test_loss: float | None = None
    eval_time_s: float | None = None


@dataclass(frozen=True)
class OnnxCheck:
    """The run's exported model, run by onnxruntime on the test set against the engine's own predictions."""

    path: str
    export_time_s: float
    predictions: np.ndarray | None  # None where onnxruntime cannot run the file (see `note`)
    max_abs_diff: float
    agreement: float  # share of test decisions the file and the engine share
    note: str = ""


@dataclass
class RunResult:
    experiment: str
    engine: str
    seed: int
    metric: str
    epochs: list[EpochRecord]
    final: dict[str, float]  # test_<metric>, test_loss, and test_mae for regression
    train_time_s: float
    eval_time_s: float
    time_to_target_s: float | None
    target_epoch: int | None
    samples_per_s: float
    threads: dict[str, Any]  # thread counts as pinned
    data: dict[str, Any]
    predictions: np.ndarray
    parameters: dict[str, np.ndarray]
    resources: dict[str, float] = field(default_factory=dict)
    example_input: np.ndarray | None = None  # a few test rows, for a model signature
    onnx: OnnxCheck | None = None
    machine: dict[str, str] = field(default_factory=dict)  # harness.machine.record() of the run's process
    samples_per_epoch: int = 0

    @property
    def median_epoch_s(self) -> float:
        return statistics.median(e.epoch_time_s for e in self.epochs)

    @property
    def steady_epoch_times(self) -> list[float]:
        """Training clocks of the epochs after the first: the first is the warm-up (first-touch page
        faults, thread start-up, lazy initialisation) and is left out of every speed figure."""
        return steady_epochs([e.epoch_time_s for e in self.epochs])

    @property
    def steady_epoch_s(self) -> float:
        return statistics.median(self.steady_epoch_times)


def steady_epochs(times: list[float]) -> list[float]:
    """The epochs of a run that speed figures use: all but the first (the warm-up), unless it is the only one."""
    return list(times[1:]) if len(times) > 1 else list(times)


EpochCallback = Callable[[EpochRecord], None]


def run(spec: ExperimentSpec, engine: str, seed: int, *, threads: int | None = None,
        on_epoch: EpochCallback | None = None, monitor: Any = None, export_dir: str | None = None,
        before_clocks: Callable[[], None] | None = None, after_clocks: Callable[[], None] | None = None) -> RunResult:
    """Train and evaluate one engine on one seed of an experiment, in this process.

    `on_epoch` is called after each epoch's clocks have stopped. `monitor`, if given, is
    started and stopped around the training loop (`start()`, `stop() -> dict`). With
    `export_dir`, the trained model is saved there as ONNX and checked with onnxruntime.
    `before_clocks()` is called when the data is loaded and the model built, and the run waits
    for it to return before its first clock starts; `after_clocks()` once nothing timed remains
    (the export's own clock included): what a pipeline of runs needs to keep others off the clocks.
    """
    inputs = prepare(spec, seed)
    n_threads = threads_for(spec, threads)
    limit, thread_info = pin_threads(n_threads, (engine,))  # kept to the end of the run
    cls = engine_class(engine)
    model = cls(spec.network, spec.training, inputs.initial, seed=seed)
    record = {**machine.record(), **{(f"build.{k}" if "." in k else f"version.{k}"): v
                                    for k, v in cls.versions().items()}}
    metric = get_metric(spec.evaluation.metric)
    if before_clocks is not None:
        before_clocks()
    if monitor is not None:
        monitor.start()
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss check
            clock = _train(model, inputs, metric, on_epoch)
    finally:
        resources = monitor.stop() if monitor is not None else {}
    records = clock.records

    predictions = model.predict(inputs.x_test)
    final = {f"test_{metric.name}": records[-1].test_metric, "test_loss": records[-1].test_loss}
    if spec.training.loss == "mse" and metric.name != "mae":
        final["test_mae"] = get_metric("mae")(predictions, inputs.y_test)
    for name, (x, y) in inputs.extra_tests.items():  # more test sets (longer sequences): scored alike
        final[f"test_{metric.name}_{name}"] = metric(model.predict(x), y)
    d = inputs.data

    def release() -> None:  # a window too short to judge is carried forward over this untimed work
        if monitor is not None and hasattr(monitor, "widened"):
            resources.update(monitor.widened())
        if after_clocks is not None:
            after_clocks()

    checked = None
    if export_dir is not None:
        checked = _export(model, spec, engine, seed, Path(export_dir), inputs, predictions, metric, release)
    else:
        release()
    return RunResult(
        experiment=spec.name, engine=engine, seed=seed, metric=metric.name, epochs=records, final=final,
        train_time_s=clock.train_s, eval_time_s=clock.eval_s, time_to_target_s=clock.to_target_s,
        target_epoch=clock.target_epoch,
        samples_per_s=len(inputs.x_train) * len(records) / clock.train_s if clock.train_s > 0 else float("inf"),
        threads=thread_info, machine=record, samples_per_epoch=len(inputs.x_train),
        data={"name": d.name, "digest": d.digest, "source": d.source,
              "shapes": {k: list(v) for k, v in d.shapes().items()}},
        predictions=predictions, parameters=model.parameters(), resources=resources,
        example_input=inputs.x_test[:5].copy(), onnx=checked,
    )


def _export(model, spec: ExperimentSpec, engine: str, seed: int, folder: Path, inputs: RunInputs,
            predictions: np.ndarray, metric: Metric, after_clocks: Callable[[], None] | None = None) -> OnnxCheck:
    from harness import __version__
    from harness.onnx.runtime import predict_onnx

    t0 = time.perf_counter()
    path = model.export_onnx(folder / f"{spec.name}-{engine}-seed{seed}.onnx",
                             {"experiment": spec.to_json(), "engine": engine, "seed": str(seed),
                              "harness_version": __version__})
    elapsed = time.perf_counter() - t0
    if after_clocks is not None:
        after_clocks()
    try:
        on_file = predict_onnx(path, inputs.x_test)
    except ModelFileError as e:  # onnxruntime has no float64 kernel for some activations
        return OnnxCheck(str(path), elapsed, None, math.nan, math.nan, str(e))
    return OnnxCheck(str(path), elapsed, on_file, float(np.max(np.abs(on_file - predictions))),
                     metric.agreement(on_file, predictions))


@dataclass
class _Clock:
    records: list[EpochRecord] = field(default_factory=list)
    train_s: float = 0.0
    eval_s: float = 0.0
    to_target_s: float | None = None
    target_epoch: int | None = None


def _train(model, inputs: RunInputs, metric: Metric, on_epoch: EpochCallback | None) -> _Clock:
    """The epoch loop: train (timed), evaluate when due (timed apart), then report the epoch."""
    spec = inputs.spec
    epochs, every, target = spec.training.epochs, spec.evaluation.every, spec.evaluation.target
    clock = _Clock()
    for epoch in range(1, epochs + 1):
        batches = inputs.batches(epoch - 1)
        t0 = time.perf_counter()
        loss = model.train_epoch(inputs.x_train, inputs.y_train, batches)
        dt = time.perf_counter() - t0
        clock.train_s += dt
        if not math.isfinite(loss):
            raise TrainingDiverged(epoch, loss)
        record = EpochRecord(epoch, loss, dt)
        if epoch % every == 0 or epoch == epochs:
            t1 = time.perf_counter()
            ev = model.evaluate(inputs.x_test, inputs.y_test, metric.name)
            et = time.perf_counter() - t1
            clock.eval_s += et
            record = EpochRecord(epoch, loss, dt, ev[metric.name], ev["loss"], et)
            if clock.to_target_s is None and target is not None and metric.reached(ev[metric.name], target):
                clock.to_target_s, clock.target_epoch = clock.train_s + clock.eval_s, epoch
        clock.records.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return clock
