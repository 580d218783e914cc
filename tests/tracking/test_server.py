"""A real PostgreSQL and a real `mlflow server` on loopback ports, and a small bench through HTTP."""

import os
import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests

from harness import report
from harness.run import bench
from harness.run.evaluate import evaluate
from harness.tracking import server
from tests.cli.test_cli import ROOT

pytestmark = pytest.mark.server


def postgres_installed() -> bool:
    try:
        server._pg_bin("initdb")
        return True
    except server.ServerError:
        return False


@pytest.fixture(scope="module")
def live():
    if not postgres_installed():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    folder = Path(tempfile.mkdtemp(prefix="harness-server-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when we are root: it must reach its folder
    pg = server.Postgres(folder / "pg", server.free_port()).start()
    port = server.free_port()
    proc = server.mlflow_server(pg.uri, folder / "artifacts", port=port, log=folder / "mlflow.log")
    url = f"http://127.0.0.1:{port}"
    xor = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 40").replace(
        "seeds = [0, 1, 2]", "seeds = [0, 1]")
    (folder / "xor.toml").write_text(xor)
    try:
        bench_id, outcomes = bench.bench([folder / "xor.toml"], uri=url, out=lambda *_: None)
        yield {"url": url, "bench_id": bench_id, "outcomes": outcomes, "folder": folder, "pg": pg}
    finally:
        server.stop(proc)
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def rest(url, path, body):
    response = requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_the_store_is_postgresql(live):
    assert live["pg"].uri.startswith("postgresql+psycopg://")
    assert (live["pg"].folder / "PG_VERSION").exists()


def test_runs_and_metrics_through_the_rest_api(live):
    exps = rest(live["url"], "experiments/search", {"max_results": 100})["experiments"]
    xor = next(e for e in exps if e["name"] == "xor")
    runs = rest(live["url"], "runs/search", {"experiment_ids": [xor["experiment_id"]], "max_results": 100})["runs"]
    assert len(runs) == 1 + 4
    assert {r["info"]["status"] for r in runs} == {"FINISHED"}
    children = [r for r in runs if any(t["key"] == "harness.kind" and t["value"] == "run"
                                       for t in r["data"]["tags"])]
    for r in children:
        metrics = {m["key"]: m["value"] for m in r["data"]["metrics"]}
        assert metrics["test/accuracy"] == 1.0 and metrics["time/train_s"] > 0 and metrics["resources/rss_peak_mb"] > 0
    models = rest(live["url"], "logged-models/search", {"experiment_ids": [xor["experiment_id"]]})["models"]
    assert len(models) == 4


def test_search_runs_and_pyfunc_models_through_the_server(live):
    mlflow.set_tracking_uri(live["url"])
    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.`harness.bench_id` = '{live['bench_id']}'")
    assert len(runs) == 5 and set(runs["status"]) == {"FINISHED"}
    child = runs[runs["tags.harness.kind"] == "run"].iloc[0]
    (model,) = mlflow.search_logged_models(experiment_ids=[child["experiment_id"]],
                                           filter_string=f"source_run_id = '{child['run_id']}'",
                                           output_format="list")
    out = mlflow.pyfunc.load_model(model.model_uri).predict(np.array([[0, 1], [1, 1]], dtype=np.float64))
    assert (out["output"].ravel() >= 0.5).tolist() == [True, False]
    assert evaluate(run_id=child["run_id"], uri=live["url"]).value == child["metrics.test/accuracy"]


def test_the_report_builds_from_the_server_as_from_sqlite(live, tmp_path):
    r = report.build(live["bench_id"], tmp_path, live["url"], log=lambda *_: None)
    md = (tmp_path / "report.md").read_text()
    assert "## xor" in md and "| scratch | 2 |" in md and "| torch | 2 |" in md
    assert set(r.summary["engine"]) == {"scratch", "torch"}
    assert os.path.getsize(tmp_path / "xor_curves.png") > 1000


def test_the_server_listens_on_loopback_by_default():
    import inspect

    assert inspect.signature(server.mlflow_server).parameters["host"].default == "127.0.0.1"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             configure_logging=False)
    yield ray
    ray.shutdown()


def test_the_ray_executor_records_the_same_runs_as_the_local_one(live, ray_cluster):
    from harness.run.distributed import RayExecutor

    executor = RayExecutor()
    assert executor.cpus_per_task == 2  # a whole node each
    bench_id, outcomes = bench.bench([live["folder"] / "xor.toml"], uri=live["url"], out=lambda *_: None,
                                     executor=executor)
    (local,), (remote,) = live["outcomes"], outcomes
    assert set(remote.results) == set(local.results) == {(e, s) for e in ("scratch", "torch") for s in (0, 1)}
    for key, r in remote.results.items():
        assert r.final["test_accuracy"] == local.results[key].final["test_accuracy"]
        assert r.epochs[-1].train_loss == pytest.approx(local.results[key].epochs[-1].train_loss, rel=1e-9, abs=0)
    mlflow.set_tracking_uri(live["url"])
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`harness.bench_id` = '{bench_id}'")
    assert len(runs) == 5 and set(runs["status"]) == {"FINISHED"}
    children = runs[runs["tags.harness.kind"] == "run"]
    assert children["tags.mlflow.parentRunId"].nunique() == 1
    assert children["metrics.test/accuracy"].eq(1.0).all() and children["metrics.time/train_s"].gt(0).all()


def test_a_failing_ray_task_marks_its_run_failed_and_the_bench_goes_on(live, ray_cluster, tmp_path):
    from harness.run.distributed import RayExecutor

    text = (ROOT / "experiments" / "addition_linear.toml").read_text().replace(
        "learning_rate = 0.1", "learning_rate = 1e6").replace("seeds = [0, 1, 2]", "seeds = [0]")
    path = tmp_path / "diverges.toml"
    path.write_text(text.replace('name = "addition_linear"', 'name = "diverges"'))
    bench_id, (outcome,) = bench.bench([path], uri=live["url"], out=lambda *_: None, executor=RayExecutor())
    assert set(outcome.failures) == {("scratch", 0), ("torch", 0)}
    mlflow.set_tracking_uri(live["url"])
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`harness.bench_id` = '{bench_id}'")
    children = runs[runs["tags.harness.kind"] == "run"]
    assert set(children["status"]) == {"FAILED"}
    assert children["tags.harness.failure_reason"].str.contains("training loss became").all()
