"""Test metrics, computed in NumPy from predictions, the same function for both engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import SpecError, unknown_name


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of rows classified right: argmax over several outputs, threshold 0.5 on one."""
    if pred.ndim == 2 and pred.shape[1] > 1:
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return float((pred.argmax(axis=1) == labels).mean())
    return float(((pred.reshape(len(pred), -1) >= 0.5) == (y.reshape(len(y), -1) >= 0.5)).all(axis=1).mean())


def rounded_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose every output, rounded to one decimal, equals the target so rounded."""
    p = np.rint(pred.reshape(len(pred), -1) * 10)
    t = np.rint(y.reshape(len(y), -1) * 10)
    return float((p == t).all(axis=1).mean())


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute error over every output of every row."""
    return float(np.abs(pred.reshape(len(pred), -1) - y.reshape(len(y), -1)).mean())


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool = True

    def __call__(self, pred: np.ndarray, y: np.ndarray) -> float:
        return self.fn(pred, y)

    def reached(self, value: float, target: float) -> bool:
        return value >= target if self.higher_is_better else value <= target


METRICS: dict[str, Metric] = {
    m.name: m for m in (Metric("accuracy", accuracy), Metric("rounded_accuracy", rounded_accuracy),
                        Metric("mae", mae, higher_is_better=False))
}


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise SpecError(unknown_name("metric", name, METRICS)) from None
