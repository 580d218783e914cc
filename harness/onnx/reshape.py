"""A Reshape that is no layer: one that keeps each sample's shape, or one in front of the first layer
that gives the input the shape that layer reads.

torch users write `x.reshape(-1, 28, 28)` in front of an LSTM whether or not the data already has
that shape, and torch's legacy exporter keeps it. Kept, it changes nothing; in front of the first
layer, a Reshape that splits or merges the time and feature axes (flat rows of 784 into 28 steps of
28, or 28 x 28 into 14 x 56) reads the same values in the shape the network takes, so the network's
`input_shape` becomes the Reshape's. The flatten kind's reader of Reshape asks here first
(layers/flatten.py): a Reshape to [batch, features] is its flatten layer; any other, after a
layer, is refused naming both shapes.
"""

from __future__ import annotations

import math
from typing import Any

from harness.onnx.folding import BATCH, TIME, Symbol
from harness.onnx.interface import Chain, Refused


def sample_shape(node: Any, a: dict[str, Any], chain: Chain, first: bool) -> tuple[int, ...] | None:
    """The per-sample shape after this Reshape, where it is no layer (`first`: no layer before it),
    or None where it is a flatten (a target of two entries, left to the flatten reader)."""
    target = [t if isinstance(t, Symbol) else int(t) for t in chain.const(node, 1, symbolic=True).reshape(-1)]
    if len(target) <= 2 or chain.shape is None:
        return None
    dims = list(chain.dims[chain.current])
    if not a.get("allowzero", 0):  # 0 copies the input's size at that place
        target = [dims[i] if _int(t) == 0 and i < len(dims) else t for i, t in enumerate(target)]
    have = chain.shape
    sample = target[1:]
    if not (target[0] is BATCH or (chain.batch is not None and _int(target[0]) == chain.batch)
            or (_int(target[0]) == -1 and all(_int(t) and _int(t) > 0 for t in sample))):
        raise Refused(_words(have, target, "its first axis is not the batch"))
    known = math.prod(have) if all(have) else None  # an open time (0) leaves it unknown
    rest = [t for t in sample if _int(t) != -1]
    if len(rest) == len(sample) - 1:  # one -1: what the other sizes leave of the sample
        if known is None or any(isinstance(t, Symbol) for t in rest) or known % math.prod(rest):
            raise Refused(_words(have, target, "its -1 cannot be told from the input"))
        sample = [known // math.prod(rest) if _int(t) == -1 else t for t in sample]
    if any(isinstance(t, Symbol) and t is not TIME for t in sample) or not all(
            t is TIME or (_int(t) and _int(t) > 0) for t in sample):
        raise Refused(_words(have, target, "its sizes are not the sample's"))
    new = tuple(0 if t is TIME else int(t) for t in sample)
    if new == tuple(have):
        return new  # the shape it already has
    if not first:
        raise Refused(_words(have, target, "after a layer only a Reshape that keeps each sample's shape or "
                                           "flattens it is supported"))
    if known is not None and 0 not in new and math.prod(new) != known:
        raise Refused(_words(have, target, f"it holds {math.prod(new):,} values a sample, the input {known:,}"))
    return new


def _int(v: Any) -> int | None:
    return None if isinstance(v, Symbol) else int(v)


def _words(have: tuple[int, ...], target: list[Any], why: str) -> str:
    sizes = ", ".join("time" if d == 0 else str(d) for d in have)
    return f"a Reshape of [batch, {sizes}] to {target}: {why}"
