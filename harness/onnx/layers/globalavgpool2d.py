"""globalavgpool2d in ONNX: GlobalAveragePool then Flatten (axis 1). Read from GlobalAveragePool, or a
ReduceMean over height and width (torch's dynamo exporter), each followed by what flattens its
[batch, C, 1, 1] to [batch, C] (Flatten, a flattening Reshape, or a Squeeze of axes 2 and 3);
a ReduceMean that drops the axes itself (keepdims = 0) needs none. A ReduceMean of a sequence is
seqpool's mean (seqpool.read_mean)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import flatten, seqpool

SPATIAL = {2, 3}  # height and width of [batch, channels, height, width]


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    pooled = g.node("GlobalAveragePool", [x], f"layers.{i}.pool", f"layers.{i}.pool")
    return g.node("Flatten", [pooled], f"layers.{i}.z", f"layers.{i}", axis=1)


def read_global(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    return Layer("globalavgpool2d", {}, {}, tail=flattened)


def read_mean(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    axes = a.get("axes") if "axes" in a else (chain.const(node, 1) if len(node.input) > 1 and node.input[1] else None)
    if len(chain.shape or ()) == 2:  # a sequence's mean over its steps
        return seqpool.read_mean(node, a, chain, None if axes is None else [int(v) for v in np.reshape(axes, -1)])
    spatial = None if axes is None else {int(v) % 4 for v in np.reshape(axes, -1)}
    if len(chain.shape or ()) != 3 or spatial != SPATIAL:
        raise Refused(f"a ReduceMean over axes {None if axes is None else np.reshape(axes, -1).tolist()} of "
                      f"[batch, {', '.join(map(str, chain.shape or ()))}]: only the mean of an image over its "
                      "height and width (axes 2 and 3) is supported")
    return Layer("globalavgpool2d", {}, {}, tail=flattened if a.get("keepdims", 1) else None)


def flattened(node: Any, a: dict[str, Any], chain: Chain) -> None:
    """Refuses `node` unless it flattens the pool's [batch, C, 1, 1] to [batch, C]."""
    op = node.op_type
    if op == "Flatten" and a.get("axis", 1) in (1, -3):
        return
    if op == "Squeeze" and {v % 4 for v in chain.axes_of(node, a) or ()} == SPATIAL:
        return
    if op == "Reshape" and isinstance(flatten.read_reshape(node, a, chain), Layer):
        return
    raise Refused(f"it reads the global average pool's [batch, {chain.shape[0]}, 1, 1] unflattened; only a "
                  "Flatten (axis 1), a Reshape to [batch, channels] or a Squeeze of axes 2 and 3 may follow it")


READERS = {"GlobalAveragePool": read_global, "ReduceMean": read_mean}
