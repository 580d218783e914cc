"""A sqlite store's life: created whole or not at all (Ctrl-C while MLflow makes its schema), named the
same way by every command (%-escapes), never created by a command that only reads, and readable where
its folder takes no new file (a copied or archived store without its .lock)."""

import mlflow.store.db.utils
import pytest

from harness import tracking
from harness.errors import TrackingError
from harness.tracking import store, ui
from tests.cli.test_bad_input import run_cli


def test_ctrl_c_while_the_schema_is_made_leaves_no_store_and_the_next_command_makes_it(tmp_path, monkeypatch):
    db = tmp_path / "new.db"
    real = mlflow.store.db.utils._upgrade_db

    def interrupted(engine):  # the first tables exist, the migrations have not run: Ctrl-C now
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tracking.connect(f"sqlite:///{db}")
    assert not db.exists() and [p.name for p in tmp_path.iterdir()] == ["new.db.lock"]
    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", real)
    tracking.connect(f"sqlite:///{db}")
    tracker_id = mlflow.MlflowClient().create_experiment("after")  # the store works: it can be written
    assert mlflow.MlflowClient().get_experiment(tracker_id).name == "after"


def test_a_percent_escaped_path_is_the_same_store_for_every_command(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/my%20store.db"
    tracking.connect(uri)
    assert (tmp_path / "my store.db").exists() and not (tmp_path / "my%20store.db").exists()
    assert "holds no runs yet" in ui.describe_store(uri)[0]  # the UI finds it (it refused it before)
    code, err = run_cli(capsys, "report", "--tracking-uri", uri, "--out", tmp_path / "results")
    assert code == 1 and "no bench in" in err, err


@pytest.mark.parametrize("argv", [["report"], ["evaluate", "--run", "abc"]], ids=["report", "evaluate --run"])
def test_a_command_that_only_reads_does_not_create_a_missing_store(argv, tmp_path, capsys):
    db = tmp_path / "absent.db"
    code, err = run_cli(capsys, *argv, "--tracking-uri", f"sqlite:///{db}")
    assert code == 2 and err.count("\n") == 0, err
    assert f"no tracking store at {db}: `harness bench` (or `make bench`) fills one" in err
    assert not db.exists()


def test_a_store_whose_folder_takes_no_lock_file_is_read(tmp_path, capsys, monkeypatch):
    uri = f"sqlite:///{tmp_path}/archived.db"
    tracking.connect(uri)
    (tmp_path / "archived.db.lock").unlink()

    def refused(path, *args, **kwargs):  # a read-only folder (chmod does not stop root, who runs CI here)
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(store, "open", refused, raising=False)
    code, err = run_cli(capsys, "report", "--tracking-uri", uri, "--out", tmp_path / "results")
    assert code == 1 and "no bench in" in err and "not permitted" not in err, err
    with pytest.raises(TrackingError, match="no tracking store at"):
        tracking.connect(f"sqlite:///{tmp_path}/other.db", create=False)


def test_a_report_on_runs_with_the_harness_tags_but_not_its_parameters_is_one_line(tmp_path, capsys):
    import mlflow

    uri = f"sqlite:///{tmp_path}/foreign.db"
    tracking.connect(uri)
    exp = mlflow.MlflowClient().create_experiment("foreign")  # not the active experiment of an earlier test's store
    with mlflow.start_run(experiment_id=exp, tags={store.BENCH_TAG: "b1", store.KIND_TAG: "bench"}):
        with mlflow.start_run(experiment_id=exp, nested=True, tags={store.BENCH_TAG: "b1", store.KIND_TAG: "run"}):
            mlflow.log_metric("test_accuracy", 1.0)
    code, err = run_cli(capsys, "report", "--tracking-uri", uri, "--out", tmp_path / "results")
    assert code == 2 and err.count("\n") == 0, err
    assert "the runs of bench 'b1' in sqlite:///" in err and "carry the harness's tags but not what harness bench " \
        "writes (params.experiment" in err
