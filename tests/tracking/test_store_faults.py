"""A store that fails under a running bench, and where a bench writes.

An experiment deleted (MLflow's soft delete, as the UI does it) and a full disk while `harness
bench` runs: one line naming the store and the cause, exit 1, no traceback, what was saved before
intact. And a bench run with HOME, TMPDIR, HARNESS_DATA_DIR and its working folder all in
temporary folders writes nothing outside its store and the temporary folder; a hostile
experiment name writes nothing at all.
"""

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from harness import tracking
from tests.cli.test_cli import ROOT

XOR = (ROOT / "experiments" / "xor.toml").read_text()
# one engine and many seeds: the bench is still going when the first run has finished
MANY_SEEDS = XOR.replace("epochs = 500", "epochs = 5").replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7]")
MANY_SEEDS = MANY_SEEDS.replace('engines = ["scratch", "torch"]', 'engines = ["scratch"]')
TINY = XOR.replace("epochs = 500", "epochs = 5").replace("seeds = [0, 1, 2]", "seeds = [0]")
# what makes MLflow think it runs under a test or in CI (its telemetry is off then): a user's shell has none of them
CI_VARIABLES = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.update(PYTHONPATH=str(ROOT), **extra)  # this checkout's harness whatever the working folder
    return env


def start_bench(folder, text, uri):
    path = folder / "xor.toml"
    path.write_text(text)
    return subprocess.Popen([sys.executable, "-m", "harness", "bench", str(path), "--tracking-uri", uri],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=environment(),
                            start_new_session=True)


def finish(proc, timeout=120):
    """The bench's output once it has ended; it and its run processes are killed if it does not end."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def client(uri):
    return MlflowClient(tracking.connect(uri))  # through the schema lock, as the bench does


def all_runs(uri):
    c = client(uri)
    exps = [e.experiment_id for e in c.search_experiments(view_type=ViewType.ALL)]
    return c.search_runs(exps, run_view_type=ViewType.ALL, max_results=1000) if exps else []


def wait_for_a_finished_child(uri, proc, timeout=120):
    """The first child run to end FINISHED, seen while the bench still runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, finish(proc)
        try:
            done = [r for r in all_runs(uri)
                    if r.data.tags.get("harness.kind") == "run" and r.info.status == "FINISHED"]
        except Exception:  # the store is not created yet
            done = []
        if done:
            return done[0]
        time.sleep(0.05)
    raise AssertionError("no child run finished")


def record(run):
    return run.info.run_id, run.info.status, run.data.metrics, run.data.params


def assert_one_line(proc, out, err, *words):
    assert proc.returncode == 1, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err + out, err
    for word in words:
        assert word in err, (word, err)


# ---------------------------------------------------------------------------- a deleted experiment


def test_an_experiment_deleted_while_its_bench_runs_stops_it_in_one_line(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start_bench(tmp_path, MANY_SEEDS, uri)
    first = wait_for_a_finished_child(uri, proc)
    experiment = first.info.experiment_id
    client(uri).delete_experiment(experiment)  # as the UI's delete button does: into the trash
    out, err = finish(proc)

    assert_one_line(proc, out, err, str(tmp_path / "mlflow.db"), "was deleted meanwhile")
    assert "FAILED" not in out  # the bench stopped at the failure, rather than failing every later run
    runs = all_runs(uri)
    assert len([r for r in runs if r.data.tags["harness.kind"] == "run"]) < 8
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]  # even in the trash
    by_id = {r.info.run_id: r for r in runs}
    assert record(by_id[first.info.run_id]) == record(first)  # what was saved before, as it was
    assert client(uri).get_experiment(experiment).lifecycle_stage == "deleted"  # the user's delete stands
    assert {r.info.lifecycle_stage for r in runs} == {"deleted"}

    # the next bench of that experiment: refused in one line while it is in the trash, no run created
    proc = start_bench(tmp_path, MANY_SEEDS, uri)
    out, err = finish(proc)
    assert_one_line(proc, out, err, str(tmp_path / "mlflow.db"), "Cannot set a deleted experiment 'xor'",
                    "restore the experiment")
    assert sorted(map(record, all_runs(uri))) == sorted(map(record, runs))


# ---------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 16 MB tmpfs of its own, unmounted afterwards (needs the right to mount)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(folder)],
                                 capture_output=True, text=True, timeout=30)
    except OSError as e:
        pytest.skip(f"a full disk is simulated on a small tmpfs, and mount cannot be run here: {e}")
    if mounted.returncode != 0:
        pytest.skip(f"a full disk is simulated on a small tmpfs, and mounting one is not permitted here "
                    f"(run as root to test it): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True, timeout=30)  # detached once unused


def fill(folder):
    """Fill the file system of `folder` to its last byte."""
    with open(folder / "filler", "wb", buffering=0) as f:  # unbuffered: nothing left to write on closing
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


FULL = ("database or disk is full", "No space left on device")  # sqlite's words, or the artifacts' folder's


def assert_full(proc, out, err, db):
    assert_one_line(proc, out, err, str(db))
    assert any(words in err for words in FULL), err


def test_a_disk_that_fills_while_a_bench_runs_stops_it_in_one_line(small_disk):
    db = small_disk / "mlflow.db"
    uri = f"sqlite:///{db}"
    proc = start_bench(small_disk, MANY_SEEDS, uri)
    first = wait_for_a_finished_child(uri, proc)
    fill(small_disk)
    out, err = finish(proc)
    assert_full(proc, out, err, db)
    assert "FAILED" not in out  # the bench stopped at the failure, rather than failing every later run
    held = sorted(map(record, all_runs(uri)))

    # a bench on the full disk: the same line, and no run (the reaper, or the first run, cannot be written)
    proc = start_bench(small_disk, MANY_SEEDS, uri)
    out, err = finish(proc)
    assert_full(proc, out, err, db)
    assert sorted(map(record, all_runs(uri))) == held

    (small_disk / "filler").unlink()
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # what the full disk left RUNNING (the bench could not write its end), the next bench closes
    tracking.reap_orphans(tracking.connect(uri))
    runs = all_runs(uri)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert len([r for r in runs if r.data.tags["harness.kind"] == "run"]) < 8
    assert record({r.info.run_id: r for r in runs}[first.info.run_id]) == record(first)  # as it was saved


# ---------------------------------------------------------------------------- where a bench writes


SKIPPED = {".venv", ".git", "__pycache__"}


def tree(root):
    """Every file and folder under `root` (relative paths), but the skipped folders."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        base = os.path.relpath(folder, root)
        found.update(os.path.normpath(os.path.join(base, name)) for name in dirs + files)
    return found


@pytest.fixture
def sandbox(tmp_path):
    """A working folder, HOME, TMPDIR and HARNESS_DATA_DIR, each a new temporary folder; the harness's
    environment with no tracking URI and no cache or config folder that is not under that HOME."""
    folders = {name: tmp_path / name for name in ("work", "home", "tmp", "data")}
    for f in folders.values():
        f.mkdir()
    drop = {"MLFLOW_TRACKING_URI", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "MPLCONFIGDIR", "TORCH_HOME",
            "ORT_DISABLE_TELEMETRY", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"}
    env = {k: v for k, v in environment(HOME=str(folders["home"]), TMPDIR=str(folders["tmp"]),
                                        HARNESS_DATA_DIR=str(folders["data"])).items() if k not in drop}
    watched = {"around": tmp_path.parent, "repository": ROOT, "home": folders["home"]}
    return folders, env, watched


def new_paths(watched, before):
    return {name: sorted(tree(root) - before[name]) for name, root in watched.items()}


def test_a_bench_writes_nothing_outside_its_store_and_the_temporary_folder(sandbox, tmp_path):
    folders, env, watched = sandbox
    (folders["work"] / "xor.toml").write_text(TINY)
    before = {name: tree(root) for name, root in watched.items()}
    out = subprocess.run([sys.executable, "-m", "harness", "bench", "xor.toml"], cwd=folders["work"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    new = new_paths(watched, before)

    assert new["repository"] == []
    ours = tuple(os.path.relpath(f, tmp_path.parent) + os.sep for f in folders.values())  # each checked below
    assert [p for p in new["around"] if not p.startswith(ours)] == []
    # the default store, ./mlflow.db, its schema lock, and the artifacts of the one experiment beside it
    in_work = {p.split(os.sep)[0] for p in tree(folders["work"])}
    assert in_work == {"xor.toml", "mlflow.db", "mlflow.db.lock", "mlruns"}
    assert os.listdir(folders["work"] / "mlruns") == ["xor"]
    assert tree(folders["data"]) == set()
    # in HOME, matplotlib's font cache alone (a per-user cache of the fonts found, the same for any run);
    # no telemetry ids of MLflow (~/.config/mlflow) or onnxruntime (~/.cache/Microsoft)
    matplotlib = {os.path.join(".cache", "matplotlib"), os.path.join(".config", "matplotlib")}
    assert [p for p in new["home"] if p not in {".cache", ".config"}
            and not any(p == m or p.startswith(m + os.sep) for m in matplotlib)] == []
    # the temporary folders the harness made for the runs' ONNX files are gone (torch's empty
    # torchinductor_<user> folder may stay, and onnxruntime's session file must not be there)
    assert [p for p in os.listdir(folders["tmp"]) if p.startswith("harness-") or p == ".ses"] == []


@pytest.mark.parametrize("how", ["climbs out", "absolute", "set"])
def test_a_hostile_name_is_refused_and_nothing_is_written_anywhere(sandbox, tmp_path, how):
    folders, env, watched = sandbox
    name = {"climbs out": "../../x", "absolute": str(tmp_path / "evil" / "x"), "set": "../x"}[how]
    args = []
    if how == "set":
        args = ["--set", f'name="{name}"']
        (folders["work"] / "xor.toml").write_text(TINY)
    else:
        (folders["work"] / "xor.toml").write_text(TINY.replace('name = "xor"', f'name = "{name}"'))
    before = {label: tree(root) for label, root in watched.items()}
    out = subprocess.run([sys.executable, "-m", "harness", "bench", "xor.toml", *args], cwd=folders["work"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"name = {name!r}: must be 1-64 letters" in out.stderr
    assert new_paths(watched, before) == {"around": [], "repository": [], "home": []}
    assert tree(folders["tmp"]) == set() and tree(folders["data"]) == set()
