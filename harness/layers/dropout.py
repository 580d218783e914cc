"""The dropout kind: while training, each value zeroed with probability p and the rest scaled by
1 / (1 - p); the identity when evaluating. `mask` is the one generator of its masks, which every
engine calls, so that engines trained from the same seed drop the same values at every step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from harness.layers.base import Key, Kind

if TYPE_CHECKING:
    import numpy as np


class Dropout(Kind):
    """torch.nn.Dropout over any input (flat, sequence, image): no parameters, no state, the
    output of the input's shape. Its masks come from `mask`, not from an engine's own random
    numbers; `inference_identity`: at inference it is no layer, and an ONNX file holds nothing of it."""

    name = "dropout"
    keys = {"p": Key("float", 0.5, minimum=0, maximum=1, bounds="[)")}
    inference_identity = True

    @classmethod
    def out_shape(cls, s, in_shape):
        return tuple(in_shape)

    @classmethod
    def flops(cls, s, in_shape):
        return math.prod(in_shape)  # a multiply per value by its mask

    @classmethod
    def time_axis(cls, s):
        return "each"


def mask(seed: int, index: int, step: int, shape: tuple[int, ...], p: float) -> np.ndarray:
    """The mask of the dropout layer at `index` (its position in `spec.all_layers`) at its training
    step `step` (counting its training forwards from 0) in a run of `seed`: float64 of `shape`
    (the batch's, batch included), 0 where a value is dropped (probability p) and 1 / (1 - p)
    elsewhere. A Philox stream keyed by (seed, index, step) alone: the same on every engine and
    machine, and independent of any other random numbers the run draws."""
    import numpy as np

    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, index, step])))
    keep = rng.random(shape) >= p
    return keep * (1 / (1 - p))
