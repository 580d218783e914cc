"""dropout in ONNX: nothing. An ONNX file holds the inference graph, where dropout is the identity
(`Kind.inference_identity`), so the writer hands its input on and reading the file back gives the
network without it; torch.onnx.export of an nn.Dropout in eval mode writes nothing either, with
both exporters. Read from a Dropout node that other producers (or torch's legacy exporter in
training mode) write: in inference mode, the dropout layer of its ratio (0.5 where left out), an
input since opset 12 and an attribute before."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    return x


def read(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    if len(node.input) > 2 and node.input[2] and bool(chain.const(node, 2).reshape(-1)[0]):
        raise Refused("training_mode = true (random masks at inference) is not supported")
    given = len(node.input) > 1 and node.input[1]
    # the shortest decimal of the ratio in its own dtype (0.3, not float32's 0.30000001192092896)
    ratio = float(str(chain.const(node, 1).reshape(-1)[0] if given else np.float32(a.get("ratio", 0.5))))
    if not 0 <= ratio < 1:
        raise Refused(f"its ratio {ratio:g} is outside [0, 1)")
    return Layer("dropout", {"p": ratio}, {})


READERS = {"Dropout": read}
