"""What every dataset provides: arrays, shapes, a digest and where it came from."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import DataError, unknown_name


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    digest: str = field(default="", compare=False)
    extra_tests: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False)
    # more test sets by name (binary addition's longer numbers), each scored like the test set

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out = {k: getattr(self, k).shape for k in ("x_train", "y_train", "x_test", "y_test")}
        if self.x_val is not None:
            out.update(x_val=self.x_val.shape, y_val=self.y_val.shape)
        for name, (x, y) in self.extra_tests.items():
            out.update({f"x_test_{name}": x.shape, f"y_test_{name}": y.shape})
        return out


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's name, the network inputs and outputs it needs, and its loader."""

    name: str
    features: int
    outputs: int
    loader: Callable[..., Dataset]
    description: str = ""
    metric: str = "accuracy"  # the usual test metric, for a model evaluated without its experiment
    size: int | None = None  # training rows before train_size and validation; None: known only once read
    max_train_size: int | None = None  # the most rows a generated dataset makes (None: its own size bounds it)
    sample_shape: tuple[int, ...] | None = None
    # the natural shape of a sample: (channels, height, width) for images, (time, features) for
    # sequences, time 0 where the test sets differ in length
    options: tuple[str, ...] = ()  # the [data] keys it takes beyond dataset, train_size and validation
    sized: Callable[[DatasetInfo, Any], DatasetInfo] | None = None  # its shapes as a DataSpec's keys set them (sort)

    @property
    def shape(self) -> tuple[int, ...]:
        """A sample's natural shape. Image loaders give flat rows in this order; sequence loaders
        give (n, time, features) arrays."""
        return self.sample_shape or (self.features,)

    def for_data(self, spec) -> DatasetInfo:
        """This dataset as a DataSpec makes it: one that takes `features` has as many as the spec lists;
        one that is `sized` by its keys (sort's length and vocab) has their shapes."""
        if "features" in self.options and spec.features is not None:
            return dataclasses.replace(self, features=len(spec.features))
        return self.sized(self, spec) if self.sized is not None else self

    def train_rows(self, spec) -> int | None:
        """How many training rows a DataSpec leaves, without reading the data (None if unknown);
        a train_size the dataset cannot give is refused here, before anything runs."""
        if self.max_train_size is not None and spec.train_size and spec.train_size > self.max_train_size:
            raise DataError(f"data.train_size = {spec.train_size}: dataset {self.name!r} makes at most "
                            f"{self.max_train_size:,} rows")
        n = spec.train_size or self.size
        if n is None or spec.path:
            return None
        return n - validation_rows(n, spec.validation)


def validation_rows(n: int, share: float) -> int:
    return max(1, int(round(n * share))) if share > 0 else 0


def digest(*arrays: np.ndarray) -> str:
    """sha256 over the dtype, shape and bytes of each array, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def finish(name: str, source: str, x_train, y_train, x_test, y_test, dtype: str,
           validation: float = 0.0, seed: int = 0, extra_tests: dict | None = None) -> Dataset:
    """Cast features to `dtype` (C-contiguous), split off a validation share, and add the digest."""
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    labels = lambda y: np.ascontiguousarray(y) if y.dtype.kind in "iu" else cast(y)  # noqa: E731
    x_train, y_train, x_test, y_test = cast(x_train), labels(y_train), cast(x_test), labels(y_test)
    x_val = y_val = None
    if validation > 0:
        n_val = validation_rows(len(x_train), validation)
        if n_val >= len(x_train):
            raise DataError(f"data.validation = {validation} leaves no training rows out of {len(x_train)}")
        order = np.random.default_rng([seed, 0x5EED]).permutation(len(x_train))
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        x_val, y_val = x_train[val], y_train[val]
        x_train, y_train = x_train[train], y_train[train]
    extra = {k: (cast(x), labels(y)) for k, (x, y) in (extra_tests or {}).items()}
    arrays = [x_train, y_train, x_test, y_test] + ([x_val, y_val] if x_val is not None else [])
    arrays += [a for pair in extra.values() for a in pair]
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   source=source, x_val=x_val, y_val=y_val, digest=digest(*arrays), extra_tests=extra)


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """The dataset a `DataSpec` names, for the run's seed and dtype."""
    from harness.data import DATASETS

    try:
        info = DATASETS[spec.dataset]
    except KeyError:
        raise DataError(unknown_name("dataset", spec.dataset, DATASETS, key="data.dataset")) from None
    return info.loader(spec, seed=seed, dtype=dtype)
