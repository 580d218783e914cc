"""maxpool2d in ONNX: MaxPool, read back when only its values (not the indices of the maxima) are used."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import window


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("MaxPool", [x], f"layers.{i}.z", f"layers.{i}", **window.attributes(layer))


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    layer = window.read_pool("maxpool2d", node, a, chain)
    if len(node.output) > 1 and node.output[1] in chain.used:
        raise Refused("its second output, the indices of the maxima, is used; only the values are supported")
    return layer


READERS = {"MaxPool": read}
