"""Everything both engines of a run share, made once: data, targets, initial parameters, threads.

The initial parameters are drawn from the seed, layer by layer (`harness.init`), and
handed to every engine as plain arrays; the data is cast once to the run's dtype and
shaped as the network takes it (flat rows, or the dataset's own sample shape), its
targets to the form the loss takes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from harness import data as datasets
from harness.errors import DataError, SpecError
from harness.init import initial_parameters
from harness.scratch.losses import get as get_loss
from harness.spec import ExperimentSpec


@dataclass(frozen=True)
class RunInputs:
    spec: ExperimentSpec
    seed: int
    data: datasets.Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    initial: dict[str, np.ndarray]

    def batches(self, epoch: int) -> list[np.ndarray]:
        from harness.batches import epoch_batches

        t = self.spec.training
        return epoch_batches(len(self.x_train), t.batch_size, self.seed, epoch, t.shuffle)


def threads_for(spec: ExperimentSpec, override: int | None = None) -> int:
    """The thread count of a run: the command line's, else the spec's; 0 means every core."""
    n = override if override is not None else spec.training.threads
    return n or os.cpu_count() or 1


def check_fits(spec: ExperimentSpec, info: datasets.DatasetInfo, n_train: int | None = None) -> None:
    """Refuse a network whose inputs or outputs do not fit the dataset, or a batch larger than it."""
    net = spec.network
    if len(net.input_shape) == 1 and net.inputs != info.features:
        raise SpecError(f"network.inputs = {net.inputs}, but dataset {info.name!r} has {info.features} features "
                        f"per sample; set network.inputs = {info.features}")
    if len(net.input_shape) > 1 and net.input_shape != info.shape:
        raise SpecError(f"network.input_shape = {list(net.input_shape)}, but dataset {info.name!r} has samples of "
                        f"shape {list(info.shape)}; set network.input_shape = {list(info.shape)} "
                        f"(or [{info.features}] for a flat network)")
    if net.outputs != info.outputs:
        raise SpecError(f"network.outputs = {net.outputs}, but dataset {info.name!r} needs {info.outputs} "
                        f"output{'s' if info.outputs > 1 else ''}; set network.outputs = {info.outputs}")
    if n_train is not None and spec.training.batch_size > n_train:
        raise SpecError(f"training.batch_size = {spec.training.batch_size} is larger than the {n_train} "
                        f"training samples of {info.name!r}")


def _check_finite(d: datasets.Dataset) -> None:
    """Refuse data that holds NaN or infinity: training on it diverges, and the divergence would
    be blamed on the learning rate."""
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = getattr(d, name)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
            raise DataError(f"dataset {d.name!r}: {name} holds NaN or infinity (first at row {row}); clean the data")


def prepare(spec: ExperimentSpec, seed: int) -> RunInputs:
    """Load the data of `spec` for `seed`, check that the network fits it, draw the initial parameters."""
    info = datasets.DATASETS[spec.data.dataset]
    check_fits(spec, info, info.train_rows(spec.data))
    dtype = spec.training.dtype
    d = datasets.load(spec.data, seed=seed, dtype=dtype)
    check_fits(spec, info, len(d.x_train))
    _check_finite(d)
    loss = get_loss(spec.training.loss)
    outputs = spec.network.outputs
    shape = spec.network.input_shape  # the dataset's own shape, or flat: a view either way
    return RunInputs(
        spec=spec, seed=seed, data=d,
        x_train=d.x_train.reshape(len(d.x_train), *shape), y_train=loss.targets(d.y_train, outputs, dtype),
        x_test=d.x_test.reshape(len(d.x_test), *shape), y_test=loss.targets(d.y_test, outputs, dtype),
        initial=initial_parameters(spec.network, seed=seed, dtype=dtype),
    )
