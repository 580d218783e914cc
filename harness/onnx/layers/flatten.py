"""flatten in ONNX: Flatten (axis 1); read from Flatten, or a Reshape that flattens each sample (to
[batch, -1], [-1, features], [0, -1], or the file's fixed batch), its target evaluated with the
batch size as a symbol. A Reshape of more axes is no layer (harness/onnx/reshape.py)."""

from __future__ import annotations

import math
from typing import Any

from harness.layers import LayerSpec
from harness.onnx import reshape
from harness.onnx.folding import BATCH, Symbol
from harness.onnx.interface import Chain, Layer, Refused, Reshaped


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("Flatten", [x], f"layers.{i}.z", f"layers.{i}", axis=1)


def read_flatten(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    axis = a.get("axis", 1)
    if (axis + len(chain.shape) + 1 if axis < 0 else axis) != 1:
        raise Refused(f"axis = {axis}; only axis 1 (each sample flattened) is supported")
    return Layer("flatten", {}, {})


def read_reshape(node: Any, a: dict[str, Any], chain: Chain) -> Layer | Reshaped:
    shape = reshape.sample_shape(node, a, chain, first=not chain.layers)
    if shape is not None:
        return Reshaped(shape)
    target = [v if isinstance(v, Symbol) else int(v) for v in chain.const(node, 1, symbolic=True).reshape(-1)]
    features = math.prod(chain.shape)
    first, last = (target + [None, None])[:2]
    batch_ok = (first is BATCH or (first == 0 and not a.get("allowzero", 0)) or first == chain.batch
                or (first == -1 and last == features))
    if len(target) != 2 or not batch_ok or not (last == features or (last == -1 and first != -1)):
        raise Refused(f"a Reshape of [batch, {', '.join(map(str, chain.shape))}] to {target} is not a flatten of "
                      f"each sample (to [batch, {features}]), the only Reshape supported")
    return Layer("flatten", {}, {})


READERS = {"Flatten": read_flatten, "Reshape": read_reshape}
