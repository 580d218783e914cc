"""2-D datasets of TensorFlow Playground: points in the plane, two classes or a smooth surface.

Points lie in TF Playground's own coordinates, about [-6, 6]² (circle and xor within 5.3,
spiral within 5, the blobs unbounded), generated as its `dataset.ts` does with `noise` on
its 0-50 scale written as 0-0.5. Classes are labels 0.0/1.0 of shape (n, 1) for a sigmoid
output and bce (TF's +1 is 1, its -1 is 0); the surfaces give one float target per point.
A network does not see (x1, x2) itself but the `features` computed from it, TF's input column.

Train and test points come from two streams of one seed, so `points(name, n, noise, seed)`
are exactly the training points a run of that seed and `train_size = n` trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from harness.data.base import Dataset, DatasetInfo, finish
from harness.errors import DataError, unknown_name

RANGE = 6.0  # TF Playground's axes run from -RANGE to RANGE
MAX_NOISE = 0.5  # TF's noise slider, 0 to 50, as 0 to 0.5
MAX_POINTS = 5000  # the most points of a training or a test set
DEFAULT_TRAIN_SIZE = 250
DEFAULT_TEST_SIZE = 250  # TF's 500 points at its 50% training share
OPTIONS = ("test_size", "noise", "features")  # the [data] keys these datasets take beyond the common ones

Generator = Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]

FEATURES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    # name in an experiment file: (label on the page, value from x1 and x2), in TF's order
    "x1": ("X₁", lambda a, b: a),
    "x2": ("X₂", lambda a, b: b),
    "x1^2": ("X₁²", lambda a, b: a * a),
    "x2^2": ("X₂²", lambda a, b: b * b),
    "x1*x2": ("X₁X₂", lambda a, b: a * b),
    "sin(x1)": ("sin(X₁)", lambda a, b: np.sin(a)),
    "sin(x2)": ("sin(X₂)", lambda a, b: np.sin(b)),
}
FEATURE_LABELS: dict[str, str] = {name: label for name, (label, _) in FEATURES.items()}
DEFAULT_FEATURES = ("x1", "x2")


def features(x: np.ndarray, names: Sequence[str] = DEFAULT_FEATURES) -> np.ndarray:
    """The (n, len(names)) inputs a network takes from points x (n, 2), one column per name, in order."""
    for name in names:
        if name not in FEATURES:
            raise DataError(unknown_name("feature", name, FEATURES, key="data.features"))
    x = np.asarray(x, dtype=np.float64)
    return np.stack([FEATURES[name][1](x[:, 0], x[:, 1]) for name in names], axis=1).reshape(len(x), len(names))


# ---------------------------------------------------------------------------- generators


def _halves(n: int) -> tuple[int, int]:
    """(class 1, class 0) counts of n points split evenly, the odd point to class 1."""
    return n - n // 2, n // 2


def _shuffled(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(x))  # classes drawn in blocks, mixed so any prefix holds both
    return x[order], y[order]


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 uniform in radius within 2.5 of the origin, class 0 in the ring 3.5-5; the label
    is that of the point moved by U(-5, 5) * noise on each axis (TF: noise flips labels, not points)."""
    radius = 5.0
    inner, outer = _halves(n)
    r = np.concatenate([rng.uniform(0, radius * 0.5, inner), rng.uniform(radius * 0.7, radius, outer)])
    angle = rng.uniform(0, 2 * math.pi, n)
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    moved = x + rng.uniform(-radius, radius, (n, 2)) * noise
    return _shuffled(rng, x, (np.hypot(moved[:, 0], moved[:, 1]) < radius * 0.5).astype(np.float64))


def _xor_plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform in [-5, 5]², each coordinate pushed 0.3 away from its axis; class 1 where x1 * x2 >= 0
    for the point moved by U(-5, 5) * noise on each axis."""
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)
    moved = x + rng.uniform(-5, 5, (n, 2)) * noise
    return x, (moved[:, 0] * moved[:, 1] >= 0).astype(np.float64)


def _gaussians(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 around (2, 2), class 0 around (-2, -2); the variance grows from 0.5 at noise 0 to 4 at 0.5."""
    variance = 0.5 + (4 - 0.5) * noise / MAX_NOISE
    ones, zeros = _halves(n)
    centres = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [ones, zeros], axis=0)
    x = rng.normal(centres, math.sqrt(variance))
    return _shuffled(rng, x, np.repeat([1.0, 0.0], [ones, zeros]))


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Two arms of 1.75 turns out to radius 5, class 0 the class-1 arm turned by pi; each point
    moved by U(-1, 1) * noise on each axis. TF steps evenly along an arm; here the place on it
    is drawn uniformly, so a test set is not the training set again."""
    ones, zeros = _halves(n)
    u = rng.uniform(0, 1, n)
    turn = np.repeat([0.0, math.pi], [ones, zeros])
    r, t = u * 5, 1.75 * u * 2 * math.pi + turn
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (n, 2)) * noise
    return _shuffled(rng, x, np.repeat([1.0, 0.0], [ones, zeros]))


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform in [-6, 6]²; y = (x1 + x2) / 10 (TF's label scale) at the point moved by U(-6, 6) * noise."""
    x = rng.uniform(-RANGE, RANGE, (n, 2))
    moved = x + rng.uniform(-RANGE, RANGE, (n, 2)) * noise
    return x, moved.sum(axis=1) / 10


GAUSSIANS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]])


def _surface(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """TF's "multi gaussian": six bumps of height +1 or -1 in a 3 x 2 grid, each max(0, 1 - d / 2) at
    distance d; y is the bump of largest magnitude at the point moved by U(-6, 6) * noise."""
    x = rng.uniform(-RANGE, RANGE, (n, 2))
    moved = x + rng.uniform(-RANGE, RANGE, (n, 2)) * noise
    d = np.hypot(moved[:, None, 0] - GAUSSIANS[:, 0], moved[:, None, 1] - GAUSSIANS[:, 1])
    bumps = GAUSSIANS[:, 2] * np.clip(1 - d / 2, 0, 1)
    return x, bumps[np.arange(n), np.abs(bumps).argmax(axis=1)]


CLASSIFICATION: dict[str, Generator] = {"circle": _circle, "xor_plane": _xor_plane, "gaussians": _gaussians,
                                        "spiral": _spiral}
REGRESSION: dict[str, Generator] = {"plane": _plane, "surface": _surface}
GENERATORS: dict[str, Generator] = {**CLASSIFICATION, **REGRESSION}
NAMES: tuple[str, ...] = tuple(GENERATORS)


# ---------------------------------------------------------------------------- points for a page or a run


def _draw(name: str, n: int, noise: float, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in GENERATORS:
        raise DataError(unknown_name("2-D dataset", name, GENERATORS))
    if not 0 <= noise <= MAX_NOISE:
        raise DataError(f"data.noise = {noise!r}: must be from 0 to {MAX_NOISE}")
    if not 0 <= n <= MAX_POINTS:
        raise DataError(f"{n} points of {name!r}: must be from 0 to {MAX_POINTS:,}")
    x, y = GENERATORS[name](np.random.default_rng([seed, 0x2D, stream]), n, float(noise))
    return np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64).reshape(n, 1)


def points(name: str, n: int, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points of dataset `name` as (x (n, 2), y (n, 1)) float64, from `seed`: the training points
    of a run with that seed and train_size = n. y is 0.0/1.0 for a class dataset, a value for a surface."""
    return _draw(name, n, noise, seed, 0)


def split(name: str, train_size: int = DEFAULT_TRAIN_SIZE, test_size: int = DEFAULT_TEST_SIZE,
          noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) points as a run of `seed` draws them, before features;
    the test points come from a stream of their own, so they never change with train_size."""
    return (*_draw(name, train_size, noise, seed, 0), *_draw(name, test_size, noise, seed, 1))


# ---------------------------------------------------------------------------- loading


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """The points of spec.dataset drawn from the run's seed, as the features spec.features names."""
    names = tuple(spec.features or DEFAULT_FEATURES)
    noise = spec.noise or 0.0
    train = spec.train_size or DEFAULT_TRAIN_SIZE
    test = spec.test_size or DEFAULT_TEST_SIZE
    if train > MAX_POINTS:
        raise DataError(f"data.train_size = {train}: dataset {spec.dataset!r} makes at most {MAX_POINTS:,} rows")
    x_train, y_train, x_test, y_test = split(spec.dataset, train, test, noise, seed)
    source = (f"TF Playground {spec.dataset}, {train} + {test} points, noise {noise:g}, seed {seed}; "
              f"features {', '.join(names)}")
    return finish(spec.dataset, source, features(x_train, names), y_train, features(x_test, names), y_test,
                  dtype, spec.validation, seed)


_DESCRIPTIONS = {
    "circle": "2-D: a disc inside a ring (TF Playground)",
    "xor_plane": "2-D: the four quadrants, class by the sign of x1 * x2 (TF Playground)",
    "gaussians": "2-D: two gaussian blobs (TF Playground)",
    "spiral": "2-D: two interleaved spirals (TF Playground)",
    "plane": "2-D regression: y = (x1 + x2) / 10 (TF Playground)",
    "surface": "2-D regression: six gaussian bumps of +-1 (TF Playground's multi gaussian)",
}

INFOS: tuple[DatasetInfo, ...] = tuple(
    DatasetInfo(name, features=len(DEFAULT_FEATURES), outputs=1, loader=load, size=DEFAULT_TRAIN_SIZE,
                metric="accuracy" if name in CLASSIFICATION else "mae", max_train_size=MAX_POINTS,
                options=OPTIONS, description=_DESCRIPTIONS[name])
    for name in NAMES
)
