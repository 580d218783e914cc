"""A bench of a transformer on token ids, both engines: each run's logged model carries an input example
of its graph input's type (int64 ids from the scratch engine's writer, float ids cast inside torch's
export), MLflow serves it on that example, and `harness evaluate --run` reproduces the logged accuracy."""

import json

import mlflow
import numpy as np
import pytest

from harness.onnx.runtime import session
from harness.run import bench
from harness.run.evaluate import evaluate
from tests.cli.test_cli import ROOT
from tests.run import machines
from tests.run.test_bench import logged_model

SORT = ((ROOT / "experiments" / "sort_digits.toml").read_text()
        .replace("train_size = 10000", "train_size = 256").replace("test_size = 2000", "test_size = 64")
        .replace("epochs = 10", "epochs = 1").replace("seeds = [0, 1, 2]", "seeds = [0]"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_tokens")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    path = folder / "sort_digits.toml"
    path.write_text(SORT)
    bench_id, outcomes = bench.bench([path], uri=uri, out=lambda line: None, executor=machines.quiet())
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`harness.bench_id` = '{bench_id}'")
    return {"uri": uri, "runs": runs[runs["tags.harness.kind"] == "run"]}


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_a_token_model_is_logged_with_integer_ids_and_served_on_its_example(store, engine, tmp_path):
    run = store["runs"][store["runs"]["params.engine"] == engine].iloc[0]
    model = logged_model(store, run["run_id"])
    folder = mlflow.artifacts.download_artifacts(model.artifact_location, dst_path=str(tmp_path))
    takes = session(f"{folder}/model.onnx").get_inputs()[0].type
    assert takes == ("tensor(int64)" if engine == "scratch" else "tensor(float)")
    example = np.asarray(json.loads(open(f"{folder}/serving_input_example.json").read())["inputs"])
    assert example.dtype.kind == ("i" if engine == "scratch" else "f")  # as the graph's input takes them
    out = mlflow.pyfunc.load_model(model.model_uri).predict(example.astype(np.int64 if engine == "scratch"
                                                                           else np.float32))
    (probabilities,) = out.values()
    assert probabilities.shape == (len(example), 8, 10)
    result = evaluate(run_id=run["run_id"], uri=store["uri"])
    assert result.metric == "accuracy" and result.value == pytest.approx(run["metrics.test/accuracy"], abs=1 / 64)
