"""A bench on a busy machine and on a quiet one, end to end: the monitor of each run is fed the
machine's readings (`tests.run.machines`), so that either case holds whatever else runs here."""

import pandas as pd
import pytest

from harness import report, tracking
from harness.cli.bench import comparison_table
from harness.run import bench
from tests.cli.test_cli import ROOT
from tests.run import machines

XOR = ROOT / "experiments" / "xor.toml"
TINY = ["bench.seeds=[0]", "training.epochs=20"]


def tiny_bench(folder, readings):
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    lines = []
    bench_id, (outcome,) = bench.bench([XOR], TINY, uri=uri, out=lines.append, executor=machines.executor(readings))
    r = report.build(bench_id, folder / "out", uri, attach=False, log=lambda *_: None)
    parents, children = tracking.bench_runs(bench_id, uri)
    md = (folder / "out" / "report.md").read_text()
    return {"lines": lines, "outcome": outcome, "parents": parents, "children": children, "md": md, "report": r}


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    # more cores' worth than any machine has, so that even a window of a millisecond (a tiny run's
    # training, widened back to its process's start) reads busy beyond the ticks' uncertainty
    return tiny_bench(tmp_path_factory.mktemp("busy"), machines.BusyMachine(cores=1000.0))


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    return tiny_bench(tmp_path_factory.mktemp("quiet"), machines.QuietMachine())


def test_on_a_busy_machine_the_bench_says_so_in_one_line_per_run(busy):
    said = [line for line in busy["lines"] if "measured on a busy machine" in line]
    assert len(said) == 2, busy["lines"]
    for engine in ("scratch", "torch"):
        line = next(x for x in said if f"xor {engine} seed 0" in x)
        assert "other processes used" in line and "of the" in line and "threshold 10%" in line
        assert line.endswith("left out of the speedup")
    assert set(busy["outcome"].busy) == {("scratch", 0), ("torch", 0)}
    assert "no speedup: every seed had a run measured on a busy machine" in comparison_table([busy["outcome"]])


def test_on_a_busy_machine_the_runs_are_tagged_with_the_figures_that_show_it(busy):
    runs = busy["children"]
    assert set(runs["tags.harness.busy"]) == {"true"} and set(runs["tags.harness.busy_threshold"]) == {"0.1"}
    assert (runs["tags.harness.busy_others_share"].astype(float) > 0.1).all()
    for key in ("others_cpu_s", "others_share", "others_resolution_s", "window_s", "load_start", "load_end"):
        assert runs[f"metrics.{key}"].notna().all(), key
    assert (runs["metrics.others_share"] > 0.1).all() and (runs["metrics.load_start"] == 3.0).all()
    parent = busy["parents"].iloc[0]
    assert parent["metrics.runs_busy"] == 2
    assert pd.isna(parent.get("metrics.speedup"))  # no seed left to compare


def test_on_a_busy_machine_the_report_says_so_first_and_leaves_the_runs_out_of_the_speedup(busy):
    md = busy["md"]
    head = "\n".join(md.splitlines()[:6])
    assert "**2 runs of 2 measured on a busy machine**" in head
    assert "**Every run of xor was measured on a busy machine**" in head
    assert "## Measured on a busy machine" in md
    assert "- xor, scratch seed 0: other processes used" in md and "- xor, torch seed 0: other processes used" in md
    row = next(line for line in md.splitlines() if line.startswith("| xor |") and "busy machine" in line)
    assert "— (busy machine)" in row


def test_on_a_quiet_machine_none_of_it_appears(quiet):
    assert not any("busy" in line for line in quiet["lines"]), quiet["lines"]
    assert quiet["outcome"].busy == {}
    table = comparison_table([quiet["outcome"]])
    assert "speedup (torch / scratch" in table and "busy" not in table
    runs = quiet["children"]
    assert set(runs["tags.harness.busy"]) == {"false"}
    assert (runs["metrics.others_share"] < 0.1).all()
    parent = quiet["parents"].iloc[0]
    assert parent["metrics.runs_busy"] == 0 and parent["metrics.speedup"] > 0
    assert "busy machine" not in quiet["md"]
    row = next(line for line in quiet["md"].splitlines() if line.startswith("| xor |") and "%" in line)
    assert "—" not in row.split("|")[2]  # the speedup is there
