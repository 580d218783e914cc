"""gru in ONNX: the GRU node, gates z, r, h (torch's r, z, n), with linear_before_reset = 1 (torch
applies the reset gate to W_hn h + b_hn)."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import recurrent

ACTIVATIONS = ("sigmoid", "tanh")  # torch's, ONNX's defaults


def _settings(a: dict[str, Any]) -> dict[str, Any]:
    if a.get("linear_before_reset", 0) != 1:
        raise Refused("linear_before_reset = 0 applies the reset gate before the product, (r ⊙ h) W_hn; torch's "
                      "GRU (and the harness's) applies it after, r ⊙ (W_hn h + b_hn): a different function")
    acts = tuple(recurrent.lower(v) for v in a.get("activations", []))
    if acts not in ((), ACTIVATIONS):
        raise Refused(f"activations {list(acts)}; only torch's {list(ACTIVATIONS)} are supported")
    return {}


CELL = recurrent.Cell("gru", "GRU", (1, 0, 2), lambda layer: {"linear_before_reset": 1}, _settings)


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return recurrent.write(CELL, g, i, layer, x)


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    return recurrent.read(CELL, node, a, chain)


READERS = {CELL.op: read}
