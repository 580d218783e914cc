"""What a layer's ONNX reader gets from the graph walk and gives back.

A reader is `read(node, attrs, chain) -> Layer` (or `Reshaped`): the node, its attributes as plain values, and
the walk seen through `Chain` (the constants, the current tensor, its shape and the layer that made it);
a node that merges several layers' outputs (`MergeReader`) gets their shapes too. It
raises `Refused` for a node it does not take; the walk prefixes the node's name, and reading
the file prefixes the file's. A tensor whose axes are not batch first (around a recurrent
node) carries labels: batch N, time T, direction D, features F.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.layers import IDENTITY, KINDS, ActivationSpec, LayerSpec

AXIS_WORDS = {"N": "batch", "T": "time", "D": "direction", "F": "features"}


class Refused(Exception):
    """A node the reader does not take; reading the file prefixes its name."""


@dataclass
class Layer:
    """A layer read off the graph: its kind, settings, tensors (a bias of None may still come
    from an Add), the node that made it, and its activation once one follows. `channel_axis` is
    the axis of its output (per sample) that a bias Add after it runs along; a recurrent node also
    says which of its outputs the chain goes on from, and that tensor's axes; a layer whose node
leaves its output in another shape than the table's says how the next node must reshape it. The
walk fills in `sources`: the indices of the layers whose outputs it takes (-1: the input)."""

    type: str
    settings: dict[str, Any]
    params: dict[str, np.ndarray | None]
    node: str = ""
    activation: ActivationSpec | None = None
    output: str = ""  # the node's output the chain goes on from, when not its first
    labels: tuple[str, ...] | None = None  # that output's axes, when not batch first
    channel_axis: int = -1
    # the check of the next node on the chain where it is part of this layer (a reshape that brings
    # the node's output to the table's shape: GlobalAveragePool's [N, C, 1, 1] to [N, C]); raises Refused
    tail: Callable[[Any, dict[str, Any], Chain], None] | None = None
    sources: tuple[int, ...] = ()

    def spec(self) -> LayerSpec:
        keys = KINDS[self.type].keys
        return LayerSpec(self.type, tuple((k, self.settings[k]) for k in keys), self.activation or IDENTITY)


@dataclass(frozen=True)
class Reshaped:
    """What a reader gives back for a node that is no layer but a new shape of the samples (a
    Reshape, reshape.py): the chain goes on in `shape`, and in front of every layer so does the
    network's input."""

    shape: tuple[int, ...]


class Chain(Protocol):
    """The walk as a reader sees it."""

    graph: Any  # the ONNX GraphProto
    consts: dict[str, np.ndarray]  # constant tensors by name (a 0-d object array: see folding.Filled)
    dims: dict[str, list[Any]]  # each data tensor's full shape, with the batch and time symbols
    layers: list[Layer]  # the layers read so far
    owner: Layer | None  # the layer whose output the current tensor is (None: the network's input)
    fresh: bool  # the current tensor is its owner's output, before any activation
    shape: tuple[int, ...] | None  # the current tensor's shape per sample, as if batch first
    labels: tuple[str, ...] | None  # the current tensor's axes when not batch first
    batch: int | None  # the file's fixed batch size, if any
    current: str  # the chain's current tensor
    used: set[str]  # every tensor some node or the graph's output reads
    outputs: set[str]  # the graph's outputs

    def const(self, node: Any, i: int, symbolic: bool = False) -> np.ndarray: ...

    def axes(self) -> tuple[str, ...]: ...

    def axes_of(self, node: Any, a: dict[str, Any]) -> tuple[int, ...] | None: ...


Reader = Callable[[Any, dict[str, Any], Chain], Layer | Reshaped]
# a reader of a node that merges several layers' outputs: (node, attrs, chain, their shapes per sample)
MergeReader = Callable[[Any, dict[str, Any], Chain, list[tuple[int, ...]]], Layer]
# (graph, layer index, layer, input: one tensor's name, a list of them for a kind that merges) -> output
Writer = Callable[[Any, int, LayerSpec, Any], str]


@dataclass(frozen=True)
class Layout:
    """The ops that carry a tensor whose axes are not batch first around a layer: `follow(node,
    op, attrs, chain)` gives the axes of the op's output (None: not such an op), `refusal(node,
    chain)` the message for any other node that reads such a tensor."""

    follow: Callable[[Any, str, dict[str, Any], Chain], tuple[str, ...] | None]
    refusal: Callable[[Any, Chain], str]
    readers: frozenset[str]  # the ops whose readers take such a tensor


def attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def describe(node: Any) -> str:
    return f"{node.name or node.output[0]!r} (op {node.op_type})"


def axes_text(labels: tuple[str, ...]) -> str:
    return "[" + ", ".join(AXIS_WORDS[label] for label in labels) + "]"


def squeeze_axes(node: Any, a: dict[str, Any], xs: list[Any]) -> tuple[int, ...] | None:
    """Unsqueeze's and Squeeze's axes: an input since opset 13, an attribute before."""
    axes = a.get("axes", xs[1] if len(xs) > 1 else None)
    return None if axes is None else tuple(int(v) for v in np.reshape(axes, -1))
