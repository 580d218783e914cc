"""positional in ONNX: Add of the sequence and Slice(weight, 0, time) along the weight's rows (time a
constant, or the input's Shape where the length is open). Read from an Add of a tensor of the network
and a constant that is no bias (`OPERANDS`): of the sequence's own shape, the weight the rows of the
Slice that made it (so that max_len survives), or the constant itself (max_len = time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    at = f"layers.{i}"
    steps = g.shapes[i][0]
    if steps:
        end = g.tensor(f"{at}.steps", np.array([steps], np.int64))
    else:  # an open length: the input's
        end = g.node("Shape", [x], f"{at}.steps", f"{at}.shape", start=1, end=2)
    rows = g.node("Slice", [g.param(f"{at}.weight"), g.tensor(f"{at}.first", np.array([0], np.int64)), end,
                            g.tensor(f"{at}.axes", np.array([0], np.int64))], f"{at}.positions", f"{at}.slice")
    return g.node("Add", [x, rows], f"{at}.z", at)


def read_add(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    name = next(x for x in node.input if x != chain.current)
    value = chain.const(node, list(node.input).index(name))
    shape = tuple(chain.shape or ())
    if len(shape) != 2 or value.shape not in (shape, (1, *shape)):
        raise Refused(f"an Add of a constant of shape {list(value.shape)} to [batch, "
                      f"{', '.join(map(str, shape))}]: only a bias, or one row per step of a sequence (positional), "
                      "is supported")
    value = value.reshape(shape)
    weight = _sliced(chain, name)
    if weight is None or not np.array_equal(weight[:len(value)], value):
        weight = value
    return Layer("positional", {"max_len": int(len(weight))}, {"weight": weight})


def _sliced(chain: Chain, name: str) -> np.ndarray | None:
    """The constant matrix whose first rows the Slice making `name` takes, if one does."""
    made = next((n for n in chain.graph.node if name in n.output), None)
    if made is None or made.op_type != "Slice" or made.input[0] not in chain.consts:
        return None
    starts = chain.const(made, 1).reshape(-1)
    axes = chain.const(made, 3).reshape(-1) if len(made.input) > 3 and made.input[3] else np.array([0])
    weight = chain.consts[made.input[0]]
    ok = weight.dtype != object and weight.ndim == 2 and starts.tolist() == [0] and axes.tolist() in ([0], [-2])
    return weight if ok else None


OPERANDS = {"Add": read_add}
