"""Reading the store back: what the report and `harness evaluate` need, as pandas and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from harness.errors import TrackingError
from harness.tracking import keys
from harness.tracking.store import BENCH_TAG, KIND_TAG, check_written, connect, resolve_uri, shown_uri

REPEATS = ".repeats"  # a figure's per-repeat values (as harness.perf.REPEATS names them): one step per repeat


def run_counts(uri: str | None = None) -> tuple[str, dict[str, int]]:
    """(the store's URI as connected, its experiments that hold runs -> how many, at most 1000 each)."""
    uri = connect(uri)
    client = MlflowClient(uri)
    counts = {e.name: len(client.search_runs([e.experiment_id], max_results=1000)) for e in client.search_experiments()}
    return uri, {name: n for name, n in counts.items() if n}


def bench_ids(uri: str | None = None) -> list[str]:
    """Bench invocations in the store, newest first."""
    connect(uri, create=False)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{KIND_TAG}` = 'bench'",
                              order_by=["start_time DESC"])
    if runs.empty:
        return []
    return list(dict.fromkeys(runs[f"tags.{BENCH_TAG}"]))


def bench_index(uri: str | None = None) -> list[tuple[str, pd.Timestamp, tuple[str, ...]]]:
    """Every bench invocation in the store, newest first: (its id, its start, the experiments it ran)."""
    connect(uri, create=False)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{KIND_TAG}` = 'bench'",
                              order_by=["start_time DESC"], max_results=50000)
    if runs.empty:
        return []
    index = []
    for bench_id, parents in runs.groupby(f"tags.{BENCH_TAG}", sort=False):
        experiments = tuple(dict.fromkeys(parents.get("params.experiment", pd.Series(dtype=str)).dropna()))
        index.append((bench_id, parents["start_time"].min(), experiments))
    return sorted(index, key=lambda b: b[1], reverse=True)


def bench_runs(bench_id: str, uri: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parent runs, child runs) of one bench invocation, as mlflow.search_runs gives them."""
    connect(uri, create=False)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{BENCH_TAG}` = '{bench_id}'",
                              max_results=50000)
    if runs.empty:
        raise TrackingError(f"no runs of bench {bench_id!r} in {shown_uri(resolve_uri(uri))}")
    runs = keys.flat_columns(runs)
    check_written(runs, bench_id, uri)
    kind = runs[f"tags.{KIND_TAG}"]
    return runs[kind == "bench"].reset_index(drop=True), runs[kind == "run"].reset_index(drop=True)


def runs_of_kind(kind: str, uri: str | None = None) -> pd.DataFrame:
    """Every run whose `harness.kind` tag is `kind` ("bench": a bench's parent runs, "run": their children,
    "perf"), whatever its status, newest first, its metrics under the harness's names (an empty frame
    when there is none): what `harness compare` and `harness history` read."""
    connect(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{KIND_TAG}` = '{kind}'",
                              order_by=["start_time DESC"], max_results=50000)
    return runs if runs.empty else keys.flat_columns(runs)


def metric_history(run_id: str, name: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one per-epoch metric (`train_loss`, `test_accuracy`) of one run, by step;
    a run of an older harness has it under its flat name."""
    client = MlflowClient()
    history = client.get_metric_history(run_id, keys.epoch_key(name)) or client.get_metric_history(run_id, name)
    return sorted((m.step, m.value) for m in history)


def latest_perf(uri: str | None = None) -> tuple[str, dict[str, float], dict[str, str], dict[str, str]] | None:
    """(run id, metrics, params, tags) of the newest finished `harness perf` run, or None."""
    connect(uri)
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["start_time DESC"], max_results=1,
                              filter_string=f"tags.`{KIND_TAG}` = 'perf' and attributes.status = 'FINISHED'")
    if runs.empty:
        return None
    run_id = runs["run_id"].iloc[0]
    return (run_id, *read_run(run_id, uri))


def read_run(run_id: str, uri: str | None = None) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(metrics by the harness's names, params, tags) of one run, from the store; a figure's repeats
    (a `.repeats` key, logged as a history) come back as the tuple of its values in step order."""
    client = MlflowClient(resolve_uri(uri))
    run = client.get_run(run_id)
    metrics: dict[str, Any] = {keys.flat_name(k): v for k, v in run.data.metrics.items()
                               if not k.startswith(keys.CURVES)}
    for k in [k for k in metrics if k.endswith(REPEATS)]:
        metrics[k] = tuple(m.value for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step))
    return metrics, dict(run.data.params), dict(run.data.tags)


def run_model(run_id: str, dest: Path, uri: str | None = None) -> Path:
    """The ONNX file of the model logged by a run, downloaded into `dest`."""
    connect(uri, create=False)
    try:
        experiment = MlflowClient().get_run(run_id).info.experiment_id
        models = mlflow.search_logged_models(experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'",
                                             output_format="list")
    except Exception as e:
        raise TrackingError(f"cannot look up the model of run {run_id}: {str(e).splitlines()[0]}") from None
    if not models:
        raise TrackingError(f"run {run_id} has no logged model in {shown_uri(resolve_uri(uri))}")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=models[0].artifact_location, dst_path=str(dest)))
    files = sorted(folder.rglob("*.onnx"))
    if not files:
        raise TrackingError(f"the model of run {run_id} holds no .onnx file")
    return files[0]
