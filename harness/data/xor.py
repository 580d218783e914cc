"""XOR: the four-row truth table, the smallest problem no linear model solves."""

from __future__ import annotations

import numpy as np

from harness.data.base import Dataset, DatasetInfo, finish


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """Train and test are the same four rows: XOR has nothing more to generalise to."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])
    return finish("xor", "truth table", x, y, x, y, dtype)


INFO = DatasetInfo("xor", features=2, outputs=1, loader=load, size=4, description="the XOR truth table (4 rows)")
