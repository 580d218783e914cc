"""MLflow: the only module of the harness that imports it.

Writing: a parent run per (bench invocation, experiment), a child run per (engine, seed)
with the spec as parameters, versions and machine as tags, per-epoch and final metrics,
the resources used, the dataset as an input, the trained model and a plot of its curves.
Every run ends FINISHED, FAILED (with the reason as a tag) or KILLED, never RUNNING.

Reading: `bench_runs` and `metric_history` give the report what it needs as pandas.
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
from typing import Any

import mlflow
import mlflow.onnx
import numpy as np
import pandas as pd
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from harness.errors import TrackingError
from harness.spec import ExperimentSpec

DEFAULT_URI = "sqlite:///mlflow.db"
BENCH_TAG = "harness.bench_id"
KIND_TAG = "harness.kind"  # "bench" (parent) or "run" (child)
REASON_TAG = "harness.failure_reason"
PID_TAG = "harness.pid"
HOST_TAG = "harness.host"
SQLITE_TIMEOUT_S = 60
LOCK_RETRIES = 5
EPOCH_TAG = "harness.failure_epoch"
SYSTEM_METRICS_INTERVAL_S = 1.0
EPOCH_KEYS = ("train_loss", "epoch_time_s", "test_loss", "eval_time_s")
RESOURCE_KEYS = ("cpu_user_s", "cpu_system_s", "cpu_percent_mean", "cpu_percent_max", "rss_peak_mb",
                 "rss_mean_mb", "rss_hwm_mb", "threads_max", "monitor_samples", "monitor_overhead_s")


def resolve_uri(uri: str | None = None) -> str:
    """The tracking URI: the argument, else $MLFLOW_TRACKING_URI, else ./mlflow.db."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (query string dropped), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).expanduser().resolve()


def connect(uri: str | None = None) -> str:
    """Point MLflow at the store and check that it answers; a clear error if it does not.

    For sqlite, the URI gains a busy timeout (a writer waits up to SQLITE_TIMEOUT_S for
    another process's lock instead of failing), and creating or migrating the schema is
    serialised between processes with a lock file beside the database. Returns the URI used.
    """
    uri = resolve_uri(uri)
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        except requests.RequestException as e:
            raise TrackingError(f"the tracking server {uri} does not answer ({type(e).__name__}); start it or "
                                "pass another --tracking-uri") from None
    db = sqlite_path(uri)
    if db is not None:
        if not db.parent.is_dir():
            raise TrackingError(f"the folder of the tracking store {uri} does not exist: {db.parent}")
        if "timeout=" not in uri:
            uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_TIMEOUT_S}"
    mlflow.set_tracking_uri(uri)
    try:
        with _file_lock(db):
            MlflowClient().search_experiments(max_results=1)
    except Exception as e:  # MLflow raises many kinds; all mean the same to the user
        raise TrackingError(f"cannot use the tracking store {uri}: {str(e).splitlines()[0]}") from None
    return uri


@contextlib.contextmanager
def _file_lock(db: Path | None) -> Iterator[None]:
    """An exclusive lock on `<db>.lock` (POSIX), so that two processes never migrate one schema at once."""
    if db is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: MLflow's own retries are all there is
        yield
        return
    with open(db.with_name(db.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def retrying(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)`, tried again with backoff while sqlite says "database is locked"."""
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if "database is locked" not in str(e) or attempt == LOCK_RETRIES:
                raise
            time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def reap_orphans(uri: str) -> int:
    """Mark FAILED the runs left RUNNING by a harness process of this machine that no longer exists
    (killed outright, or the machine restarted); how many were."""
    import psutil

    client = MlflowClient(uri)
    host = platform.node()
    reaped = 0
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
            tags = run.data.tags
            pid = tags.get(PID_TAG)
            if tags.get(HOST_TAG) != host or not pid or psutil.pid_exists(int(pid)):
                continue
            retrying(client.set_tag, run.info.run_id, REASON_TAG,
                     f"the harness process that ran it (pid {pid}) ended without closing it")
            retrying(client.set_terminated, run.info.run_id, "FAILED")
            reaped += 1
    return reaped


# ---------------------------------------------------------------------------- what is logged


@functools.cache
def environment_tags() -> dict[str, str]:
    """Versions, machine and project commit, as run tags."""
    tags = {"version.python": platform.python_version(), "version.mlflow": mlflow.__version__,
            "machine.cpu": _cpu_model(), "machine.cores": str(os.cpu_count()),
            "machine.platform": platform.platform()}
    for package in ("numpy", "torch", "onnx", "onnxruntime"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            tags[f"version.{package}"] = importlib.metadata.version(package)
    tags.update(_git())
    return tags


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


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
    return {PID_TAG: str(os.getpid()), HOST_TAG: platform.node()}


def run_params(spec: ExperimentSpec, engine: str, seed: int, threads: int) -> dict[str, Any]:
    return {**spec.flat(), "engine": engine, "seed": seed, "dtype": spec.training.dtype, "threads": threads}


# ---------------------------------------------------------------------------- runs


class Tracker:
    """Runs of one bench invocation in one store."""

    def __init__(self, uri: str, bench_id: str) -> None:
        self.uri, self.bench_id = uri, bench_id
        self.client = MlflowClient(uri)

    @contextlib.contextmanager
    def parent(self, spec: ExperimentSpec) -> Iterator[str]:
        """The parent run of one experiment in this bench; yields its run id."""
        mlflow.set_experiment(experiment_id=self._experiment_id(spec.name))
        tags = {BENCH_TAG: self.bench_id, KIND_TAG: "bench", **process_tags(), **environment_tags()}
        with self._run(run_name=f"bench {self.bench_id}", tags=tags, description=spec.description) as run_id:
            retrying(mlflow.log_params, {"experiment": spec.name, "seeds": json.dumps(list(spec.bench.seeds)),
                               "engines": json.dumps(list(spec.bench.engines))})
            retrying(mlflow.log_dict, spec.to_dict(), "spec.json")
            yield run_id

    def _experiment_id(self, name: str) -> str:
        """The MLflow experiment of that name; created with its artifacts beside a sqlite store's file."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        db = sqlite_path(self.uri)
        if db is not None:
            location = (db.parent / "mlruns" / name).as_uri()
        try:
            return retrying(self.client.create_experiment, name, artifact_location=location)
        except mlflow.exceptions.MlflowException:  # another bench created it a moment ago
            return self.client.get_experiment_by_name(name).experiment_id

    @contextlib.contextmanager
    def child(self, spec: ExperimentSpec, engine: str, seed: int, threads: int) -> Iterator[str]:
        """A child run of the active parent, with MLflow's system metrics sampled every second."""
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_S)
        tags = {BENCH_TAG: self.bench_id, KIND_TAG: "run", "harness.engine": engine, "harness.seed": str(seed),
                **process_tags(), **environment_tags()}
        with self._run(run_name=f"{engine} seed {seed}", nested=True, tags=tags, log_system_metrics=True) as run_id:
            retrying(mlflow.log_params, run_params(spec, engine, seed, threads))
            yield run_id

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
            retrying(mlflow.end_run, RunStatus.to_string(RunStatus.FINISHED))

    def _end(self, run_id: str, status: str, reason: str) -> None:
        with contextlib.suppress(Exception):  # the run must still be ended if the store hiccups here
            retrying(self.client.set_tag, run_id, REASON_TAG, reason[:5000])
        retrying(mlflow.end_run, status)

    def log_result(self, run_id: str, spec: ExperimentSpec, result: Any) -> None:
        """Everything a finished child run records (called after its process has ended)."""
        self.log_epochs(run_id, result)
        final = {**result.final, "train_time_s": result.train_time_s, "median_epoch_s": result.median_epoch_s,
                 "eval_time_s": result.eval_time_s, "samples_per_s": result.samples_per_s,
                 "epochs_run": len(result.epochs)}
        if result.time_to_target_s is not None:
            final["time_to_target_s"] = result.time_to_target_s
            final["target_epoch"] = result.target_epoch
        final.update({k: v for k, v in result.resources.items() if k in RESOURCE_KEYS})
        # at the last epoch's step: test_<metric> is also a per-epoch series, and this is its last point
        retrying(mlflow.log_metrics, final, step=len(result.epochs))
        retrying(mlflow.set_tags, {"harness.target_reached": str(result.time_to_target_s is not None).lower(),
                                   **{f"threads.{k}": str(v) for k, v in result.threads.items()}})
        if result.onnx is not None:
            check = result.onnx
            retrying(mlflow.log_metrics, {"export_time_s": check.export_time_s}, step=len(result.epochs))
            if check.predictions is not None:
                retrying(mlflow.log_metrics, {"onnx_max_abs_diff": check.max_abs_diff,
                                              "onnx_agreement": check.agreement}, step=len(result.epochs))
            else:
                retrying(mlflow.set_tag, "harness.onnx_note", check.note[:5000])
            self.log_model(Path(check.path), result.example_input, result.engine, check.predictions is not None)
        self.log_dataset(result.data)
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
                    metrics.append(Metric(key, float(value), now, r.epoch))
        for i in range(0, len(metrics), 1000):
            retrying(self.client.log_batch, run_id, metrics=metrics[i : i + 1000])

    def log_model(self, path: Path, example: np.ndarray, engine: str, runnable: bool = True) -> str:
        """The ONNX file as an MLflow LoggedModel of the active run, loadable with mlflow.pyfunc
        (where onnxruntime can run it: `runnable`)."""
        import onnx
        from mlflow.models import infer_signature

        from harness.onnx_runtime import predict_onnx

        model = onnx.load_model(str(path))
        signature = infer_signature(example, predict_onnx(path, example) if runnable else None)
        requirements = [f"{p}=={importlib.metadata.version(p)}" for p in ("onnx", "onnxruntime", "numpy")]
        info = retrying(mlflow.onnx.log_model, model, name="model", signature=signature,
                                     input_example=example if runnable else None,
                                     onnx_execution_providers=["CPUExecutionProvider"],
                                     pip_requirements=requirements, save_as_external_data=False,
                                     tags={"harness.engine": engine})
        return info.model_uri

    def log_dataset(self, data: dict[str, Any]) -> None:
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import Schema, TensorSpec

        shapes = data["shapes"]
        schema = Schema([TensorSpec(np.dtype(np.float64), (-1, *shapes["x_train"][1:]), "x")])
        ds = MetaDataset(CodeDatasetSource({"source": data["source"], "loader": f"harness.data.{data['name']}"}),
                         name=data["name"], digest=data["digest"][:16], schema=schema)
        retrying(mlflow.log_input, ds, context="training",
                 tags={"sha256": data["digest"], "shapes": json.dumps(shapes)})

    def log_comparison(self, metrics: dict[str, float]) -> None:
        retrying(mlflow.log_metrics, {k: v for k, v in metrics.items() if v is not None and np.isfinite(v)})


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


def bench_ids(uri: str | None = None) -> list[str]:
    """Bench invocations in the store, newest first."""
    connect(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{KIND_TAG}` = 'bench'",
                              order_by=["start_time DESC"])
    if runs.empty:
        return []
    return list(dict.fromkeys(runs[f"tags.{BENCH_TAG}"]))


def bench_runs(bench_id: str, uri: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parent runs, child runs) of one bench invocation, as mlflow.search_runs gives them."""
    connect(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{BENCH_TAG}` = '{bench_id}'",
                              max_results=50000)
    if runs.empty:
        raise TrackingError(f"no runs of bench {bench_id!r} in {resolve_uri(uri)}")
    kind = runs[f"tags.{KIND_TAG}"]
    return runs[kind == "bench"].reset_index(drop=True), runs[kind == "run"].reset_index(drop=True)


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric of one run, by step."""
    return sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key))


def log_perf(metrics: dict[str, float], settings: dict[str, str], uri: str | None = None) -> str:
    """One run in the experiment "perf" holding every figure of a `harness perf`; its run id."""
    tracker = Tracker(resolve_uri(uri), time.strftime("perf-%Y%m%d-%H%M%S"))
    mlflow.set_experiment(experiment_id=tracker._experiment_id("perf"))
    with tracker._run(run_name=tracker.bench_id, tags={KIND_TAG: "perf", **environment_tags()}) as run_id:
        retrying(mlflow.log_params, settings)
        items = list(metrics.items())
        for i in range(0, len(items), 500):
            retrying(mlflow.log_metrics, dict(items[i : i + 500]))
    return run_id


def read_run(run_id: str, uri: str | None = None) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """(metrics, params, tags) of one run, from the store."""
    run = MlflowClient(resolve_uri(uri)).get_run(run_id)
    return dict(run.data.metrics), dict(run.data.params), dict(run.data.tags)


def attach_report(run_ids: Sequence[str], files: Sequence[Path], uri: str | None = None) -> None:
    """Log the report files as artifacts of each parent run they describe."""
    client = MlflowClient(resolve_uri(uri))
    for run_id in run_ids:
        for f in files:
            retrying(client.log_artifact, run_id, str(f), "report")


def run_model(run_id: str, dest: Path, uri: str | None = None) -> Path:
    """The ONNX file of the model logged by a run, downloaded into `dest`."""
    connect(uri)
    try:
        experiment = MlflowClient().get_run(run_id).info.experiment_id
        models = mlflow.search_logged_models(experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'",
                                             output_format="list")
    except Exception as e:
        raise TrackingError(f"cannot look up the model of run {run_id}: {str(e).splitlines()[0]}") from None
    if not models:
        raise TrackingError(f"run {run_id} has no logged model in {resolve_uri(uri)}")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=models[0].artifact_location, dst_path=str(dest)))
    files = sorted(folder.rglob("*.onnx"))
    if not files:
        raise TrackingError(f"the model of run {run_id} holds no .onnx file")
    return files[0]


def quiet() -> None:
    """Keep MLflow's own chatter (alembic migrations, emoji links) out of the user's terminal."""
    import logging

    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

