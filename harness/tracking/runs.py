"""Writing runs: a parent per (bench, experiment), a child per (engine, seed), and a perf run.

A child run records the spec as parameters, versions and machine as tags, per-epoch and
final metrics, the resources used, the dataset as an input, the trained model and a plot
of its curves. Every run ends FINISHED, FAILED (with the reason as a tag) or KILLED.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import mlflow
import mlflow.onnx
import numpy as np
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from harness import machine
from harness.spec import ExperimentSpec
from harness.tracking import keys
from harness.tracking.store import (
    BENCH_TAG,
    EPOCH_TAG,
    HOST_TAG,
    INTERFERENCE_KEYS,
    KIND_TAG,
    PID_START_TAG,
    PID_TAG,
    REASON_TAG,
    RESOURCE_KEYS,
    VARIANT_TAG,
    StoreWriteError,
    close_deleted,
    process_started,
    resolve_uri,
    retrying,
    sqlite_path,
)


def environment_tags() -> dict[str, str]:
    """The machine record of this process (`harness.machine.record`), MLflow's version and the
    project commit, as run tags (a new dict each call). A run's own process adds its engine's
    BLAS (`RunResult.machine`)."""
    return dict(_environment())


@functools.cache
def _environment() -> MappingProxyType:
    """Read once per process; read-only, so that no caller can change what the next one gets."""
    return MappingProxyType({**machine.record(), "version.mlflow": mlflow.__version__, **_git()})


def _git() -> dict[str, str]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git.commit": commit, "git.dirty": str(bool(dirty)).lower()} if commit else {}


def process_tags() -> dict[str, str]:
    """Which process on which machine holds a run open: what `reap_orphans` checks."""
    return {PID_TAG: str(os.getpid()), PID_START_TAG: process_started(os.getpid()) or "", HOST_TAG: platform.node()}


def run_params(spec: ExperimentSpec, engine: str, seed: int, threads: int) -> dict[str, Any]:
    return {**spec.flat(), "engine": engine, "seed": seed, "dtype": spec.training.dtype, "threads": threads}


# ---------------------------------------------------------------------------- runs

# the model-training view for MLflow releases that read the experiment tag; 3.17 reads the browser's choice
UI_VIEW_TAG, UI_VIEW = "mlflow.experimentKind", "custom_model_development"
# What the MLflow UI (3.17) shows on first opening an experiment's chart view. Its runs table nests
# the child runs under their parent, folded, and the charts draw the rows shown: the parent alone,
# without curves. On a browser's first visit of an experiment it unfolds the parents of runs whose
# `mlflow.runType` is "evaluation"; a child run is one (it evaluates its model on the test split),
# so that the engines' curves are drawn at once. Each run is drawn in its engine's colour
# (`mlflow.runColor`, the report's plots' colours), the parent in grey. Grouped by the parameter
# `engine`, the parent's figures form their own group, COMPARISON, never an engine's.
RUN_TYPE_TAG, RUN_TYPE = "mlflow.runType", "evaluation"
COLOUR_TAG = "mlflow.runColor"
ENGINE_COLOURS = {"scratch": "#0072B2", "torch": "#D55E00"}  # Okabe-Ito blue and vermilion
COMPARISON, COMPARISON_COLOUR = "comparison", "#808080"


class Tracker:
    """Runs of one bench invocation in one store."""

    def __init__(self, uri: str, bench_id: str) -> None:
        self.uri, self.bench_id = uri, bench_id
        self.client = MlflowClient(uri)

    @contextlib.contextmanager
    def parent(self, spec: ExperimentSpec, variant: str = "") -> Iterator[str]:
        """The parent run of one experiment (one variant of its sweep) in this bench; yields its run id."""
        retrying(mlflow.set_experiment, experiment_id=self._experiment_id(spec.name))  # refused in the trash
        tags = {BENCH_TAG: self.bench_id, KIND_TAG: "bench", VARIANT_TAG: variant, COLOUR_TAG: COMPARISON_COLOUR,
                keys.once_key("speedup"): keys.SPEEDUP_MEANING,  # beside the figure's name, which way round it is
                **process_tags(), **environment_tags()}
        name = f"bench {self.bench_id}" + (f" [{variant}]" if variant else "")
        with self._run(run_name=name, tags=tags, description=spec.description) as run_id:
            retrying(mlflow.log_params, {"experiment": spec.name, "seeds": json.dumps(list(spec.bench.seeds)),
                                         "engines": json.dumps(list(spec.bench.engines)), "variant": variant,
                                         "engine": COMPARISON})
            retrying(mlflow.log_dict, spec.to_dict(), "spec.json")
            yield run_id

    def _experiment_id(self, name: str) -> str:
        """The MLflow experiment of that name; created with its artifacts beside a sqlite store's file,
        and tagged as model training (MLflow 3 opens an untagged experiment in its GenAI view)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.tags.get(UI_VIEW_TAG) != UI_VIEW and found.lifecycle_stage == "active":  # an older harness's
                retrying(self.client.set_experiment_tag, found.experiment_id, UI_VIEW_TAG, UI_VIEW)
            return found.experiment_id
        location = None
        db = sqlite_path(self.uri)
        if db is not None:
            location = (db.parent / "mlruns" / name).as_uri()
        try:
            return retrying(self.client.create_experiment, name, artifact_location=location,
                            tags={UI_VIEW_TAG: UI_VIEW})
        except mlflow.exceptions.MlflowException:  # another bench created it a moment ago
            return self.client.get_experiment_by_name(name).experiment_id

    @contextlib.contextmanager
    def child(self, spec: ExperimentSpec, engine: str, seed: int, threads: int,
              run_id: str | None = None) -> Iterator[str]:
        """A child run of the active parent (or the run `run_id` that a driver created for this
        process with `create_child`).

        MLflow's system metrics are not logged: they sample the whole machine once a second from
        this (the parent) process, so they mix in whatever else runs and miss the training window
        of a run shorter than a second. The run's own process is measured instead (`monitor`)."""
        if run_id is not None:
            with self._run(run_id=run_id) as rid:
                retrying(mlflow.set_tags, process_tags())
                yield rid
            return
        tags = self._child_tags(engine, seed)
        with self._run(run_name=f"{engine} seed {seed}", nested=True, tags=tags) as rid:
            retrying(mlflow.log_params, run_params(spec, engine, seed, threads))
            yield rid

    def _child_tags(self, engine: str, seed: int) -> dict[str, str]:
        return {BENCH_TAG: self.bench_id, KIND_TAG: "run", "harness.engine": engine, "harness.seed": str(seed),
                RUN_TYPE_TAG: RUN_TYPE, **({COLOUR_TAG: ENGINE_COLOURS[engine]} if engine in ENGINE_COLOURS else {}),
                **process_tags(), **environment_tags()}

    def create_child(self, spec: ExperimentSpec, engine: str, seed: int, threads: int, parent_id: str) -> str:
        """A child run of `parent_id`, created but not started: another process fills it (`child(run_id=)`)."""
        from mlflow.entities import Param

        experiment = self.client.get_run(parent_id).info.experiment_id
        tags = {**self._child_tags(engine, seed), "mlflow.parentRunId": parent_id}
        run = retrying(self.client.create_run, experiment, tags=tags, run_name=f"{engine} seed {seed}")
        params = [Param(k, str(v)) for k, v in run_params(spec, engine, seed, threads).items()]
        for i in range(0, len(params), 100):
            retrying(self.client.log_batch, run.info.run_id, params=params[i : i + 100])
        return run.info.run_id

    def end(self, run_id: str, status: str, reason: str) -> None:
        """Close a run this process does not hold open (its process died, or was cancelled)."""
        with contextlib.suppress(Exception):
            retrying(self.client.set_tag, run_id, REASON_TAG, reason[:5000])
        self._closing(run_id, status, reason, self.client.set_terminated, run_id, status)

    def _closing(self, run_id: str, status: str, reason: str, fn: Any, *args: Any) -> None:
        """`fn(*args)`, which ends the run; where the store refuses it because the run was deleted
        meanwhile (its experiment, in the UI), the run is ended in the store directly."""
        try:
            retrying(fn, *args)
        except StoreWriteError:
            close_deleted(self.uri, run_id, status, reason)
            raise

    @contextlib.contextmanager
    def _run(self, **kwargs: Any) -> Iterator[str]:
        run = retrying(mlflow.start_run, **kwargs)
        try:
            yield run.info.run_id
        except KeyboardInterrupt:
            self._end(run.info.run_id, "KILLED", "interrupted")
            raise
        except BaseException as e:
            epoch = getattr(e, "epoch", None)
            if epoch is not None:
                with contextlib.suppress(Exception):
                    retrying(self.client.set_tag, run.info.run_id, EPOCH_TAG, str(epoch))
            self._end(run.info.run_id, "FAILED", f"{getattr(e, 'kind', type(e).__name__)}: {e}")
            raise
        else:
            finished = RunStatus.to_string(RunStatus.FINISHED)
            self._closing(run.info.run_id, finished, "", mlflow.end_run, finished)

    def _end(self, run_id: str, status: str, reason: str) -> None:
        with contextlib.suppress(Exception):  # the run must still be ended if the store hiccups here
            retrying(self.client.set_tag, run_id, REASON_TAG, reason[:5000])
        self._closing(run_id, status, reason, mlflow.end_run, status)

    def log_result(self, run_id: str, spec: ExperimentSpec, result: Any, tags: dict[str, str] | None = None) -> None:
        """Everything a finished child run records (called after its process has ended): the
        datasets, the model, the curves, the figures it has once (step 0, so that the UI's chart
        view draws each as one bar per run or engine; `keys` names them in the store; what the rest
        of the machine did among them), the final test figures (the model's, step 0 too), tags
        (`tags` besides: the busy-machine verdict) and a plot."""
        _, evaluation = self.log_dataset(result.data)
        check, model_id = result.onnx, None
        if check is not None:  # before the curves: MLflow copies to a new model the run's metrics at its step
            params = {"engine": result.engine, "seed": result.seed, "dataset": result.data["name"]}
            model_id = self.log_model(Path(check.path), result.example_input, result.engine,
                                      check.predictions is not None, name=model_name(spec, result.engine, result.seed),
                                      params=params, step=len(result.epochs))  # the state after the last epoch
        self.log_epochs(run_id, result)
        once = {"train_time_s": result.train_time_s, "median_epoch_s": result.median_epoch_s,
                "steady_epoch_s": result.steady_epoch_s, "eval_time_s": result.eval_time_s,
                "samples_per_s": result.samples_per_s, "epochs_run": len(result.epochs),
                **{k: v for k, v in result.resources.items() if k in RESOURCE_KEYS or k in INTERFERENCE_KEYS}}
        if result.time_to_target_s is not None:
            once.update(time_to_target_s=result.time_to_target_s, target_epoch=result.target_epoch)
        if check is not None:
            once["export_time_s"] = check.export_time_s
            if check.predictions is not None:
                once.update(onnx_max_abs_diff=check.max_abs_diff, onnx_agreement=check.agreement)
            else:
                retrying(mlflow.set_tag, "harness.onnx_note", check.note[:5000])
        retrying(mlflow.log_metrics, {keys.once_key(k): v for k, v in once.items()}, step=0)
        # the final test figures, one point each (test/accuracy beside the curve curves/test_accuracy); at
        # step 0, as every figure a run has once: the UI draws a metric whose latest step is 1 or more
        # as a line (one dot here), at 0 as a bar. Where there is a model, as its record, on the test split
        tests = {k: float(v) for k, v in result.final.items() if k.startswith("test_") and v is not None}
        retrying(mlflow.log_metrics, {keys.once_key(k): v for k, v in tests.items()}, step=0,
                 model_id=model_id, dataset=evaluation if model_id else None)
        retrying(mlflow.set_tags, {"harness.target_reached": str(result.time_to_target_s is not None).lower(),
                                   **{f"threads.{k}": str(v) for k, v in result.threads.items()},
                                   **result.machine, **(tags or {})})
        retrying(mlflow.log_figure, curves_figure(result), "curves.png")

    def log_epochs(self, run_id: str, result: Any) -> None:
        """Per-epoch metrics, step = epoch, in batches of MLflow's limit of 1000."""
        now = int(time.time() * 1000)
        test_key = f"test_{result.metric}"
        metrics = []
        for r in result.epochs:
            for key, value in (("train_loss", r.train_loss), ("epoch_time_s", r.epoch_time_s),
                               (test_key, r.test_metric), ("test_loss", r.test_loss), ("eval_time_s", r.eval_time_s)):
                if value is not None:
                    metrics.append(Metric(keys.epoch_key(key), float(value), now, r.epoch))
        for i in range(0, len(metrics), 1000):
            retrying(self.client.log_batch, run_id, metrics=metrics[i : i + 1000])

    def log_model(self, path: Path, example: np.ndarray, engine: str, runnable: bool = True, name: str = "model",
                  params: dict[str, Any] | None = None, step: int = 0) -> str:
        """The ONNX file as an MLflow LoggedModel of the active run, loadable with mlflow.pyfunc
        (where onnxruntime can run it: `runnable`); its model id."""
        import onnx
        from mlflow.models import infer_signature

        from harness.onnx.runtime import model_input, predict_onnx, session

        model = onnx.load_model(str(path))
        if runnable:  # the example as the model takes it (int64 token ids), so that MLflow's own check passes
            sess = session(path)
            example = model_input(sess, example)
        signature = infer_signature(example, predict_onnx(sess, example) if runnable else None)
        requirements = [f"{p}=={importlib.metadata.version(p)}" for p in ("onnx", "onnxruntime", "numpy")]
        info = retrying(mlflow.onnx.log_model, model, name=name, signature=signature,
                        input_example=example if runnable else None,
                        onnx_execution_providers=["CPUExecutionProvider"],
                        pip_requirements=requirements, save_as_external_data=False,
                        tags={"harness.engine": engine}, params=params, step=step)
        return info.model_id

    def log_dataset(self, data: dict[str, Any]) -> tuple[Any, Any]:
        """The dataset as the run's inputs: its training split (context "training") and its test
        split ("evaluation", which the model's test metrics name); both datasets."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import Schema, TensorSpec

        shapes = data["shapes"]
        source = CodeDatasetSource({"source": data["source"], "loader": f"harness.data.{data['name']}"})
        out = []
        for split, context in (("train", "training"), ("test", "evaluation")):
            schema = Schema([TensorSpec(np.dtype(np.float64), (-1, *shapes[f"x_{split}"][1:]), "x")])
            ds = MetaDataset(source, name=f"{data['name']}-{split}", digest=data["digest"][:16], schema=schema)
            retrying(mlflow.log_input, ds, context=context,
                     tags={"sha256": data["digest"], "shapes": json.dumps(shapes), "split": split})
            out.append(ds)
        return out[0], out[1]

    def log_comparison(self, metrics: dict[str, float]) -> None:
        """A parent run's comparison of its engines (`bench.compare`), single values."""
        retrying(mlflow.log_metrics, {keys.once_key(k): v for k, v in metrics.items()
                                      if v is not None and np.isfinite(v)}, step=0)


def model_name(spec: ExperimentSpec, engine: str, seed: int) -> str:
    """A logged model's name: the experiment, the engine and the seed, as `mnist-scratch-seed0`."""
    return f"{spec.name}-{engine}-seed{seed}"


def curves_figure(result: Any):
    """Train loss and test metric against epoch, for one run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r.epoch for r in result.epochs]
    a.plot(epochs, [r.train_loss for r in result.epochs])
    a.set(xlabel="epoch", ylabel="train loss", yscale="log", title=f"{result.experiment}: {result.engine}")
    tested = [r for r in result.epochs if r.test_metric is not None]
    b.plot([r.epoch for r in tested], [r.test_metric for r in tested], marker="." if len(tested) < 50 else None)
    b.set(xlabel="epoch", ylabel=f"test {result.metric}")
    fig.tight_layout()
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------- reading


def log_perf(metrics: dict[str, float | tuple[float, ...]], settings: dict[str, str], uri: str | None = None,
             tags: dict[str, str] | None = None) -> str:
    """One run in the experiment "perf" holding every figure of a `harness perf`; its run id. A tuple
    (a figure's repeats) is logged as a metric history, one step per repeat.
    `tags` (the measuring processes' machine record) take precedence over this process's."""
    tracker = Tracker(resolve_uri(uri), time.strftime("perf-%Y%m%d-%H%M%S"))
    stamp = int(time.time() * 1000)
    retrying(mlflow.set_experiment, experiment_id=tracker._experiment_id("perf"))  # refused in the trash
    all_tags = {KIND_TAG: "perf", **environment_tags(), **(tags or {})}
    with tracker._run(run_name=tracker.bench_id, tags=all_tags) as run_id:
        retrying(mlflow.log_params, settings)
        items = [(k, v) for k, v in metrics.items() if not isinstance(v, (tuple, list))]
        for i in range(0, len(items), 500):
            retrying(mlflow.log_metrics, dict(items[i : i + 500]))
        # a figure's per-repeat values as its own history (step = repeat): the intervals come from the store alone
        history = [Metric(k, float(v), stamp, step) for k, values in metrics.items()
                   if isinstance(values, (tuple, list)) for step, v in enumerate(values)]
        for i in range(0, len(history), 1000):
            retrying(tracker.client.log_batch, run_id, metrics=history[i : i + 1000])
    return run_id


def attach_report(run_ids: Sequence[str], files: Sequence[Path], uri: str | None = None) -> None:
    """Log the report files as artifacts of each parent run they describe."""
    client = MlflowClient(resolve_uri(uri))
    for run_id in run_ids:
        for f in files:
            retrying(client.log_artifact, run_id, str(f), "report")
