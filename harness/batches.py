"""The order in which training samples are visited, shared by both engines.

The permutation of an epoch depends only on (seed, epoch), so that any engine, in any
process, asked for epoch 7 of seed 2 gets the same batches without replaying epochs 0-6.
"""

from __future__ import annotations

import numpy as np


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[np.ndarray]:
    """Index arrays of one epoch: a permutation of range(n) (identity when not shuffling)
    cut into batches of `batch_size`, the last one shorter when n is not a multiple."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
