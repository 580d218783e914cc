"""The sweep form: an experiment file lists alternatives, the bench expands the grid, the report groups."""

import mlflow
import pytest

from harness import report, spec
from harness.errors import SpecError
from harness.run import bench
from tests.cli.test_cli import ROOT

XOR = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 30").replace(
    "seeds = [0, 1, 2]", "seeds = [0]")
SWEEP = XOR + '\n[sweep]\n"network.hidden.0.units" = [2, 6]\ntraining = { batch_size = [2, 4] }\n'


def test_a_sweep_expands_into_every_combination(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(SWEEP)
    s = spec.load(path)
    assert s.sweep == (("network.hidden.0.units", (2, 6)), ("training.batch_size", (2, 4)))
    variants = s.variants()
    assert [label for label, _ in variants] == [
        "network.hidden.0.units=2, training.batch_size=2", "network.hidden.0.units=2, training.batch_size=4",
        "network.hidden.0.units=6, training.batch_size=2", "network.hidden.0.units=6, training.batch_size=4"]
    assert [(v.network.sizes[1], v.training.batch_size) for _, v in variants] == [(2, 2), (2, 4), (6, 2), (6, 4)]
    assert all(not v.sweep for _, v in variants)
    assert spec.from_dict(s.to_dict()) == s
    assert spec.load(ROOT / "experiments" / "xor.toml").variants()[0][0] == ""


@pytest.mark.parametrize("sweep,pattern", [
    ('"network.hidden.0.units" = [2, 0]', r"sweep variant network.hidden.0.units=0: network.hidden.0.units = 0"),
    ('"training.epochs" = 5', r"sweep.training.epochs = 5: must be a non-empty list of alternatives"),
    ('"training.epoch" = [1, 2]', r"unknown key 'training.epoch'"),
    ('"bench.seeds" = [[0], [1]]', r"a sweep varies data, network, training or evaluation settings"),
])
def test_a_bad_sweep_is_one_clear_error(tmp_path, sweep, pattern):
    path = tmp_path / "xor.toml"
    path.write_text(XOR + f"\n[sweep]\n{sweep}\n")
    with pytest.raises(SpecError, match=pattern):
        spec.load(path)


def test_the_bench_runs_every_variant_and_the_report_groups_by_them(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(SWEEP)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bench_id, outcomes = bench.bench([path], uri=uri, out=lambda *_: None)
    assert len(outcomes) == 4 and {o.variant for o in outcomes} == {v for v, _ in spec.load(path).variants()}
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`harness.bench_id` = '{bench_id}'")
    parents = runs[runs["tags.harness.kind"] == "bench"]
    assert len(parents) == 4 and parents["experiment_id"].nunique() == 1  # one MLflow experiment, four variants
    assert set(parents["tags.harness.variant"]) == {o.variant for o in outcomes}
    children = runs[runs["tags.harness.kind"] == "run"]
    assert len(children) == 8 and set(children["status"]) == {"FINISHED"}
    assert set(children["params.network.hidden"]) == {'[{"units":2,"activation":{"name":"tanh"}}]',
                                                     '[{"units":6,"activation":{"name":"tanh"}}]'}
    r = report.build(bench_id, tmp_path / "results", uri, log=lambda *_: None)
    md = (tmp_path / "results" / "report.md").read_text()
    for o in outcomes:
        assert f"## xor [{o.variant}]" in md
    assert len(r.summary) == 8 and r.summary["experiment"].nunique() == 4
