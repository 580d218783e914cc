"""Everything both engines of a run share, made once: data, targets, initial parameters, threads.

The initial parameters are drawn from the seed, layer by layer (`harness.init`), and
handed to every engine as plain arrays; the data is cast once to the run's dtype and
shaped as the network takes it (flat rows, or the dataset's own sample shape), its
targets to the form the loss takes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from harness import data as datasets
from harness.errors import DataError, SpecError
from harness.init import initial_parameters
from harness.layers.embedding import token_ids
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
    extra_tests: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # by name, as x_test/y_test

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
    info = info.for_data(spec.data)
    if spec.data.features is not None and len(net.input_shape) == 1 and net.inputs != info.features:
        raise SpecError(f"network.inputs = {net.inputs}, but data.features lists {info.features} feature"
                        f"{'s' * (info.features > 1)} ({', '.join(spec.data.features)}) for dataset {info.name!r}; "
                        f"set network.inputs = {info.features} or change data.features")
    if len(net.input_shape) == 1 and net.inputs != info.features and 0 not in info.shape:
        raise SpecError(f"network.inputs = {net.inputs}, but dataset {info.name!r} has {info.features} features "
                        f"per sample; set network.inputs = {info.features}")
    if not _fits(net.input_shape, info):
        raise SpecError(f"network.input_shape = {list(net.input_shape)}, but dataset {info.name!r} has samples of "
                        f"shape {list(info.shape)}; set network.input_shape = {list(info.shape)}"
                        + (f" (or [{info.features}] for a flat network, or another shape of "
                           f"{info.features} values, such as [28, 28] for rows as time steps)"
                           if 0 not in info.shape else " (0: any length)"))
    if net.outputs != info.outputs:
        raise SpecError(f"network.outputs = {net.outputs}, but dataset {info.name!r} needs {info.outputs} "
                        f"output{'s' if info.outputs > 1 else ''}; set network.outputs = {info.outputs}")
    if n_train is not None and spec.training.batch_size > n_train:
        raise SpecError(f"training.batch_size = {spec.training.batch_size} is larger than the {n_train} "
                        f"training samples of {info.name!r}")


def _fits(shape: tuple[int, ...], info: datasets.DatasetInfo) -> bool:
    """A network takes a dataset's samples in their own shape (a 0, a time length left open,
    matching any length), or in any shape of as many values (flat; image rows as time steps)."""
    own = info.shape
    if 0 in own or 0 in shape:
        return len(shape) == len(own) and all(m == n or 0 in (m, n) for m, n in zip(shape, own, strict=True))
    return math.prod(shape) == math.prod(own)


def _check_finite(d: datasets.Dataset) -> None:
    """Refuse data that holds NaN or infinity: training on it diverges, and the divergence would
    be blamed on the learning rate."""
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = getattr(d, name)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
            raise DataError(f"dataset {d.name!r}: {name} holds NaN or infinity (first at row {row}); clean the data")


def _check_ids(spec: ExperimentSpec, d: datasets.Dataset) -> None:
    """Refuse inputs that an embedding reading them cannot look up: ids that are not integers
    in [0, vocab), named with the array, sample and step, before any engine sees them."""
    for layer in spec.network.all_layers:
        if layer.kind.takes_ids:
            arrays = {"x_train": d.x_train, "x_test": d.x_test, "x_val": d.x_val,
                      **{f"x_test_{k}": x for k, (x, _) in d.extra_tests.items()}}
            for name, x in arrays.items():
                try:
                    token_ids(x, layer.get("vocab")) if x is not None else None
                except DataError as e:
                    raise DataError(f"dataset {d.name!r}: {name}: {e}") from None


def prepare(spec: ExperimentSpec, seed: int) -> RunInputs:
    """Load the data of `spec` for `seed`, check that the network fits it, draw the initial parameters."""
    info = datasets.DATASETS[spec.data.dataset]
    check_fits(spec, info, info.train_rows(spec.data))
    dtype = spec.training.dtype
    d = datasets.load(spec.data, seed=seed, dtype=dtype)
    check_fits(spec, info, len(d.x_train))
    _check_finite(d)
    _check_ids(spec, d)
    loss = get_loss(spec.training.loss)
    outputs = spec.network.outputs
    shape = [n or -1 for n in spec.network.input_shape]  # the dataset's own shape, or flat: a view either way
    shaped = lambda x: x.reshape(len(x), *shape)  # noqa: E731
    return RunInputs(
        spec=spec, seed=seed, data=d,
        x_train=shaped(d.x_train), y_train=loss.targets(d.y_train, outputs, dtype),
        x_test=shaped(d.x_test), y_test=loss.targets(d.y_test, outputs, dtype),
        extra_tests={k: (shaped(x), loss.targets(y, outputs, dtype)) for k, (x, y) in d.extra_tests.items()},
        initial=initial_parameters(spec.network, seed=seed, dtype=dtype),
    )
