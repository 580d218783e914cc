"""The graph walk: one pass over an ONNX graph as a chain of layers from its input to its output.

Each node on the chain is, in order: a constant or a step of a shape program (folding.py); part
of torch's Softplus pattern (fusions.py); a layout op around a layer whose tensors are not batch
first (`LAYOUTS`); a layer, read by the reader registered for its ONNX op (`READERS`; a
reader may find the node is no layer but a new shape of the samples: `Reshaped`), or the node right
after a layer that its reader says completes it (`Layer.tail`: the Flatten after a GlobalAveragePool); a bias Add or
an activation folded into the layer before it (fusions.py); or an Identity. Anything else, or a
node that reads off the chain (a branch), is refused naming the node. The walk names no layer
kind: what a kind needs, its reader says (harness/onnx/layers/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.layers import KINDS, ShapeError
from harness.onnx import folding, fusions
from harness.onnx.activations import FROM_ONNX
from harness.onnx.folding import BATCH, TIME
from harness.onnx.interface import Layer, Refused, Reshaped, attrs, describe, squeeze_axes
from harness.onnx.layers import LAYOUTS, OPEN_WIDTH, READERS

BATCH_FIRST = (("N", "T", "F"), ("N", "F"))


@dataclass
class Walk:
    """The state of one pass over a graph: constants, the chain's current tensor and its shape
    (per sample, as if batch first), and its axes where they are not batch first (around a
    recurrent node: N, T, D, F). Readers see it as an `interface.Chain`."""

    graph: Any  # its external data already read into it (external.py)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, list[Any]] = field(default_factory=dict)  # each data tensor's full shape, with symbols
    layers: list[Layer] = field(default_factory=list)
    fresh: bool = False  # the current tensor is a layer's output, before any activation
    softplus: fusions.Softplus = field(default_factory=fusions.Softplus)
    labels: tuple[str, ...] | None = None  # the current tensor's axes when not batch first
    tail: Any = None  # the last layer's check of the node that completes it (interface.Layer.tail)

    def __post_init__(self) -> None:
        g = self.graph
        self.consts = {t.name: folding.array(t) for t in g.initializer}
        self.outputs = {o.name for o in g.output}
        self.used = {x for n in g.node for x in n.input} | self.outputs
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise Refused(f"expected one graph input, found {[i.name for i in inputs]}")
        self.input = self.current = inputs[0].name
        t = inputs[0].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else []
        self.batch = dims[0] if dims and dims[0] else None
        sample = dims[1:]
        if len(dims) in (2, 4) and all(sample):
            self.shape: tuple[int, ...] | None = tuple(sample)
        elif len(dims) == 3 and sample[1]:  # a sequence: its time length may be open
            self.shape = (sample[0] or 0, sample[1])
        elif len(dims) in (0, 2):
            self.shape = None  # a flat input whose width only the first weight tells
        else:
            raise Refused(f"the graph input {self.input!r} has shape {dims}; a harness network takes "
                          "[batch, features], [batch, time, features] or [batch, channels, height, width], "
                          "sizes fixed but the time")
        self.input_shape = self.shape
        self._advance(self.input)

    def const(self, node: Any, i: int, symbolic: bool = False) -> np.ndarray:
        """The constant value of `node`'s input i (batch-symbolic only where `symbolic`)."""
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.consts:
            raise Refused(f"its input {i} ({name or 'missing'}) is not a constant; weights must be initializers "
                          "or Constant nodes")
        value = self.consts[name]
        if value.dtype == object and not symbolic:
            raise Refused(f"its input {i} ({name}) depends on the batch size")
        return value

    def axes(self) -> tuple[str, ...]:
        """The current sequence tensor's axes: its labels, or batch first."""
        return self.labels or (("N", "T", "F") if len(self.shape or ()) == 2 else ("N", "F"))

    def axes_of(self, node: Any, a: dict[str, Any]) -> tuple[int, ...] | None:
        """Unsqueeze's or Squeeze's axes (an attribute before opset 13, a constant input since)."""
        return squeeze_axes(node, a, [None, *(self.const(node, 1) for _ in node.input[1:2] if _)])

    def _advance(self, name: str) -> None:
        """The chain goes on from `name`; its full shape is known where the per-sample shape is."""
        self.current = name
        if self.shape is not None:
            time = {"T": self.shape[0] or TIME} if len(self.shape) == 2 else {}
            sizes = {"N": BATCH, "D": 1, "F": self.shape[-1], **time}
            self.dims[name] = ([sizes[label] for label in self.labels] if self.labels is not None else
                               [BATCH, *(d or TIME for d in self.shape)])

    def step(self, node: Any) -> None:
        op, a = node.op_type, attrs(node)
        if op == "Constant":
            self.consts[node.output[0]] = folding.constant(node, a)
            return
        data = [x for x in node.input if x and x not in self.consts]
        if not data:
            self.consts[node.output[0]] = folding.fold(node, a, self.consts)
            return
        if op == "Shape" and data[0] in self.dims:
            self.consts[node.output[0]] = folding.shape_of(a, self.dims[data[0]])
            return
        matched, then = self.softplus.step(node, self.current)
        if matched:
            if then is not None:
                self._advance(then)
            return
        if data != [self.current]:
            raise Refused(f"node {describe(node)} is not part of a plain chain of layers (it reads {data})")
        if self.tail is not None:  # the node that completes the last layer, which its reader checks
            tail, self.tail = self.tail, None
            try:
                tail(node, a, self)
            except Refused as e:
                raise Refused(f"node {describe(node)}: {e}") from None
            self._advance(node.output[0])
            return
        for layout in LAYOUTS:
            try:
                labels = layout.follow(node, op, a, self)
            except Refused as e:
                raise Refused(f"node {describe(node)}: {e}") from None
            if labels is not None:  # a layout op around a layer whose tensors are not batch first
                self.labels = None if labels in BATCH_FIRST else labels
                self._advance(node.output[0])
                return
        if self.labels is not None:
            for layout in LAYOUTS:
                if op not in layout.readers:
                    raise Refused(layout.refusal(node, self))
        if op in READERS:
            self._read(node, op, a)
            return
        if op == "Add" and fusions.bias(self, node):
            pass
        elif fusions.is_activation(op):
            fusions.activation(self, node, a)
            if op == "Softplus":
                self.softplus.read(node)
        elif op != "Identity":
            raise Refused(f"unsupported node {describe(node)}; a harness model is a chain of the layers "
                          f"{', '.join(READERS)} and the activations {', '.join(sorted(FROM_ONNX))}")
        self._advance(node.output[0])

    def _read(self, node: Any, op: str, a: dict[str, Any]) -> None:
        """A layer, by the reader of its op; the chain goes on from its output."""
        if self.shape is None and op not in OPEN_WIDTH:
            raise Refused(f"the graph input {self.input!r} has no fixed shape for node {describe(node)}")
        try:
            layer = READERS[op][1](node, a, self)
        except Refused as e:
            raise Refused(f"node {describe(node)}: {e}") from None
        if isinstance(layer, Reshaped):  # no layer: the samples' new shape (in front of every layer, the input's)
            self.shape = layer.shape
            self.input_shape = self.input_shape if self.layers else layer.shape
            self._advance(node.output[0])
            return
        layer.node = describe(node)
        self._add(layer)
        self.tail = layer.tail
        if layer.labels is not None:  # the chain goes on from the output the reader names, with its axes
            self.labels = layer.labels
            self._advance(layer.output)
        else:
            self._advance(node.output[0])

    def _add(self, layer: Layer) -> None:
        if self.shape is None:  # a flat input of unknown width: the first weight's
            self.shape = self.input_shape = (int(layer.params["weight"].shape[1]),)
        for key, k in KINDS[layer.type].keys.items():  # a stride of 0 would divide by zero below
            value = layer.settings.get(key)
            if k.form in ("int", "pair") and any(int(v) < k.minimum for v in np.atleast_1d(value)):
                raise Refused(f"node {layer.node}: its {key} {value!r} must be at least {k.minimum}")
        spec = layer.spec()
        try:
            need = {**spec.param_shapes(self.shape), **spec.state_shapes(self.shape)}
            out = spec.out_shape(self.shape)
        except ShapeError as e:
            raise Refused(f"node {layer.node} on input {list(self.shape)}: {e}") from None
        for name, value in layer.params.items():
            if value is not None and tuple(value.shape) != tuple(need[name]):
                raise Refused(f"node {layer.node}: its {name} has shape {list(value.shape)}, its input "
                              f"{list(self.shape)} needs {list(need[name])}")
        self.layers.append(layer)
        self.shape, self.fresh = tuple(out), True
