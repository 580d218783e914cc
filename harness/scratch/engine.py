"""The scratch engine behind the contract of `harness.engines`: a Network, its loss and optimizer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from harness.metrics import get as get_metric
from harness.scratch import losses
from harness.scratch.network import Network
from harness.spec import NetworkSpec, TrainingSpec


class ScratchEngine:
    name = "scratch"

    def __init__(self, network: NetworkSpec, training: TrainingSpec, params: dict[str, np.ndarray],
                 seed: int = 0) -> None:
        self.net = Network(network, params, seed=seed, dtype=training.dtype)
        self.loss = losses.get(training.loss)
        self.optimizer = self.net.make_optimizer(training.optimizer)
        self.lr_decay = training.lr_decay

    @staticmethod
    def set_threads(n: int) -> dict[str, int]:
        return {}  # NumPy's BLAS threads are pinned by harness.engines.pin_threads

    @staticmethod
    def versions() -> dict[str, str]:
        return {"numpy": np.__version__}

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_indices: Iterable[np.ndarray]) -> float:
        loss = self.net.train_epoch(x, y, batch_indices, self.loss, self.optimizer)
        if self.lr_decay != 1.0:  # as torch's ExponentialLR stepped after each epoch
            self.optimizer.settings["learning_rate"] *= self.lr_decay
        return loss

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        self.net.forward(x)  # in training mode, as torch's engine computes them
        value = self.net.backward(y, self.loss)
        return value, self.net.gradients()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net.predict(x)

    def evaluate(self, x: np.ndarray, y: np.ndarray, metric: str) -> dict[str, float]:
        pred = self.net.predict(x)
        rows = pred.reshape(-1, pred.shape[-1])  # an output per time step: the loss is over every step's row
        per_row = y if len(y) == len(rows) else y.reshape(len(rows), *([] if y.dtype.kind in "iu" else [-1]))
        return {metric: get_metric(metric)(pred, y), "loss": self.loss.value(rows, per_row)}

    def parameters(self) -> dict[str, np.ndarray]:
        return self.net.parameters()

    def state(self) -> dict[str, np.ndarray]:
        return self.net.state()

    def export_onnx(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        from harness import onnx

        return onnx.export(self.net.spec, self.net.state_dict(), self.net.dtype, path, metadata)
