"""lstm in ONNX: the LSTM node, gates i, o, f, c (torch's i, f, g, o), torch's activations; read
back with its initial states and peepholes absent or zero and its cell state Y_c unused."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import recurrent

ACTIVATIONS = ("sigmoid", "tanh", "tanh")  # torch's, ONNX's defaults


def _settings(a: dict[str, Any]) -> dict[str, Any]:
    acts = tuple(recurrent.lower(v) for v in a.get("activations", []))
    if acts not in ((), ACTIVATIONS):
        raise Refused(f"activations {list(acts)}; only torch's {list(ACTIVATIONS)} are supported")
    return {}


CELL = recurrent.Cell("lstm", "LSTM", (0, 3, 1, 2), lambda layer: {}, _settings,
                      states=((5, "initial_h"), (6, "initial_c"), (7, "peephole weights P")), cell_state=True)


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return recurrent.write(CELL, g, i, layer, x)


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    return recurrent.read(CELL, node, a, chain)


READERS = {CELL.op: read}
