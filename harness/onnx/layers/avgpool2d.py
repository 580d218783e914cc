"""avgpool2d in ONNX: AveragePool counting the padding in the mean (torch's default, not ONNX's)."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import window


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    # padding counts as zeros in the mean, as in torch.nn.AvgPool2d (ONNX's default is 0)
    return g.node("AveragePool", [x], f"layers.{i}.z", f"layers.{i}", **window.attributes(layer), count_include_pad=1)


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    layer = window.read_pool("avgpool2d", node, a, chain)
    if not a.get("count_include_pad", 0) and any(layer.settings["padding"]):
        raise Refused("count_include_pad = 0 with pads (a mean over the pixels inside the image only) is a "
                      "different function from torch's AvgPool2d, which counts the padding")
    return layer


READERS = {"AveragePool": read}
