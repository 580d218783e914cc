"""rnn in ONNX: the RNN node, one gate, activations ["Tanh"] or ["Relu"] (the layer's own)."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import recurrent


def _attributes(layer: LayerSpec) -> dict[str, Any]:
    return {"activations": [layer.get("activation").capitalize()]}  # Tanh or Relu


def _settings(a: dict[str, Any]) -> dict[str, Any]:
    acts = tuple(recurrent.lower(v) for v in a.get("activations", []))
    if acts not in ((), ("tanh",), ("relu",)):
        raise Refused(f"activations {list(acts)}; an RNN layer takes tanh or relu")
    return {"activation": acts[0] if acts else "tanh"}


CELL = recurrent.Cell("rnn", "RNN", (0,), _attributes, _settings)


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return recurrent.write(CELL, g, i, layer, x)


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    return recurrent.read(CELL, node, a, chain)


READERS = {CELL.op: read}
