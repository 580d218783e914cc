"""Both engines trained in lockstep from one start, and how far apart they drift, epoch by epoch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from harness.engines import engine_class, pin_threads
from harness.metrics import get as get_metric
from harness.run.prepare import RunInputs

# Default tolerances per dtype: (max |parameter difference|, max relative loss difference, min agreement)
TOLERANCES = {"float64": (1e-6, 1e-6, 1.0), "float32": (1e-2, 1e-3, 0.99)}


@dataclass(frozen=True)
class Divergence:
    epoch: int
    loss_scratch: float
    loss_torch: float
    max_param_diff: float
    worst_param: str
    agreement: float  # share of test samples on which both engines decide alike

    @property
    def loss_rel_diff(self) -> float:
        return abs(self.loss_scratch - self.loss_torch) / max(abs(self.loss_torch), 1e-300)


def lockstep(inputs: RunInputs, epochs: int | None = None, threads: int = 1) -> Iterator[Divergence]:
    """Train scratch and torch on the same batches; after each epoch, yield how far apart they are."""
    spec = inputs.spec
    limit, _ = pin_threads(threads, ("scratch", "torch"))  # kept while the generator runs
    scratch = engine_class("scratch")(spec.network, spec.training, inputs.initial, seed=inputs.seed)
    torch_ = engine_class("torch")(spec.network, spec.training, inputs.initial, seed=inputs.seed)
    metric = get_metric(spec.evaluation.metric)
    for epoch in range(epochs or spec.training.epochs):
        batches = inputs.batches(epoch)
        loss_s = scratch.train_epoch(inputs.x_train, inputs.y_train, batches)
        loss_t = torch_.train_epoch(inputs.x_train, inputs.y_train, batches)
        ps, pt = {**scratch.parameters(), **scratch.state()}, {**torch_.parameters(), **torch_.state()}
        diffs = {k: float(np.max(np.abs(ps[k].astype(np.float64) - pt[k]))) for k in ps}
        worst = max(diffs, key=diffs.get)
        agree = metric.agreement(scratch.predict(inputs.x_test), torch_.predict(inputs.x_test))
        yield Divergence(epoch + 1, loss_s, loss_t, diffs[worst], worst, agree)
