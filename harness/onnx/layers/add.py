"""add in ONNX: Add of its inputs, a chain of Adds for three or more (ONNX's Add takes two); read
from an Add of two tensors of the network (the walk makes a chain of them one add)."""

from __future__ import annotations

from typing import Any

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer


def write(g: Any, i: int, layer: LayerSpec, xs: list[str]) -> str:
    total = xs[0]
    for j, x in enumerate(xs[1:], 2):
        last = j == len(xs)
        total = g.node("Add", [total, x], f"layers.{i}.z" if last else f"layers.{i}.sum{j}",
                       f"layers.{i}" if last else f"layers.{i}.add{j}")
    return total


def read(node: Any, a: dict[str, Any], chain: Chain, shapes: list[tuple[int, ...]]) -> Layer:
    return Layer("add", {}, {})  # its inputs of one shape (no broadcasting): the kind checks them


MERGERS = {"Add": read}
