"""concat in ONNX: Concat along the channels of images ([batch, C, H, W]: axis 1) or the last axis
otherwise (axis 1 of flat rows, 2 of sequences [batch, time, features]); read from a Concat of
tensors of the network along that axis."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused


def _axis(shape: tuple[int, ...]) -> int:
    """The axis of the batch-first tensor that concat joins along, for samples of `shape`."""
    return 1 if len(shape) == 3 else len(shape)


def write(g: Any, i: int, layer: LayerSpec, xs: list[str]) -> str:
    return g.node("Concat", xs, f"layers.{i}.z", f"layers.{i}", axis=_axis(g.shapes[i][0]))


def read(node: Any, a: dict[str, Any], chain: Chain, shapes: list[tuple[int, ...]]) -> Layer:
    rank = len(shapes[0]) + 1
    axis = int(a.get("axis", 0))
    if not -rank <= axis < rank or axis % rank != _axis(shapes[0]):
        where = "the channels of images (axis 1)" if rank == 4 else f"the last axis ({rank - 1})"
        raise Refused(f"it joins [batch, {', '.join(map(str, shapes[0]))}] along axis {axis}; only a join along "
                      f"{where} is supported")
    return Layer("concat", {}, {})


MERGERS = {"Concat": read}
