"""tokens in ONNX: Transpose [0, 2, 3, 1] of the image, then Reshape to [batch, height·width, channels]
(the same values as torch's flatten then transpose). Read from that Transpose of an image, completed
by the Reshape after it (`Layer.tail`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.folding import BATCH, Symbol
from harness.onnx.interface import Chain, Layer, Refused

CHANNELS_LAST = [0, 2, 3, 1]


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    at = f"layers.{i}"
    c, h, w = g.shapes[i]
    last = g.node("Transpose", [x], f"{at}.channels_last", f"{at}.transpose", perm=CHANNELS_LAST)
    return g.node("Reshape", [last, g.tensor(f"{at}.shape", np.array([0, h * w, c], np.int64))], f"{at}.z", at)


def read_transpose(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    perm = [int(p) for p in a.get("perm", ())]
    if len(chain.shape or ()) != 3 or perm != CHANNELS_LAST:
        raise Refused(f"a Transpose {perm} of [batch, {', '.join(map(str, chain.shape or ()))}]: only an image's "
                      f"pixels as steps ({CHANNELS_LAST}, then a Reshape to [batch, height·width, channels]) "
                      "is supported")
    return Layer("tokens", {}, {}, tail=steps)


def steps(node: Any, a: dict[str, Any], chain: Chain) -> None:
    """Refuses `node` unless it reshapes [batch, H, W, C] to [batch, H·W, C]."""
    hw, c = chain.shape  # the layer's output, the table's shape
    target = list(chain.const(node, 1, symbolic=True).reshape(-1)) if node.op_type == "Reshape" else []
    size = [None if isinstance(t, Symbol) else int(t) for t in target]
    if (len(target) != 3 or not (target[0] is BATCH or size[0] in (0, -1, chain.batch))
            or size[1] not in (hw, -1) or size[2] != c or (size[0] == -1 and size[1] == -1)):
        raise Refused(f"the image's pixels as steps are followed by {node.op_type} {target}; only a Reshape to "
                      f"[batch, {hw}, {c}] may complete them")


READERS = {"Transpose": read_transpose}
