"""A small bench into a temporary sqlite store, checked through mlflow.search_runs."""

import math

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from harness import report, text, tracking
from harness.errors import TrackingError
from harness.run import bench
from tests.cli.test_cli import ROOT, harness
from tests.run import machines


def write(folder, name, text):
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


XOR = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 60").replace(
    "seeds = [0, 1, 2]", "seeds = [0, 1]")
DIVERGES = (ROOT / "experiments" / "addition_linear.toml").read_text().replace(
    "learning_rate = 0.1", "learning_rate = 1e6").replace("seeds = [0, 1, 2]", "seeds = [0]").replace(
    'name = "addition_linear"', 'name = "diverges"')


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    files = [write(folder, "diverges", DIVERGES), write(folder, "xor", XOR)]
    lines = []
    bench_id, outcomes = bench.bench(files, uri=uri, out=lines.append, executor=machines.quiet())
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`harness.bench_id` = '{bench_id}'")
    return {"uri": uri, "bench_id": bench_id, "outcomes": outcomes, "runs": runs, "lines": lines, "folder": folder}


def children(store, experiment=None):
    runs = store["runs"][store["runs"]["tags.harness.kind"] == "run"]
    if experiment:
        ids = {o.parent_run_id for o in store["outcomes"] if o.spec.name == experiment}
        runs = runs[runs["tags.mlflow.parentRunId"].isin(ids)]
    return runs


def test_one_parent_per_experiment_and_one_child_per_engine_and_seed(store):
    runs = store["runs"]
    parents = runs[runs["tags.harness.kind"] == "bench"]
    assert len(parents) == 2 and set(parents["params.experiment"]) == {"xor", "diverges"}
    assert len(children(store, "xor")) == 4 and len(children(store, "diverges")) == 2
    assert set(parents["status"]) == {"FINISHED"}
    assert set(children(store, "xor")["status"]) == {"FINISHED"}
    assert not (runs["status"] == "RUNNING").any()


def test_every_experiment_opens_in_the_ui_s_model_training_view(store):
    """MLflow 3 opens an experiment in its GenAI view (traces) unless it is tagged as model training;
    an experiment an older harness made untagged gets the tag on its next bench."""
    from mlflow import MlflowClient

    client = MlflowClient(store["uri"])
    for name in ("xor", "diverges"):
        assert client.get_experiment_by_name(name).tags.get("mlflow.experimentKind") == "custom_model_development"
    old = client.create_experiment("made_before", artifact_location=(store["folder"] / "mlruns" / "x").as_uri())
    from harness.tracking.runs import Tracker

    assert Tracker(store["uri"], "later")._experiment_id("made_before") == old
    assert client.get_experiment(old).tags.get("mlflow.experimentKind") == "custom_model_development"


def test_a_failed_run_is_marked_with_its_reason_and_the_bench_goes_on(store):
    failed = children(store, "diverges")
    assert set(failed["status"]) == {"FAILED"}
    assert failed["tags.harness.failure_reason"].str.startswith("TrainingDiverged: training loss became").all()
    assert failed["tags.harness.failure_epoch"].astype(int).between(1, 30).all()
    assert any("FAILED: training loss became" in line for line in store["lines"])
    assert store["lines"][-1].startswith(f"bench {store['bench_id']} finished")


@pytest.mark.parametrize("key,low,high", [
    ("test/accuracy", 0, 1), ("time/train_s", 1e-6, 60), ("time/median_epoch_s", 1e-7, 10), ("time/eval_s", 0, 10),
    ("speed/samples_per_s", 1, 1e9), ("resources/cpu_user_s", 0, 60), ("resources/cpu_system_s", 0, 60),
    ("resources/cpu_percent_mean", 1, 400), ("resources/rss_peak_mb", 10, 4000), ("time/to_target_s", 0, 60),
    ("test/loss", 0, 10), ("run/epochs", 60, 60)])
def test_every_final_metric_is_present_and_plausible(store, key, low, high):
    values = children(store, "xor")[f"metrics.{key}"]
    assert values.notna().all(), key
    assert ((values >= low) & (values <= high)).all(), (key, values.tolist())


def test_metric_keys_are_grouped_by_prefix_and_single_figures_are_single_points(store):
    """The UI groups a run's charts by the prefix before "/", in alphabetical order: the per-epoch
    series first under curves/; figures a run has once under interference/, onnx/, resources/, run/, speed/,
    test/, time/, each a single point at step 0 (the chart view's bar: one at a later step is drawn
    as a one-dot line)."""
    client = MlflowClient(store["uri"])
    run_id = children(store, "xor")["run_id"].iloc[0]
    logged = client.get_run(run_id).data.metrics
    assert all("/" in k for k in logged), [k for k in logged if "/" not in k]
    groups = {k.split("/")[0] for k in logged}
    assert groups == {"curves", "test", "time", "speed", "resources", "interference", "onnx", "run"}, groups
    assert min(groups) == "curves"
    for key in logged:
        steps = {m.step for m in client.get_metric_history(run_id, key)}
        curve = key.startswith("curves/")
        assert steps == (set(range(1, 61)) if curve else {0}), (key, sorted(steps)[:3])
    assert {k for k in logged if k.startswith("curves/")} == {
        "curves/train_loss", "curves/test_accuracy", "curves/test_loss", "curves/epoch_time_s", "curves/eval_time_s"}


def test_params_tags_epochs_dataset_and_model_are_recorded(store):
    client = MlflowClient(store["uri"])
    run = children(store, "xor").iloc[0]
    assert run["params.engine"] in ("scratch", "torch") and run["params.training.epochs"] == "60"
    assert run["params.network.hidden"] == '[{"units":4,"activation":{"name":"tanh"}}]'
    in_git = (ROOT / ".git").exists()  # a release tarball has no commit to record
    assert bool(run.get("tags.git.commit")) == in_git
    for tag in ("version.python", "version.numpy", "version.torch", "version.mlflow", "machine.cpu",
                "machine.cores_physical", "machine.cores_usable", "blas.numpy.library", "blas.numpy.kernel",
                "blas.numpy.threads", "env.kernel_overrides"):
        assert run[f"tags.{tag}"], tag
    torch_run = children(store, "xor").query("`params.engine` == 'torch'").iloc[0]
    assert torch_run["tags.blas.torch.library"] and torch_run["tags.blas.torch.kernel"]
    assert torch_run["tags.threads.requested"] == torch_run["tags.threads.torch"] == "1"
    threads = {c: v for c, v in torch_run.items() if c.startswith("tags.threads.") and isinstance(v, str)}
    assert threads and all(v.isdigit() for v in threads.values()), threads  # counts only; versions apart
    assert all(c.startswith(("tags.version.", "tags.build.", "tags.blas.", "tags.threads.", "tags.machine.",
                             "tags.harness.", "tags.mlflow.", "tags.git.", "tags.env."))
               for c in torch_run.index if c.startswith("tags.") and isinstance(torch_run[c], str))
    history = client.get_metric_history(run["run_id"], "curves/train_loss")
    assert sorted(m.step for m in history) == list(range(1, 61))
    inputs = client.get_run(run["run_id"]).inputs.dataset_inputs
    contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs}
    assert contexts == {"xor-train": "training", "xor-test": "evaluation"}
    assert all(len(i.dataset.digest) == 16 for i in inputs)
    assert "curves.png" in {a.path for a in client.list_artifacts(run["run_id"])}


def logged_model(store, run_id):
    experiment = MlflowClient(store["uri"]).get_run(run_id).info.experiment_id
    (model,) = mlflow.search_logged_models(experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'",
                                           output_format="list")
    return model


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_each_run_logs_an_onnx_model_that_pyfunc_serves(store, engine):
    import numpy as np

    runs = children(store, "xor")
    run = runs[runs["params.engine"] == engine].iloc[0]
    model = logged_model(store, run["run_id"])
    pyfunc = mlflow.pyfunc.load_model(model.model_uri)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    out = pyfunc.predict(x)["output"]
    assert (out.ravel() >= 0.5).tolist() == [False, True, True, False]
    assert run["metrics.onnx/max_abs_diff"] <= 1e-12 and run["metrics.onnx/agreement"] == 1.0
    assert run["metrics.time/export_s"] > 0


def test_each_model_is_named_and_carries_its_test_metrics_on_the_evaluation_set(store):
    """The Models tab compares the LoggedModels: named `<experiment>-<engine>-seed<N>`, each with
    the run's final test metrics, logged against the test split."""
    for _, run in children(store, "xor").iterrows():
        model = logged_model(store, run["run_id"])
        assert model.name == f"xor-{run['params.engine']}-seed{run['params.seed']}"
        metrics = {m.key: m for m in model.metrics}
        assert set(metrics) == {"test/accuracy", "test/loss"} and len(model.metrics) == 2
        assert metrics["test/accuracy"].value == run["metrics.test/accuracy"]
        assert metrics["test/loss"].value == run["metrics.test/loss"]
        assert {m.dataset_name for m in model.metrics} == {"xor-test"}
        assert model.params["engine"] == run["params.engine"] and model.params["seed"] == run["params.seed"]


def test_evaluate_reproduces_each_logged_metric_from_the_onnx_file_alone(store):
    from harness.run.evaluate import evaluate

    for _, run in children(store, "xor").iterrows():
        result = evaluate(run_id=run["run_id"], uri=store["uri"])
        assert result.metric == "accuracy" and result.value == run["metrics.test/accuracy"]
    out = harness("evaluate", "--run", children(store, "xor")["run_id"].iloc[0], "--tracking-uri", store["uri"])
    assert out.returncode == 0 and "test accuracy 1.0000 on 4 samples of xor" in out.stdout


def test_the_parent_logs_the_comparison(store):
    parent = store["runs"][(store["runs"]["tags.harness.kind"] == "bench")
                           & (store["runs"]["params.experiment"] == "xor")].iloc[0]
    for key in ("engines/scratch_speedup", "engines/accuracy_gap", "engines/agreement_mean",
                "scratch/test_accuracy_mean", "torch/test_accuracy_std", "scratch/train_time_s_mean",
                "torch/rss_peak_mb_mean"):
        assert not math.isnan(parent[f"metrics.{key}"]), key
    assert parent["metrics.engines/scratch_speedup"] > 0 and parent["metrics.engines/agreement_mean"] == 1.0
    assert 0 < parent["metrics.engines/scratch_speedup_min"] <= parent["metrics.engines/scratch_speedup_max"]
    assert parent["metrics.engines/scratch_speedup_ci_low"] <= parent["metrics.engines/scratch_speedup"] \
        <= parent["metrics.engines/scratch_speedup_ci_high"]
    assert parent["metrics.engines/scratch_speedup_verdict"] in (-1, 0, 1)
    assert not any(c.startswith("metrics.system/") and children(store, "xor")[c].notna().any()
                   for c in children(store, "xor").columns)  # machine-wide figures are not the run's
    assert parent["metrics.engines/onnx_agreement_count_min"] == 4 and parent["metrics.engines/agreement_n"] == 4
    assert parent["metrics.experiment/runs_failed"] == 0


def test_the_report_is_built_from_the_store_and_matches_it(store, tmp_path):
    r = report.build(store["bench_id"], tmp_path / "results", store["uri"], log=lambda *_: None)
    md = (tmp_path / "results" / "report.md").read_text()
    for word in ("## xor", "## diverges", "| scratch |", "| torch |", "speedup", "agreement",
                 "ONNX files, run by onnxruntime, agree on 4 of 4 test predictions",
                 "scratch seed 0 FAILED**: TrainingDiverged: training loss became"):
        assert word in md, word
    assert {p.name for p in r.files} >= {"report.md", "summary.csv", "xor_curves.png", "resources.png"}
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    xor_runs = children(store, "xor")
    for engine in ("scratch", "torch"):
        row = summary[(summary["experiment"] == "xor") & (summary["engine"] == engine)].iloc[0]
        mine = xor_runs[xor_runs["params.engine"] == engine]
        assert row["train_time_s_mean"] == pytest.approx(mine["metrics.time/train_s"].mean(), rel=1e-12)
        assert row["rss_peak_mb_mean"] == pytest.approx(mine["metrics.resources/rss_peak_mb"].mean(), rel=1e-12)
        assert text.figure(row["train_time_s_mean"], row["train_time_s_std"]) in md
    parents = tracking.bench_runs(store["bench_id"], store["uri"])[0]
    attached = {a.path for a in MlflowClient(store["uri"]).list_artifacts(parents["run_id"].iloc[0], "report")}
    assert "report/report.md" in attached


def test_artifacts_live_beside_the_sqlite_file(store):
    assert (store["folder"] / "mlruns").is_dir()


def test_invalid_experiments_create_no_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bad = write(tmp_path, "bad", XOR.replace("epochs = 60", "epochs = 0"))
    out = harness("bench", str(bad), "--tracking-uri", uri)
    assert out.returncode == 2 and "training.epochs = 0" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_server_is_a_clear_error_before_training(tmp_path):
    good = write(tmp_path, "xor", XOR)
    with pytest.raises(TrackingError, match=r"http://127.0.0.1:9 does not answer"):
        bench.bench([good], uri="http://127.0.0.1:9", out=lambda *_: None)


def test_the_ui_unfolds_the_runs_in_their_engines_colours_and_groups_the_parent_apart(store):
    """#25, items 2-5: the child runs unfold on first opening (evaluation runs) in their engine's
    colour, the parent is its own group when grouped by `engine`, and a tag named as its speedup
    says which way round that is (the browser test sees them in the UI)."""
    client = MlflowClient(store["uri"])
    for _, run in children(store, "xor").iterrows():
        assert run["tags.mlflow.runType"] == "evaluation"
        assert run["tags.mlflow.runColor"] == tracking.ENGINE_COLOURS[run["params.engine"]]
    outcome = next(o for o in store["outcomes"] if o.spec.name == "xor")
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.params["engine"] == "comparison" and "harness.engine" not in parent.data.tags
    assert parent.data.tags["engines/scratch_speedup"] == "torch time / scratch time: above 1, scratch is faster"


def test_one_speedup_for_the_console_the_parent_run_and_the_report(store, tmp_path):
    """#25, item 1: the same number, with the same interval, in the three places a user reads it."""
    from harness import stats
    from harness.cli.bench import comparison_table
    from harness.report.markdown import bench_speedup

    outcome = next(o for o in store["outcomes"] if o.spec.name == "xor")
    parent = store["runs"][store["runs"]["run_id"] == outcome.parent_run_id].iloc[0]
    logged = bench.speedup_comparison({k: parent[f"metrics.engines/scratch_{k}"] for k in (
        "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_min", "speedup_max", "speedup_cv")})
    runs = children(store, "xor").assign(engine=lambda f: f["params.engine"], seed=lambda f: f["params.seed"])
    from_store = bench_speedup(runs)
    assert from_store.ratio == pytest.approx(logged.ratio, rel=1e-12)
    assert (from_store.low, from_store.high) == pytest.approx((logged.low, logged.high), rel=1e-12)
    assert stats.cell(from_store) in comparison_table([outcome])
    report.build(store["bench_id"], tmp_path / "results", store["uri"], log=lambda *_: None)
    assert f"| xor | {stats.cell(from_store)} | " in (tmp_path / "results" / "report.md").read_text()


def test_the_speedup_is_the_ratio_of_pooled_steady_medians_with_a_verdict():
    scratch = {0: [9.0, 1.0, 1.01, 0.99], 1: [9.0, 1.0, 1.02, 0.98]}  # the first, the warm-up: the caller drops it
    torch_ = {0: [2.0, 2.02, 1.98], 1: [2.0, 2.01, 1.99]}
    out = bench.epoch_speedup({k: v[1:] for k, v in scratch.items()}, torch_)
    assert out["speedup"] == pytest.approx(2.0) and out["speedup_ci_low"] > 1.02 and out["speedup_verdict"] == 1
    assert out["speedup_min"] == pytest.approx(2.0) and "speedup_seeds_needed" not in out
    same = bench.epoch_speedup(torch_, torch_)
    assert same["speedup"] == 1 and same["speedup_verdict"] == 0
