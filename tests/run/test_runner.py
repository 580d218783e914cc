import os
import signal

import pytest

from harness import spec
from harness.run.isolation import ChildError, RunFailed, RunProcess, run_isolated
from harness.run.runner import TrainingDiverged, run
from tests.cli.test_cli import ROOT

EXPERIMENTS = ROOT / "experiments"


def load(name, *overrides):
    return spec.load(EXPERIMENTS / f"{name}.toml", list(overrides))


@pytest.mark.parametrize("engine", ["scratch", "torch"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_reaches_100_percent_on_every_default_seed(engine, seed):
    s = load("xor")
    assert seed in s.bench.seeds
    r = run(s, engine, seed)
    assert r.final["test_accuracy"] == 1.0
    assert r.epochs[-1].train_loss < r.epochs[0].train_loss / 100
    assert r.target_epoch is not None and 0 < r.time_to_target_s <= r.train_time_s + r.eval_time_s


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_addition_perceptron_learns_roughly(engine):
    r = run(load("addition", "training.epochs=60"), engine, 0)
    assert r.epochs[-1].train_loss < r.epochs[0].train_loss / 3
    assert 0.2 <= r.final["test_rounded_accuracy"] <= 0.9  # a sigmoid can only approximate a + b
    assert r.final["test_mae"] < 0.1


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_addition_linear_reaches_95_percent(engine):
    r = run(load("addition_linear"), engine, 1)
    assert r.final["test_rounded_accuracy"] >= 0.95
    assert r.final["test_mae"] < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_mnist_smoke_on_a_subset(engine, mnist_ready):
    r = run(load("mnist", "data.train_size=6000", "training.epochs=2"), engine, 0)
    assert r.epochs[1].train_loss < r.epochs[0].train_loss
    assert 0.85 <= r.final["test_accuracy"] <= 1.0
    assert r.predictions.shape == (10000, 10)


def test_records_and_clocks_are_consistent():
    r = run(load("addition", "training.epochs=6", "evaluation.every=3"), "scratch", 0)
    assert [e.epoch for e in r.epochs] == [1, 2, 3, 4, 5, 6]
    assert [e.test_metric is not None for e in r.epochs] == [False, False, True, False, False, True]
    assert r.train_time_s == pytest.approx(sum(e.epoch_time_s for e in r.epochs))
    assert r.eval_time_s == pytest.approx(sum(e.eval_time_s or 0 for e in r.epochs))
    assert r.samples_per_s == pytest.approx(100 * 6 / r.train_time_s)
    assert r.data["digest"] and r.data["shapes"]["x_train"] == [100, 2]
    assert r.threads["requested"] == 1


def test_a_diverging_run_stops_with_its_epoch():
    s = load("addition_linear", "training.optimizer.learning_rate=1e6", "training.epochs=50")
    with pytest.raises(TrainingDiverged, match=r"training loss became (nan|inf) at epoch \d+") as info:
        run(s, "scratch", 0)
    assert 1 <= info.value.epoch < 50


def test_an_isolated_run_gives_the_same_result_as_in_process():
    s = load("xor", "training.epochs=30")
    seen = []
    isolated = run_isolated(s, "scratch", 2, on_epoch=seen.append)
    local = run(s, "scratch", 2)
    assert [e.epoch for e in seen] == list(range(1, 31))
    assert [e.train_loss for e in isolated.epochs] == [e.train_loss for e in local.epochs]
    for k, v in local.parameters.items():
        assert isolated.parameters[k].tobytes() == v.tobytes()


def test_an_isolated_error_comes_back_with_its_message():
    s = load("addition_linear", "training.optimizer.learning_rate=1e6", "training.epochs=50")
    with pytest.raises(ChildError, match="training loss became") as info:
        run_isolated(s, "torch", 0)
    assert info.value.kind == "TrainingDiverged" and info.value.epoch >= 1


def test_a_killed_child_is_reported_as_failed():
    s = load("addition", "training.epochs=100000")

    def kill_soon(pid):
        kill_soon.pid = pid

    def on_epoch(record):
        if record.epoch == 2:
            os.kill(kill_soon.pid, signal.SIGKILL)

    with pytest.raises(RunFailed, match=r"was killed \(SIGKILL\), probably by the kernel for lack of memory"):
        run_isolated(s, "scratch", 0, on_epoch=on_epoch, on_start=kill_soon)


def test_data_holding_nan_is_refused_before_training_not_blamed_on_the_learning_rate():
    import numpy as np

    from harness.data.base import Dataset
    from harness.errors import DataError
    from harness.run.prepare import _check_finite

    x = np.zeros((4, 2))
    x[2, 1] = np.nan
    d = Dataset("xor", x, np.zeros((4, 1)), np.zeros((4, 2)), np.zeros((4, 1)), "test")
    with pytest.raises(DataError, match=r"x_train holds NaN or infinity \(first at row 2\)"):
        _check_finite(d)
    _check_finite(Dataset("xor", np.zeros((4, 2)), np.zeros((4, 1)), np.zeros((4, 2)), np.zeros((4, 1)), "test"))


def test_a_run_started_ahead_waits_for_its_turn_before_any_clock():
    s = load("xor", "training.epochs=5")
    process = RunProcess(s, "scratch", 0)
    try:
        assert process.conn.poll(120), "the run never got ready"
        assert process.conn.recv() == ("ready", None)  # imports, data and model done
        assert not process.conn.poll(1.0)  # and no epoch comes until its turn
        process.conn.send("go")
        seen = []
        result = process.result(on_epoch=seen.append)
    finally:
        process.close()
    assert [e.epoch for e in seen] == [1, 2, 3, 4, 5] and len(result.epochs) == 5


def test_the_bench_starts_a_run_ahead_only_once_the_run_before_has_released_its_clocks(tmp_path, monkeypatch):
    from harness.run import bench
    from tests.run import machines

    events = []

    class Recorded(RunProcess):
        def __init__(self, spec, engine, seed, **kwargs):
            events.append(("start", engine, seed))
            super().__init__(spec, engine, seed, **kwargs)
            assert self.export_dir is not None  # the bench's runs export their models

        def result(self, **kwargs):
            then = kwargs.pop("on_released", None)

            def released():
                events.append(("released", self.engine, self.seed))
                if then is not None:
                    then()

            events.append(("turn", self.engine, self.seed))
            return super().result(on_released=released, **kwargs)

        def close(self, failed=False):
            super().close(failed)
            events.append(("closed", self.engine, self.seed))

    monkeypatch.setattr(bench, "RunProcess", Recorded)
    path = tmp_path / "xor.toml"
    path.write_text((EXPERIMENTS / "xor.toml").read_text().replace("epochs = 500", "epochs = 20").replace(
        "seeds = [0, 1, 2]", "seeds = [0, 1]"))
    _, [outcome] = bench.bench([path], uri=f"sqlite:///{tmp_path / 'mlflow.db'}", out=lambda _: None,
                               executor=machines.quiet())
    assert not outcome.failures and len(outcome.results) == 4
    jobs = [("scratch", 0), ("torch", 0), ("scratch", 1), ("torch", 1)]
    expected = [("start", *jobs[0])]
    for k, job in enumerate(jobs):  # the next run starts after this one's clocks, its turn comes after this one ended
        expected += [("turn", *job), ("released", *job), *([("start", *jobs[k + 1])] if k + 1 < len(jobs) else []),
                     ("closed", *job)]
    assert events == expected
