"""seqpool in ONNX: ReduceMean over the time axis (keepdims 0) for the mean; Slice of the first or the
last step along it, then Squeeze of that axis, for first and last. Read from a Slice of one step of a
sequence (completed by the Squeeze, Flatten or Reshape to [batch, features] after it, `Layer.tail`),
and from a ReduceMean over a sequence's time axis, which the ReduceMean reader of globalavgpool2d.py
hands here (`read_mean`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused
from harness.onnx.layers import flatten

TIME = 1  # the time axis of [batch, time, features]
END = np.iinfo(np.int64).max  # a Slice to the end


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    at = f"layers.{i}"
    axes = g.tensor(f"{at}.axes", np.array([TIME], np.int64))
    mode = layer.get("mode")
    if mode == "mean":
        return g.node("ReduceMean", [x, axes], f"{at}.z", at, keepdims=0)
    start, end = (0, 1) if mode == "first" else (-1, END)
    step = g.node("Slice", [x, g.tensor(f"{at}.start", np.array([start], np.int64)),
                            g.tensor(f"{at}.end", np.array([end], np.int64)), axes], f"{at}.step", f"{at}.slice")
    return g.node("Squeeze", [step, axes], f"{at}.z", at)


def read_mean(node: Any, a: dict[str, Any], chain: Chain, axes: list[int] | None) -> Layer:
    if axes is None or [ax % 3 for ax in axes] != [TIME] or len(chain.shape or ()) != 2:
        raise Refused(f"a ReduceMean over axes {axes} of a sequence: only the mean over its time axis (1) is supported")
    return Layer("seqpool", {"mode": "mean"}, {}, tail=None if not a.get("keepdims", 1) else one_step)


def read_slice(node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    if len(chain.shape or ()) != 2:
        raise Refused("only a Slice of one step of a sequence [batch, time, features] is supported")
    steps = chain.shape[0]
    start, end = (_one(chain.const(node, k)) for k in (1, 2))
    axes = chain.const(node, 3).reshape(-1).tolist() if len(node.input) > 3 and node.input[3] else [0]
    unit = len(node.input) <= 4 or not node.input[4] or chain.const(node, 4).reshape(-1).tolist() == [1]
    along_time = [ax % 3 for ax in axes] == [TIME] and unit and None not in (start, end)
    if along_time and start == 0 and end == 1:
        mode = "first"
    elif along_time and (start == -1 or (steps and start == steps - 1)) and (end >= END // 2 or 0 < steps <= end):
        mode = "last"
    else:
        raise Refused(f"a Slice from {start} to {end} along axes {axes}: only the first or the last step of a "
                      "sequence (along axis 1) is supported")
    return Layer("seqpool", {"mode": mode}, {}, tail=one_step)


def _one(value: np.ndarray) -> int | None:
    return int(value.reshape(-1)[0]) if value.size == 1 else None


def one_step(node: Any, a: dict[str, Any], chain: Chain) -> None:
    """Refuses `node` unless it drops the time axis of the one step kept, [batch, 1, features]."""
    op = node.op_type
    if op == "Squeeze" and [ax % 3 for ax in chain.axes_of(node, a) or ()] == [TIME]:
        return
    if op == "Flatten" and a.get("axis", 1) in (1, -2):
        return
    if op == "Reshape" and isinstance(flatten.read_reshape(node, a, chain), Layer):
        return
    raise Refused(f"it reads the one step [batch, 1, {chain.shape[0]}] of a sequence unsqueezed; only a Squeeze of "
                  "axis 1, a Flatten (axis 1) or a Reshape to [batch, features] may follow it")


READERS = {"Slice": read_slice}
