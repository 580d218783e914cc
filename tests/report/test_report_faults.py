"""`harness report` on a store that holds less than a whole bench: failed, interrupted or running."""

import pytest

from harness import cli
from harness.run import bench
from tests.run.test_bench import DIVERGES, write


def report(capsys, *argv):
    code = cli.main(["report", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


@pytest.fixture(scope="module")
def failed_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("failed")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    bench_id, outcomes = bench.bench([write(folder, "diverges", DIVERGES)], uri=uri, out=lambda _: None)
    assert outcomes[0].failures and not outcomes[0].results  # every run failed
    return {"uri": uri, "folder": folder, "bench_id": bench_id}


def test_a_bench_whose_every_run_failed_is_reported_as_such(failed_store, tmp_path, capsys):
    code, _, err = report(capsys, "--tracking-uri", failed_store["uri"], "--out", tmp_path / "out")
    assert code == 0, err
    md = (tmp_path / "out" / "report.md").read_text()
    assert "FAILED" in md and "training loss became" in md and "—" in md


def test_a_bench_still_running_is_reported_as_far_as_it_got(tmp_path, capsys):
    from harness import spec, tracking
    from tests.run.test_bench import XOR

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    s = spec.load(write(tmp_path, "xor", XOR))
    tracking.connect(uri)
    tracker = tracking.Tracker(uri, "20260101-000000-abcdef")
    with tracker.parent(s) as parent_id:  # a child created, its process not yet done: as mid-bench
        tracker.create_child(s, "scratch", 0, 1, parent_id)
    code, _, err = report(capsys, "--tracking-uri", uri, "--out", tmp_path / "out")
    assert code == 0, err
    assert "RUNNING" in (tmp_path / "out" / "report.md").read_text()


def test_an_empty_store_has_nothing_to_report(tmp_path, capsys):
    from harness import tracking

    tracking.quiet()
    tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")  # a store with no bench (report creates none: #26)
    code, _, err = report(capsys, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 0 and "run `harness bench` first" in err


@pytest.mark.parametrize("case,args,pattern", [
    ("quote in the bench id", ["--bench-id", "x'"], "a bench id is letters, digits"),
    ("out under a file", ["--out", "FILE/sub"], "cannot write the report to"),
    ("out component too long", ["--out", "L" * 300], "cannot write the report to .*: File name too long"),
])
def test_report_arguments_that_cannot_work_get_one_line(failed_store, tmp_path, capsys, case, args, pattern):
    import re

    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / a) if a.startswith(("FILE", "LLL")) else a for a in args]
    code, _, err = report(capsys, "--tracking-uri", failed_store["uri"], *args)
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert re.search(pattern, err), err
