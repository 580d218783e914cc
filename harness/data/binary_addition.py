"""Binary addition, bit by bit: the sequence version of learning to add.

A sample is two n-bit numbers a and b read least significant bit first, one step per bit
(features: the bit of a, the bit of b), plus one step of zeros for the last carry; its
target at each step is that bit of a + b. A recurrent network that learns to carry adds
numbers of any length: it is trained on 8-bit pairs and also tested on 16- and 32-bit ones.
"""

from __future__ import annotations

import numpy as np

from harness.data.base import Dataset, DatasetInfo, finish

BITS = 8
DEFAULT_TRAIN_SIZE = 2000
TEST_SIZE = 1000
LONGER = (16, 32)  # the bit lengths of the generalisation test sets


def bits(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the pairs (a, b): x (len, n + 1, 2) bits of a and b, y (len, n + 1, 1) bits of
    a + b, least significant first; the last step's inputs are zero (the carry out)."""
    shifts = np.arange(n + 1, dtype=np.uint64)
    a, b = a.astype(np.uint64), b.astype(np.uint64)
    x = np.stack([(a[:, None] >> shifts) & 1, (b[:, None] >> shifts) & 1], axis=-1)
    x[:, n] = 0
    y = (((a + b)[:, None] >> shifts) & 1)[..., None]
    return x.astype(np.float64), y.astype(np.float64)


def _numbers(rng: np.random.Generator, n_bits: int, count: int) -> np.ndarray:
    return rng.integers(0, 1 << n_bits, count, dtype=np.uint64, endpoint=False)


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """Training pairs of 8-bit numbers drawn from the seed; test pairs drawn apart from them
    (no pair in both); longer test sets of 16- and 32-bit pairs."""
    n = spec.train_size or DEFAULT_TRAIN_SIZE
    rng = np.random.default_rng([seed, 0xB1A])
    pairs = rng.choice(1 << (2 * BITS), n + TEST_SIZE, replace=False).astype(np.uint64)
    a, b = pairs >> np.uint64(BITS), pairs & np.uint64((1 << BITS) - 1)
    x_train, y_train = bits(a[:n], b[:n], BITS)
    x_test, y_test = bits(a[n:], b[n:], BITS)
    longer = {}
    for n_bits in LONGER:
        longer[f"{n_bits}bit"] = bits(_numbers(rng, n_bits, TEST_SIZE), _numbers(rng, n_bits, TEST_SIZE), n_bits)
    return finish("binary_addition", f"random {BITS}-bit pairs, seed {seed}; held-out pairs; "
                  + ", ".join(f"{k} pairs" for k in longer), x_train, y_train, x_test, y_test, dtype,
                  spec.validation, seed, extra_tests=longer)


INFO = DatasetInfo("binary_addition", features=2, outputs=1, loader=load, size=DEFAULT_TRAIN_SIZE,
                   max_train_size=(1 << (2 * BITS)) - TEST_SIZE, sample_shape=(0, 2),
                   description=f"a + b bit by bit, {BITS}-bit pairs (tests: held-out {BITS}-bit pairs, "
                               + ", ".join(f"{n}-bit pairs" for n in LONGER) + ")")
