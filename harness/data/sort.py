"""Sorting: a sequence of tokens in, the same tokens in order out, one class per step.

A sample is `length` tokens drawn uniformly from `vocab` (ids 0 to vocab - 1) from the run's seed;
its target is the sorted sequence, one label per step, so that a network with one softmax output
of `vocab` classes per step learns it with one cross-entropy term per step. The test metric counts
a sequence right only when every step is (`metrics.accuracy`). Training and test samples are
drawn from streams of their own: the test set never changes with train_size.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.data.base import Dataset, DatasetInfo, finish

LENGTH = 8
VOCAB = 10
DEFAULT_TRAIN_SIZE = 4000
DEFAULT_TEST_SIZE = 1000
MAX_LENGTH = 4096
MAX_VOCAB = 1 << 16
MAX_ROWS = 1 << 20  # training or test samples
OPTIONS = ("length", "vocab", "test_size")  # the [data] keys it takes beyond the common ones


def sequences(n: int, length: int, vocab: int, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): n sequences of `length` token ids from `vocab`, and each one sorted; int64 (n, length)."""
    x = np.random.default_rng([seed, 0x5027, stream]).integers(0, vocab, (n, length))
    return x, np.sort(x, axis=1)


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """The training and test sequences of the run's seed: ids in `dtype` (as the network takes its
    input), sorted targets as int64 labels per step."""
    length, vocab = spec.length or LENGTH, spec.vocab or VOCAB
    n, test = spec.train_size or DEFAULT_TRAIN_SIZE, spec.test_size or DEFAULT_TEST_SIZE
    x_train, y_train = sequences(n, length, vocab, seed, 0)
    x_test, y_test = sequences(test, length, vocab, seed, 1)
    return finish("sort", f"{n} + {test} random sequences of {length} tokens from {vocab}, seed {seed}",
                  x_train, y_train, x_test, y_test, dtype, spec.validation, seed)


def shaped(info: DatasetInfo, spec) -> DatasetInfo:
    """The dataset as `spec` sizes it: samples of `length` ids, `vocab` outputs per step."""
    length, vocab = spec.length or LENGTH, spec.vocab or VOCAB
    return dataclasses.replace(info, features=length, outputs=vocab, sample_shape=(length,))


INFO = DatasetInfo("sort", features=LENGTH, outputs=VOCAB, loader=load, size=DEFAULT_TRAIN_SIZE,
                   max_train_size=MAX_ROWS, sample_shape=(LENGTH,), options=OPTIONS, sized=shaped,
                   description=f"sort {LENGTH} tokens of {VOCAB} (data.length, data.vocab): token ids in, "
                               "a class per step out")
