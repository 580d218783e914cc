"""Small synthetic stores for `harness compare` and `harness history`: benches and perf runs written
with the harness's own tracking functions, their epoch times drawn, their commit and machine set."""

from __future__ import annotations

import itertools
import shutil
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest

from harness import spec as specs
from harness import tracking
from tests.cli.test_cli import XOR_FILE

EPOCH_S = 0.1  # a typical epoch
SPREAD = 0.03  # the epochs' relative spread (lognormal)
OTHER_CPU = {"machine.cpu": "Another CPU @ 9 GHz"}
_ids = itertools.count()


def epochs(rng: np.random.Generator, scale: float = 1.0, n: int = 8) -> list[float]:
    """One run's epoch times: a slow warm-up epoch, then `n` steady ones around EPOCH_S x scale."""
    return [5 * EPOCH_S] + list(scale * EPOCH_S * np.exp(rng.normal(0, SPREAD, n)))


def bench(uri: str, commit: str, rng: np.random.Generator, scale: float = 1.0, engines=("scratch", "torch"),
          seeds=(0, 1, 2), tags: dict | None = None, busy: set = frozenset(), accuracy: float = 0.98) -> str:
    """A bench of xor at `commit`: every engine x seed a child run whose epochs are `epochs(rng, scale)`;
    `tags` (another machine) on every run; the (engine, seed) in `busy` tagged busy. Its bench id."""
    tracking.connect(uri)
    bench_id = f"test-{commit[:6]}-{next(_ids)}"
    tracker = tracking.Tracker(uri, bench_id)
    spec = specs.load(XOR_FILE)
    extra = {"git.commit": commit, **(tags or {})}
    with tracker.parent(spec):
        mlflow.set_tags(extra)
        for seed in seeds:
            for engine in engines:
                with tracker.child(spec, engine, seed, 1) as run_id:
                    records = [SimpleNamespace(epoch=i + 1, train_loss=0.1, epoch_time_s=t, test_metric=accuracy,
                                               test_loss=None, eval_time_s=None)
                               for i, t in enumerate(epochs(rng, scale))]
                    tracker.log_epochs(run_id, SimpleNamespace(metric="accuracy", epochs=records))
                    mlflow.log_metrics({"test/accuracy": accuracy})
                    mlflow.set_tags({**extra, "harness.busy": str((engine, seed) in busy).lower()})
    return bench_id


def perf(uri: str, commit: str, rng: np.random.Generator, scale: float = 1.0, tags: dict | None = None,
         repeats: int = 5) -> str:
    """A perf run at `commit` with two rates (samples/s) of five repeats each, and perf's own busy figure;
    its run id."""
    tracking.connect(uri)
    metrics = {}
    for key, rate in (("train_sps.scratch.b64", 100_000.0 * scale), ("train_sps.torch.b64.t1", 80_000.0)):
        values = tuple(float(v) for v in rate * np.exp(rng.normal(0, SPREAD, repeats)))
        metrics.update({key: float(np.median(values)), key + ".repeats": values})
    metrics["busy.others_share.repeats"] = (0.01,) * repeats
    return tracking.log_perf(metrics, {"repeats": str(repeats)}, uri, {"git.commit": commit, **(tags or {})})


@pytest.fixture(scope="session", name="template")
def template_store(tmp_path_factory):
    """An empty store, its schema made once (MLflow's migrations take seconds); each test copies it."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    tracking.quiet()
    tracking.connect(f"sqlite:///{db}")
    return db


@pytest.fixture(name="uri")
def fresh_store(template, tmp_path):
    """A fresh store of this test's own."""
    shutil.copy(template, tmp_path / "mlflow.db")
    return tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
