"""conv2d in ONNX: Conv (weight (filters, channels, kh, kw), bias a per-filter vector), read back
with its bias from the node or from an Add after it along the channel axis."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import window


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("Conv", [x, g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")], f"layers.{i}.z",
                  f"layers.{i}", **window.attributes(layer), dilations=[1, 1], group=1)


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    w = chain.const(node, 1)
    if w.ndim != 4:
        raise Refused(f"a {w.ndim - 2}-D convolution (weight {list(w.shape)}); only 2-D ones, over images, are "
                      "supported")
    if a.get("group", 1) != 1:
        raise Refused(f"group = {a['group']} (a grouped convolution) is not supported")
    stride, padding = window.read(a, "convolution")
    kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
    if kernel != w.shape[2:]:
        raise Refused(f"kernel_shape {list(kernel)} does not match its weight {list(w.shape)}")
    b = chain.const(node, 2) if len(node.input) > 2 and node.input[2] else None
    return Layer("conv2d", {"filters": int(w.shape[0]), "kernel": kernel, "stride": stride, "padding": padding},
                 {"weight": w, "bias": b}, channel_axis=0)


READERS = {"Conv": read}
