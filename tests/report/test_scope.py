"""Which benches a report covers (#25, item 3): the newest by default, `--all` the newest of every
experiment, and report.md (and the console) name whatever of the store it leaves out."""

import pandas as pd
import pytest

from harness import report
from harness.report import scope
from harness.run import bench
from tests.cli.test_cli import ROOT, harness
from tests.run import machines
from tests.run.test_bench import write

T = pd.Timestamp
INDEX = [("b3", T("2026-12-05 12:00"), ("spiral",)),  # newest first, as tracking.bench_index gives it
         ("b2", T("2026-12-05 11:00"), ("xor",)),
         ("b1", T("2026-12-05 10:00"), ("xor", "spiral", "mnist"))]


def test_the_newest_bench_by_default_and_what_it_leaves_out_is_named():
    s = scope.choose(INDEX)
    assert s.chosen == {"b3": ("spiral",)} and s.left_out == ["b2", "b1"]
    assert s.missing == {"xor": "b2", "mnist": "b1"}
    text = "\n".join(scope.note(s))
    assert "**xor** (newest in bench `b2`)" in text and "**mnist** (newest in bench `b1`)" in text
    assert "`harness report --all`" in text and "2 other benches this report leaves out (`b2`, `b1`)" in text


def test_all_takes_the_newest_bench_of_each_experiment():
    s = scope.choose(INDEX, every=True)
    assert s.chosen == {"b3": ("spiral",), "b2": ("xor",), "b1": ("mnist",)}
    assert s.missing == {} and s.left_out == []
    assert scope.note(s) == []  # nothing left out, nothing said


def test_a_named_bench_and_many_left_out_are_counted():
    s = scope.choose(INDEX, bench_id="b1")
    assert s.chosen == {"b1": ("xor", "spiral", "mnist")} and s.missing == {} and s.left_out == ["b3", "b2"]
    many = [(f"b{i}", T("2026-12-05") - pd.Timedelta(hours=i), ("xor",)) for i in range(9)]
    assert "8 other benches this report leaves out (`b1`, `b2`, `b3`, `b4`, `b5` and 3 more)" in \
        "\n".join(scope.note(scope.choose(many)))


@pytest.fixture(scope="module")
def two_benches(tmp_path_factory):
    """xor, then another bench of addition_linear alone: the newest bench has no xor."""
    folder = tmp_path_factory.mktemp("scope")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    xor = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 20").replace(
        "seeds = [0, 1, 2]", "seeds = [0]")
    addition = (ROOT / "experiments" / "addition_linear.toml").read_text().replace(
        "seeds = [0, 1, 2]", "seeds = [0]").replace("epochs = 30", "epochs = 3")
    first, _ = bench.bench([write(folder, "xor", xor)], uri=uri, out=lambda _: None, executor=machines.quiet())
    second, _ = bench.bench([write(folder, "addition_linear", addition)], uri=uri, out=lambda _: None,
                            executor=machines.quiet())
    return {"uri": uri, "xor": first, "addition": second, "folder": folder}


def test_the_report_of_the_newest_bench_says_that_xor_is_left_out(two_benches, tmp_path):
    said = []
    r = report.build(None, tmp_path, two_benches["uri"], attach=False, log=said.append)
    md = (tmp_path / "report.md").read_text()
    assert r.bench_ids == [two_benches["addition"]] and "### xor" not in md
    assert f"**Left out of this report**: **xor** (newest in bench `{two_benches['xor']}`)" in md
    assert any(line.startswith("left out: xor") and "--all" in line for line in said), said


def test_all_reports_both_experiments_each_section_naming_its_bench(two_benches, tmp_path):
    out = harness("report", "--all", "--out", str(tmp_path), "--tracking-uri", two_benches["uri"])
    assert out.returncode == 0, out.stderr
    md = (tmp_path / "report.md").read_text()
    assert f"### xor (bench `{two_benches['xor']}`)" in md
    assert f"### addition_linear (bench `{two_benches['addition']}`)" in md
    assert f"- Bench `{two_benches['addition']}`: 2 runs of addition_linear, started" in md
    assert "Left out" not in md and "other bench" not in md
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["experiment"]) == {"xor", "addition_linear"}


def test_all_and_a_bench_id_together_are_refused_in_one_line():
    out = harness("report", "--all", "--bench-id", "x")
    assert out.returncode == 2 and "not allowed with argument" in out.stderr and "Traceback" not in out.stderr
