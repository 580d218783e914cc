"""layernorm in ONNX: LayerNormalization over the last axis (opset 17), its statistics in the
tensor's own precision (stash_type: float or double). Read from LayerNormalization over the last
axis of flat input or of a sequence.

ONNX keeps epsilon as a float32 attribute: the reader takes the shortest decimal that float32
value stands for (1e-5, not 9.999999747378752e-06), and onnxruntime normalises with the float32
epsilon, a float64 difference far below 1e-12 for the default."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused

STASH = {np.dtype("float32"): 1, np.dtype("float64"): 11}  # ONNX's element types


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    weight = g.tensors[f"layers.{i}.weight"]
    return g.node("LayerNormalization", [x, g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")],
                  f"layers.{i}.z", f"layers.{i}", axis=-1, epsilon=layer.get("eps"),
                  stash_type=STASH.get(weight.dtype, 1))


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    rank = len(chain.shape) + 1
    if len(chain.shape) not in (1, 2):
        raise Refused(f"it normalises an input of shape {list(chain.shape)}; only flat input [features] and "
                      "sequences [time, features] are supported")
    axis = a.get("axis", -1)
    if (axis + rank if axis < 0 else axis) != rank - 1:
        raise Refused(f"axis = {axis}; only the last axis (the features) is supported")
    weight = chain.const(node, 1).reshape(-1)
    bias = chain.const(node, 2).reshape(-1) if len(node.input) > 2 and node.input[2] else None  # none: zeros
    return Layer("layernorm", {"eps": float(str(np.float32(a.get("epsilon", 1e-5))))},
                 {"weight": weight, "bias": bias})


READERS = {"LayerNormalization": read}
