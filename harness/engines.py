"""The contract both engines implement, the registry that names them, and their shared setup.

An engine is built from `(NetworkSpec, TrainingSpec, initial parameters, seed)`; the dtype,
loss and optimizer come from the training spec. The runner and the tests hold engines
only through this contract and never ask which one they have.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness.batches import epoch_batches
from harness.catalog import ENGINE_NAMES
from harness.errors import SpecError, unknown_name
from harness.spec import NetworkSpec, TrainingSpec

__all__ = ["ENGINE_NAMES", "Engine", "engine_class", "epoch_batches", "pin_threads"]


class Engine(Protocol):
    name: str

    def __init__(self, network: NetworkSpec, training: TrainingSpec, params: dict[str, np.ndarray],
                 seed: int = 0) -> None:
        """`seed`: the run's; a layer drawing random masks (dropout) draws them from it, its index
        and its step, the same on both engines."""

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_indices: Iterable[np.ndarray]) -> float:
        """Train on the batches (index arrays into x, y) in order; the sample-weighted mean loss."""

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The loss on (x, y) and each parameter's gradient, without updating anything."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output activations."""

    def evaluate(self, x: np.ndarray, y: np.ndarray, metric: str) -> dict[str, float]:
        """`{metric: value, "loss": value}` on (x, y)."""

    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter: `{"layers.i.weight": (out, in), "layers.i.bias": (out,)}`."""

    def state(self) -> dict[str, np.ndarray]:
        """A copy of every non-trained buffer (running statistics), by torch's names; empty for most networks."""

    def export_onnx(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        """Save the trained network as ONNX (opset 21, IR 10), `metadata` in its metadata_props."""

    @staticmethod
    def set_threads(n: int) -> dict[str, int]:
        """Pin the engine's own thread pool; what it was set to."""

    @staticmethod
    def versions() -> dict[str, str]:
        """Versions of the libraries the engine runs on."""


def engine_class(name: str) -> type[Engine]:
    try:
        module, _, cls = ENGINE_NAMES[name].partition(":")
    except KeyError:
        raise SpecError(unknown_name("engine", name, ENGINE_NAMES)) from None
    return getattr(importlib.import_module(module), cls)


def pin_threads(n: int, engines: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """Pin NumPy's BLAS (threadpoolctl) and each named engine's pool to `n` threads: the BLAS limiter,
    which the caller keeps for as long as the limit should hold (its `restore_original_limits()`
    undoes it), and what was set."""
    from threadpoolctl import threadpool_info, threadpool_limits

    limit = threadpool_limits(limits=n)
    info: dict[str, Any] = {"requested": n}  # thread counts only: the libraries' versions are in the machine record
    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if blas:
        info["numpy_blas"] = blas[0].get("num_threads")
    for name in engines:
        info.update(engine_class(name).set_threads(n))
    return limit, info
