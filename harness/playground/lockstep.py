"""Both engines on one 2-D experiment, trained epoch by epoch in lockstep, and what the page draws.

A `Lab` is what `harness run` does for one engine, done for both at once: the inputs come
from `harness.run.prepare.prepare` (the same data, initial parameters and batch order as a run of
that seed), each epoch trains scratch and then torch on the same batches and evaluates both on
the test set, so epoch n of a lab is epoch n of `harness run` on its experiment file. On top it
predicts over a grid of the plane (the heat maps), compares the engines, and reads each hidden
unit's response (the thumbnails) and the weights of the diagram's links from the scratch engine.

An engine whose training loss becomes NaN or infinite is stopped alone: it keeps its last good
state (the tensors before that epoch, in an engine of its kind rebuilt from them), so its panel
still shows a boundary and an epoch, with the reason; the engines are no longer compared.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data import plane
from harness.engines import engine_class, pin_threads
from harness.metrics import get as get_metric
from harness.playground.settings import ENGINES, task
from harness.run.prepare import prepare, threads_for
from harness.run.runner import TrainingDiverged
from harness.scratch.network import Network
from harness.spec import ExperimentSpec

GRID = 50  # cells per side of a heat map
THUMB = 16  # cells per side of a hidden unit's or a feature's thumbnail
SPEED_WINDOW_S = 1.0  # steps/s over about the last second of training


def diverged_message(diverged: dict[str, TrainingDiverged]) -> str:
    """One line for the engines that diverged: which, at which epoch, to what."""
    parts = {(d.epoch, str(d.loss)) for d in diverged.values()}
    if len(diverged) == len(ENGINES) and len(parts) == 1:
        epoch, loss = parts.pop()
        return f"training loss became {loss} at epoch {epoch} on both engines; lower the learning rate"
    each = "; ".join(f"on {name} it became {d.loss} at epoch {d.epoch}" for name, d in diverged.items())
    alone = "" if len(diverged) > 1 else f" ({', '.join(e for e in ENGINES if e not in diverged)} stayed finite)"
    return f"training loss diverged: {each}{alone}; lower the learning rate"


class Stopped(Exception):  # noqa: N818  a signal to the session's worker, not an error
    """The lab was stopped in the middle of an epoch (the server is shutting down): its engines are left
    mid-epoch, never to be used again."""


def until_stopped(batches: list[np.ndarray], stopped: threading.Event) -> Iterator[np.ndarray]:
    """The batches, one by one, as long as `stopped` is not set: an epoch of thousands of batches ends
    within one batch of a shutdown, not after seconds (a worker still inside torch at exit aborts it)."""
    for batch in batches:
        if stopped.is_set():
            raise Stopped
        yield batch


@dataclass(frozen=True)
class EpochPoint:
    """One epoch of both engines, as `harness run` records it: the epoch's mean training loss
    (over its batches) and the test loss and metric after it."""

    epoch: int
    train_loss: dict[str, float]
    test_loss: dict[str, float]
    test_metric: dict[str, float]


def cells(n: int) -> np.ndarray:
    """Centres of n cells across [-RANGE, RANGE]."""
    h = 2 * plane.RANGE / n
    return np.linspace(-plane.RANGE + h / 2, plane.RANGE - h / 2, n)


def plane_points(n: int) -> np.ndarray:
    """(n*n, 2) centres of an n x n grid over the plane, row by row from the top (x2 largest), left to right."""
    c = cells(n)
    x1, x2 = np.meshgrid(c, c[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


def to_bytes(values: np.ndarray, lo: float, hi: float) -> str:
    """Values mapped linearly from [lo, hi] onto 0-255 (clipped; NaN to the middle), as base64."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).ravel(), nan=(lo + hi) / 2)
    u = np.clip((v - lo) / (hi - lo), 0, 1) * 255
    return base64.b64encode(np.rint(u).astype(np.uint8).tobytes()).decode("ascii")


def symmetric(values: np.ndarray) -> str:
    """Values scaled by their largest magnitude onto -1..1, as `to_bytes`: the sign is the colour."""
    m = float(np.max(np.abs(np.nan_to_num(values)))) if values.size else 0.0
    return to_bytes(values, -m, m) if m > 0 else to_bytes(np.zeros(values.shape), -1, 1)


class Lab:
    """Both engines of one experiment (its first seed), at epoch `epoch`."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.seed = spec.bench.seeds[0]
        self.task = task(spec.data.dataset)
        self.limit, _ = pin_threads(threads_for(spec), ENGINES)  # kept as long as the lab
        self.inputs = prepare(spec, self.seed)
        self.metric = get_metric(spec.evaluation.metric)
        self.engines = {name: engine_class(name)(spec.network, spec.training, self.inputs.initial,
                                                 seed=self.inputs.seed)
                        for name in ENGINES}
        self.epoch = 0
        self.history: list[EpochPoint] = []
        self.error: str | None = None
        self.diverged: dict[str, TrainingDiverged] = {}
        self.stopped = threading.Event()  # set by `stop`
        self.shown = dict(self.engines)  # what each panel draws: the engine, or its last good state
        self.last: dict[str, dict[str, Any]] = {name: {"epoch": 0} for name in ENGINES}  # each one's latest figures
        self._speed: dict[str, collections.deque] = {name: collections.deque() for name in ENGINES}
        d, dtype = spec.data, spec.training.dtype
        self.points = plane.split(d.dataset, d.train_size, d.test_size, d.noise, self.seed)  # before features
        self.grid_x = plane.features(plane_points(GRID), d.features).astype(dtype)
        self.thumb_x = plane.features(plane_points(THUMB), d.features).astype(dtype)
        y = self.points[1]
        self.scale = (0.0, 1.0) if self.task == "classification" else (-float(np.max(np.abs(y))) or -1.0,
                                                                       float(np.max(np.abs(y))) or 1.0)

    # -- training

    def step(self) -> EpochPoint:
        """One epoch of each engine on the same batches, then each evaluated on the test set.

        An engine that diverges keeps its state before the epoch; the other finishes the epoch; then
        `TrainingDiverged` (the lab's `error` says which engines): the lab stays at its last common epoch.
        A lab stopped meanwhile raises `Stopped` between two batches."""
        inputs, epoch = self.inputs, self.epoch + 1
        batches = inputs.batches(epoch - 1)
        train, test_loss, test_metric = {}, {}, {}
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss check
            for name, engine in self.engines.items():
                before = {**engine.parameters(), **engine.state()}  # copies; small networks
                t0 = time.perf_counter()
                loss = engine.train_epoch(inputs.x_train, inputs.y_train, until_stopped(batches, self.stopped))
                self._clock(name, len(batches), time.perf_counter() - t0)
                if not math.isfinite(loss):
                    self.diverged[name] = TrainingDiverged(epoch, loss)
                    self.shown[name] = engine_class(name)(self.spec.network, self.spec.training, before)
                    continue
                ev = engine.evaluate(inputs.x_test, inputs.y_test, self.metric.name)
                train[name], test_loss[name], test_metric[name] = loss, ev["loss"], ev[self.metric.name]
                self.last[name] = {"epoch": epoch, "train_loss": loss, "test_loss": ev["loss"],
                                   "test_metric": ev[self.metric.name]}
        if self.diverged:
            self.error = diverged_message(self.diverged)
            raise TrainingDiverged(epoch, next(iter(self.diverged.values())).loss)
        self.epoch = epoch
        point = EpochPoint(epoch, train, test_loss, test_metric)
        self.history.append(point)
        return point

    def stop(self) -> None:
        """End the epoch under way at its next batch (`Stopped`), and refuse further ones: for shutting down."""
        self.stopped.set()

    def _clock(self, name: str, steps: int, seconds: float) -> None:
        window = self._speed[name]
        window.append((steps, seconds))
        while len(window) > 1 and sum(s for _, s in window) - window[0][1] >= SPEED_WINDOW_S:
            window.popleft()

    def steps_per_s(self, name: str) -> float | None:
        steps, seconds = map(sum, zip(*self._speed[name], strict=True)) if self._speed[name] else (0, 0.0)
        return steps / seconds if seconds > 0 else None

    # -- what the page draws

    def setup(self) -> dict[str, Any]:
        """What does not change while the lab trains: the points, the features' thumbnails, the layout."""
        x_train, y_train, x_test, y_test = self.points
        flat = lambda a: [round(float(v), 4) for v in a.ravel()]  # noqa: E731
        d = self.spec.data
        return {
            "task": self.task, "metric": self.metric.name, "range": plane.RANGE, "grid": GRID, "thumb": THUMB,
            "scale": list(self.scale), "seed": self.seed,
            "train": {"x": flat(x_train), "y": flat(y_train)}, "test": {"x": flat(x_test), "y": flat(y_test)},
            "features": [{"name": f, "thumb": symmetric(self.thumb_x[:, i])} for i, f in enumerate(d.features)],
            "hidden": [layer.units for layer in self.spec.network.layers],
            "batches_per_epoch": len(self.inputs.batches(0)),
        }

    def frame(self) -> dict[str, Any]:
        """The state of both engines now (a diverged one's last good state, with the reason): losses,
        metric, speed, heat maps, how far apart they are, the scratch engine's units and weights."""
        grids = {name: engine.predict(self.grid_x) for name, engine in self.shown.items()}
        tests = {name: engine.predict(self.inputs.x_test) for name, engine in self.shown.items()}
        out: dict[str, Any] = {"epoch": self.epoch, "error": self.error, "engines": {}}
        for name in self.engines:
            last, diverged = self.last[name], self.diverged.get(name)
            out["engines"][name] = {
                "epoch": last["epoch"],
                "train_loss": last.get("train_loss"),
                "test_loss": last.get("test_loss"),
                "test_metric": last.get("test_metric"),
                "steps_per_s": self.steps_per_s(name),
                "grid": to_bytes(grids[name], *self.scale),
                "diverged": None if diverged is None else {"epoch": diverged.epoch, "loss": str(diverged.loss)},
            }
        out["compare"] = self.compare(grids, tests)
        params = self.shown["scratch"].parameters()
        out["neurons"] = self.neurons(params)
        out["weights"] = [np.round(params[f"layers.{i}.weight"].astype(np.float64), 4).tolist()
                          for i in range(len(self.spec.network.layers) + 1)]
        return out

    def compare(self, grids: dict[str, np.ndarray], tests: dict[str, np.ndarray]) -> dict[str, Any]:
        """The largest parameter difference between the engines, and the share of decisions they share, at
        `epoch`; all None once an engine diverged (its last states may be blown up far enough for rounding
        to split decisions: no figure rather than a false "the engines differ")."""
        epochs = {self.last[name]["epoch"] for name in ENGINES}
        if self.diverged or len(epochs) > 1:
            return {"max_param_diff": None, "worst_param": None, "agreement_test": None, "agreement_grid": None,
                    "epoch": None}
        ps, pt = (self.shown[name].parameters() for name in ENGINES)
        diffs = {k: float(np.max(np.abs(ps[k].astype(np.float64) - pt[k]))) for k in ps}
        worst = max(diffs, key=diffs.get)
        a, b = ENGINES
        return {"max_param_diff": diffs[worst], "worst_param": worst,
                "agreement_test": self.metric.agreement(tests[a], tests[b]),
                "agreement_grid": self.metric.agreement(grids[a], grids[b]), "epoch": epochs.pop()}

    def neurons(self, params: dict[str, np.ndarray]) -> list[list[str]]:
        """Each hidden unit's activation over the thumbnail grid, layer by layer, from these (the scratch
        engine's) parameters: layer k's units are the outputs of the network cut after layer k."""
        net = self.spec.network
        out = []
        for k, layer in enumerate(net.layers):
            cut = dataclasses.replace(net, layers=net.layers[:k], outputs=layer.units,
                                      output_activation=layer.activation)
            names = {f"layers.{i}.{p}": params[f"layers.{i}.{p}"] for i in range(k + 1) for p in ("weight", "bias")}
            a = Network(cut, names, dtype=self.spec.training.dtype).predict(self.thumb_x)
            out.append([symmetric(a[:, j]) for j in range(layer.units)])
        return out

    def curves(self, start: int) -> dict[str, Any]:
        """The per-epoch curves from epoch `start` + 1 on, per engine: train loss, test loss, test metric."""
        points = self.history[start:]
        return {"from": start, "epochs": [p.epoch for p in points],
                **{name: {"train_loss": [p.train_loss[name] for p in points],
                          "test_loss": [p.test_loss[name] for p in points],
                          "test_metric": [p.test_metric[name] for p in points]} for name in self.engines}}
