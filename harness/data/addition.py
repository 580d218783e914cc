"""Addition: learn a + b for a, b >= 0 with a + b <= 1, the classic single-perceptron exercise."""

from __future__ import annotations

import numpy as np

from harness.data.base import Dataset, DatasetInfo, finish

DEFAULT_TRAIN_SIZE = 100


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """Training pairs uniform on the triangle a, b >= 0, a + b <= 1, drawn from the run's seed;
    the test set is every pair of the 0.1 grid on that triangle (66 pairs)."""
    n = spec.train_size or DEFAULT_TRAIN_SIZE
    rng = np.random.default_rng([seed, 0xADD])
    ab = rng.uniform(0, 1, (n, 2))
    over = ab.sum(axis=1) > 1
    ab[over] = 1 - ab[over]  # reflecting the far half of the square onto the triangle keeps it uniform
    grid = np.array([(i / 10, j / 10) for i in range(11) for j in range(11 - i)])
    return finish("addition", f"uniform pairs, seed {seed}; 0.1 grid", ab, ab.sum(axis=1, keepdims=True),
                  grid, grid.sum(axis=1, keepdims=True), dtype, spec.validation, seed)


INFO = DatasetInfo("addition", features=2, outputs=1, loader=load, metric="rounded_accuracy", size=DEFAULT_TRAIN_SIZE,
                   max_train_size=10_000_000,
                   description="a + b for pairs with a + b <= 1 (random training pairs, 0.1 test grid)")
