"""Faults, concurrency and security: every run ends in a true state, and nothing runs pickles."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from harness import spec, tracking
from harness.errors import HarnessError
from harness.run.runner import run
from tests.cli.test_cli import ROOT

SLOW_ADDITION = (ROOT / "experiments" / "addition.toml").read_text().replace("epochs = 200", "epochs = 100000")


def start_bench(folder, text, *extra):
    path = folder / "slow.toml"
    path.write_text(text)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "bench", str(path), "--tracking-uri", uri, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, uri


def runs(uri):
    """Every run of the store. Through `tracking.connect`, so that the schema is never created or
    migrated by this process while the bench's process does the same (a race MLflow loses)."""
    client = MlflowClient(tracking.connect(uri))
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, max_results=1000) if exps else []


def wait_for_a_running_child(uri, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            found = [r for r in runs(uri) if r.data.tags.get("harness.kind") == "run" and r.info.status == "RUNNING"]
        except Exception:  # the store may not exist yet
            found = []
        if found and psutil.Process(proc.pid).children():
            time.sleep(1.0)  # let the run's process get into its epochs
            return found[0]
        time.sleep(0.3)
    raise AssertionError("no child run started")


@pytest.mark.parametrize("sig,storm", [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 30)])
def test_a_signal_marks_the_running_child_and_its_parent_killed(tmp_path, sig, storm):
    proc, uri = start_bench(tmp_path, SLOW_ADDITION)
    wait_for_a_running_child(uri, proc)
    sent = time.time()
    for _ in range(storm):  # to the parent alone, as `kill PID` sends it; a storm must not break the clean-up
        proc.send_signal(sig)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    assert time.time() - sent < 8, "the bench did not stop promptly"
    assert proc.returncode == 130 and "interrupted" in err
    statuses = {r.data.tags["harness.kind"]: r.info.status for r in runs(uri)}
    assert statuses == {"run": "KILLED", "bench": "KILLED"}


def test_a_run_process_killed_outright_is_failed_and_the_bench_goes_on(tmp_path):
    text = SLOW_ADDITION.replace("seeds = [0, 1, 2]", "seeds = [0]").replace(
        'engines = ["scratch", "torch"]', 'engines = ["torch", "scratch"]')
    proc, uri = start_bench(tmp_path, text, "--set", "training.epochs=3000")
    child_run = wait_for_a_running_child(uri, proc)
    for child in psutil.Process(proc.pid).children():
        if "spawn" in " ".join(child.cmdline()):
            child.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err  # the bench finished, with a failure to report
    by_id = {r.info.run_id: r for r in runs(uri)}
    killed = by_id[child_run.info.run_id]
    assert killed.info.status == "FAILED"
    reason = killed.data.tags["harness.failure_reason"]
    assert "was killed (SIGKILL), probably by the kernel for lack of memory: its memory was" in reason
    assert float(reason.split("its memory was ")[1].split(" MB")[0].replace(",", "")) > 50  # a torch process
    others = [r for r in by_id.values() if r.info.run_id != child_run.info.run_id]
    assert {r.info.status for r in others} == {"FINISHED"} and len(others) == 2  # the other run, the parent


def test_two_benches_at_once_on_one_sqlite_store_both_record_everything(tmp_path):
    xor = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 30").replace(
        "seeds = [0, 1, 2]", "seeds = [0]")
    path = tmp_path / "xor.toml"
    path.write_text(xor)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "harness", "bench", str(path), "--tracking-uri", uri]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    found = runs(uri)
    assert len(found) == 2 * (1 + 2) and {r.info.status for r in found} == {"FINISHED"}
    assert len({r.data.tags["harness.bench_id"] for r in found}) == 2


def test_runs_left_running_by_a_dead_process_are_reaped(tmp_path):
    uri = tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(uri)
    exp = client.create_experiment("orphans")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = os.uname().nodename
    orphan = client.create_run(exp, tags={tracking.PID_TAG: dead.stdout.strip(), tracking.HOST_TAG: host})
    alive = client.create_run(exp, tags=tracking.process_tags())
    # this process's pid, but another start time: the pid was reused after the harness process died
    reused = client.create_run(exp, tags={**tracking.process_tags(), "harness.pid_started": "12345.00"})
    assert tracking.reap_orphans(uri) == 2
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"
    assert client.get_run(reused.info.run_id).info.status == "FAILED"
    assert "ended without closing it" in client.get_run(orphan.info.run_id).data.tags[tracking.REASON_TAG]
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    client.set_terminated(alive.info.run_id)


def test_the_same_seed_gives_bitwise_identical_scratch_runs():
    s = spec.load(ROOT / "experiments" / "addition.toml", ["training.epochs=20"])
    first, second = run(s, "scratch", 1), run(s, "scratch", 1)
    assert [e.train_loss for e in first.epochs] == [e.train_loss for e in second.epochs]
    assert [e.test_metric for e in first.epochs] == [e.test_metric for e in second.epochs]
    for k, v in first.parameters.items():
        assert second.parameters[k].tobytes() == v.tobytes()
    assert first.predictions.tobytes() == second.predictions.tobytes()


def test_torch_determinism_settings_are_recorded():
    s = spec.load(ROOT / "experiments" / "xor.toml", ["training.epochs=2"])
    r = run(s, "torch", 0)
    assert r.machine["build.torch.deterministic_algorithms"] in ("true", "false")
    assert int(r.threads["torch_interop"]) >= 1


def test_no_load_path_unpickles(tmp_path):
    import inspect

    from harness import npzfile
    from harness.data import mnist
    from harness.scratch import serialize

    assert "allow_pickle=False" in inspect.getsource(npzfile)
    for module in (serialize, mnist):
        assert "npzfile.read(" in inspect.getsource(module)
    for path in (ROOT / "harness").rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text and "torch.load" not in text and "allow_pickle=True" not in text, path
        assert text.count("np.load(") == text.count("np.load(path, allow_pickle=False)"), path


KEYS = ["name", "data", "dataset", "network", "inputs", "outputs", "hidden", "units", "activation",
        "output_activation", "init", "training", "loss", "optimizer", "learning_rate", "momentum", "epochs",
        "batch_size", "dtype", "evaluation", "metric", "target", "bench", "seeds", "engines", "slope", "alpha"]
SCALARS = (st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans()
           | st.sampled_from(["xor", "mnist", "relu", "softmax", "sgd", "adam", "bce", "mse", "cross_entropy",
                              "float32", "float64", "sigmoid", "tanh", "", "scratch", "torch"])
           | st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
                      max_leaves=25)
DOCS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=7)
SETS = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz._=[]{}\"'0123456789-, ")), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, overrides=st.lists(SETS, max_size=3))
def test_random_documents_and_overrides_give_only_harness_errors(doc, overrides):
    try:
        spec.from_dict(doc, overrides)
    except HarnessError as e:
        assert str(e) and "\n" not in str(e)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_files_give_only_harness_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "x.toml"
    path.write_text(text, encoding="utf-8")
    try:
        spec.load(path)
    except HarnessError as e:
        assert str(e)


def test_the_fuzzer_reaches_valid_specs_too():
    ok = spec.from_dict({"data": {"dataset": "xor"}, "network": {"inputs": 2, "outputs": 1,
                                                                 "output_activation": "sigmoid"},
                         "training": {"loss": "bce"}})
    assert ok.network.sizes == [2, 1]


def test_a_store_that_cannot_be_written_gets_one_line_and_keeps_what_it_held(tmp_path):
    """An immutable database file (chattr +i, which even root cannot write): exit 1, one line, the
    runs of the bench before it intact."""
    import shutil

    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    text = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 5").replace(
        "seeds = [0, 1, 2]", "seeds = [0]")
    proc, uri = start_bench(tmp_path, text)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    before = sorted((r.info.run_id, r.info.status) for r in runs(uri))
    db = tmp_path / "mlflow.db"
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support immutable files")
    try:
        proc, _ = start_bench(tmp_path, text)
        out, err = proc.communicate(timeout=300)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert proc.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "attempt to write a readonly database" in err and str(db) in err
    assert sorted((r.info.run_id, r.info.status) for r in runs(uri)) == before
