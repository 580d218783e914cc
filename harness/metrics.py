"""Test metrics, computed in NumPy from predictions, the same function for both engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import SpecError, unknown_name


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of rows classified right: argmax over several outputs, threshold 0.5 on one. With an
    output per time step (n, T, K), a row is right when every step is."""
    if pred.ndim == 3 and pred.shape[2] > 1:
        labels = y.reshape(pred.shape[:2]) if y.dtype.kind in "iu" else y.reshape(pred.shape).argmax(axis=2)
        return float((pred.argmax(axis=2) == labels).all(axis=1).mean())
    if pred.ndim == 2 and pred.shape[1] > 1:
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return float((pred.argmax(axis=1) == labels).mean())
    return float((classes(pred) == (y.reshape(len(y), -1) >= 0.5)).all(axis=1).mean())


def rounded_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose every output, rounded to one decimal, equals the target so rounded."""
    return float((tenths(pred) == tenths(y)).all(axis=1).mean())


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute error over every output of every row."""
    return float(np.abs(pred.reshape(len(pred), -1) - y.reshape(len(y), -1)).mean())


def classes(pred: np.ndarray) -> np.ndarray:
    """The decision behind accuracy: argmax over several outputs, pred >= 0.5 on one."""
    if pred.ndim == 3 and pred.shape[2] > 1:
        return pred.argmax(axis=2)
    if pred.ndim == 2 and pred.shape[1] > 1:
        return pred.argmax(axis=1)[:, None]
    return pred.reshape(len(pred), -1) >= 0.5


def tenths(pred: np.ndarray) -> np.ndarray:
    """The decision behind rounded accuracy: each output rounded to one decimal."""
    return np.rint(pred.reshape(len(pred), -1) * 10)


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    decision: Callable[[np.ndarray], np.ndarray]
    higher_is_better: bool = True

    def __call__(self, pred: np.ndarray, y: np.ndarray) -> float:
        return self.fn(pred, y)

    def agreement(self, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
        """Share of rows on which two models' predictions lead to the same decision."""
        return float((self.decision(pred_a) == self.decision(pred_b)).all(axis=1).mean())

    def reached(self, value: float, target: float) -> bool:
        return value >= target if self.higher_is_better else value <= target


METRICS: dict[str, Metric] = {
    m.name: m for m in (Metric("accuracy", accuracy, classes), Metric("rounded_accuracy", rounded_accuracy, tenths),
                        Metric("mae", mae, tenths, higher_is_better=False))
}


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise SpecError(unknown_name("metric", name, METRICS)) from None
