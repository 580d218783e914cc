"""The 2-D window of conv2d and the pools in ONNX: kernel_shape, strides and pads, both ways."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused, text


def attributes(layer: LayerSpec) -> dict[str, list[int]]:
    """kernel_shape, strides and pads as ONNX writes them: pads [top, left, bottom, right]."""
    ph, pw = layer.get("padding")
    return {"kernel_shape": list(layer.get("kernel")), "strides": list(layer.get("stride")),
            "pads": [ph, pw, ph, pw]}


def read(a: dict[str, Any], what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, padding) of a 2-D window op, refusing what torch's layers cannot express."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Refused(f"auto_pad = {text(a['auto_pad'])}; only explicit pads (NOTSET) are supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise Refused(f"dilations {list(a['dilations'])} are not supported (a {what} here is never dilated)")
    stride, pads = tuple(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))
    if len(stride) != 2 or len(pads) != 4:
        raise Refused(f"strides {list(stride)} and pads {pads} are not those of a 2-D {what}")
    if pads[:2] != pads[2:]:
        raise Refused(f"asymmetric pads {pads} (top, left, bottom, right) are not supported; torch pads both "
                      "sides alike")
    return stride, tuple(pads[:2])  # type: ignore[return-value]


def read_pool(kind: str, node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    """A 2-D pool node as a layer of `kind` (what only one kind refuses, its module checks)."""
    kernel = tuple(a.get("kernel_shape", ()))
    if len(kernel) != 2:
        raise Refused(f"kernel_shape {list(kernel)}: only 2-D pools, over images, are supported")
    if a.get("ceil_mode", 0):
        raise Refused("ceil_mode = 1 (partial windows past the edge) is not supported")
    stride, padding = read(a, "pool")
    return Layer(kind, {"kernel": kernel, "stride": stride, "padding": padding}, {})
