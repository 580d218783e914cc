"""embedding in ONNX: Gather(weight, ids) along the weight's rows, the ids the graph's int64 input
(export.py makes the input int64 where an embedding reads it). Read from a Gather of a constant
matrix by the network's input, along axis 0."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("Gather", [g.param(f"layers.{i}.weight"), x], f"layers.{i}.z", f"layers.{i}", axis=0)


def read_gather(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    if chain.owner is not None or node.input[1] != chain.current:
        raise Refused("only a Gather of a constant matrix's rows by the graph's input (an embedding's ids) is "
                      "supported")
    w = chain.const(node, 0)
    if w.ndim != 2 or int(a.get("axis", 0)) != 0:
        raise Refused(f"a Gather along axis {a.get('axis', 0)} of a constant of shape {list(w.shape)}; an embedding "
                      "gathers rows (axis 0) of a matrix")
    return Layer("embedding", {"vocab": int(w.shape[0]), "dim": int(w.shape[1])}, {"weight": w})


READERS = {"Gather": read_gather}
