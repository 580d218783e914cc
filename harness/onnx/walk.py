"""The graph walk: one pass over an ONNX graph, node by node in the file's (topological) order, as
layers each taking the outputs of earlier ones (or the network's input).

Every tensor of the network is known by where it comes from (`Point`): the input, or a layer's
output with the bias and activation folded into that layer so far. Each node is, in order: a
constant or a step of a shape program (folding.py); part of torch's Softplus pattern (fusions.py);
a node joining the outputs of several layers (or a layer's and the input), read by the reader
registered for its op (`MERGERS`; such a node over the untouched output of the same kind of join
right before it, which nothing else reads, widens that layer: a chain of Adds is one add); a
layout op around a layer whose tensors are not batch first (`LAYOUTS`); a layer, read by the
reader registered for its ONNX op (`READERS`, or `OPERANDS` for a node of one tensor of the network and a
constant that is no bias; a reader may find the node is no layer but a new
shape of the samples: `Reshaped`), or the node right after a layer that its reader says completes
it (`Layer.tail`: the Flatten after a GlobalAveragePool); a bias Add or an activation folded into
the layer whose output it reads (fusions.py); or an Identity. Layers are numbered in the order
they are found, each with the indices of the layers it takes (`Layer.sources`, -1 the input).
Refused, naming the node: anything else, a tensor no layer made, and a node that reads a layer's
output without what another node folds into it (a branch inside a layer). The walk names no
layer kind: what a kind needs, its reader says (harness/onnx/layers/).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.layers import KINDS, ShapeError
from harness.onnx import folding, fusions
from harness.onnx.activations import FROM_ONNX
from harness.onnx.folding import BATCH, TIME
from harness.onnx.interface import Layer, Refused, Reshaped, attrs, axes_text, describe, squeeze_axes
from harness.onnx.layers import LAYOUTS, MERGERS, OPEN_WIDTH, OPERANDS, READERS

BATCH_FIRST = (("N", "T", "F"), ("N", "F"))
INPUT = -1  # the source index of the network's input


@dataclass(frozen=True)
class Point:
    """Where a tensor of the network comes from: the layer whose output it is (INPUT: the network's
    input), its shape per sample (as if batch first), its axes where they are not batch first
    (around a recurrent node: N, T, D, F), how many nodes had been folded into that layer when it
    was made (`stage`), and the check of the node that completes the layer, if still to come."""

    source: int
    shape: tuple[int, ...] | None
    labels: tuple[str, ...] | None = None
    stage: int = 0
    tail: Any = None


@dataclass
class Walk:
    """The state of one pass over a graph: constants, where each tensor comes from, the layers
    found; and, for the node being read, the tensor it reads as readers see it (`interface.Chain`)."""

    graph: Any  # its external data already read into it (external.py)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, list[Any]] = field(default_factory=dict)  # each data tensor's full shape, with symbols
    layers: list[Layer] = field(default_factory=list)
    points: dict[str, Point] = field(default_factory=dict)
    folds: list[list[str]] = field(default_factory=list)  # per layer: the nodes folded into it
    taken: list[int | None] = field(default_factory=list)  # per layer: the first layer taking its output
    given: list[Any] = field(default_factory=list)  # per layer: what it is given (a tuple of shapes for a join)
    softplus: fusions.Softplus = field(default_factory=fusions.Softplus)
    # the tensor the node being read reads: its name, source, shape, axes and pending tail
    current: str = ""
    source: int = INPUT
    labels: tuple[str, ...] | None = None
    fresh: bool = False  # its layer has no activation yet
    tail: Any = None

    def __post_init__(self) -> None:
        g = self.graph
        self.consts = {t.name: folding.array(t) for t in g.initializer}
        self.outputs = {o.name for o in g.output}
        self.used = {x for n in g.node for x in n.input} | self.outputs
        self.readers = Counter([x for n in g.node if n.op_type != "Shape" for x in n.input if x] + list(self.outputs))
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise Refused(f"expected one graph input, found {[i.name for i in inputs]}")
        self.input = inputs[0].name
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

    @property
    def owner(self) -> Layer | None:
        return self.layers[self.source] if self.source != INPUT else None

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
        """The tensor `name` comes from where the current one does, in the current shape (its full
        shape known where the per-sample shape is); it is the current one now."""
        self.current = name
        stage = len(self.folds[self.source]) if self.source != INPUT else 0
        self.points[name] = Point(self.source, self.shape, self.labels, stage, self.tail)
        if self.shape is not None:
            time = {"T": self.shape[0] or TIME} if len(self.shape) == 2 else {}
            sizes = {"N": BATCH, "D": 1, "F": self.shape[-1], **time}
            self.dims[name] = ([sizes[label] for label in self.labels] if self.labels is not None else
                               [BATCH, *(d or TIME for d in self.shape)])

    def _load(self, node: Any, name: str) -> None:
        """`node` reads the tensor `name`: it becomes the current one."""
        p = self.points[name]
        if p.source != INPUT and p.stage != len(self.folds[p.source]):
            raise Refused(f"node {describe(node)} reads {name!r}, the output of {self.layers[p.source].node} "
                          f"without {self.folds[p.source][p.stage]} that another node folds into it (a branch "
                          "inside a layer), which is not supported")
        self.current, self.source, self.labels, self.tail = name, p.source, p.labels, p.tail
        self.shape = self.input_shape if p.source == INPUT and p.shape is None else p.shape
        self.fresh = self.owner is not None and self.owner.activation is None

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
        matched, then = self.softplus.step(node)
        if matched:
            if then is not None:
                self._load(node, then)
                self._advance(node.output[0])
            return
        unknown = next((x for x in data if x not in self.points), None)
        if unknown is not None:
            raise Refused(f"node {describe(node)} reads {unknown!r}, which neither the graph input nor a layer "
                          "before it makes")
        if len(data) > 1:
            self._merge(node, op, a, data)
            return
        self._load(node, data[0])
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
            self._folded(node)
        elif op in OPERANDS:  # a tensor of the network and a constant that is no bias: a layer
            self._read(node, op, a, OPERANDS)
            return
        elif fusions.is_activation(op):
            fusions.activation(self, node, a)
            self._folded(node)
            if op == "Softplus":
                self.softplus.read(node)
        elif op != "Identity":
            raise Refused(f"unsupported node {describe(node)}; a harness model is a chain of the layers "
                          f"{', '.join([*READERS, *MERGERS])} and the activations {', '.join(sorted(FROM_ONNX))}, "
                          "or a graph of them")
        self._advance(node.output[0])

    def _folded(self, node: Any) -> None:
        """`node` was folded into the layer whose output it read, which no layer may have taken before."""
        taker = self.taken[self.source]
        if taker is not None:
            raise Refused(f"node {describe(node)} folds into {self.layers[self.source].node}, whose output "
                          f"{self.layers[taker].node} takes without it (a branch inside a layer), which is not "
                          "supported")
        self.folds[self.source].append(describe(node))

    def _read(self, node: Any, op: str, a: dict[str, Any], readers: dict[str, Any] = READERS) -> None:
        """A layer, by the reader of its op (in `readers`); its output is the current tensor."""
        if self.shape is None and op not in OPEN_WIDTH:
            raise Refused(f"the graph input {self.input!r} has no fixed shape for node {describe(node)}")
        try:
            layer = readers[op][1](node, a, self)
        except Refused as e:
            raise Refused(f"node {describe(node)}: {e}") from None
        if isinstance(layer, Reshaped):  # no layer: the samples' new shape (in front of every layer, the input's)
            self.shape = layer.shape
            self.input_shape = self.input_shape if self.layers else layer.shape
            self._advance(node.output[0])
            return
        layer.node = describe(node)
        if self.shape is None:  # a flat input of unknown width: the first weight's
            self.shape = self.input_shape = (int(layer.params["weight"].shape[1]),)
        if self.source == INPUT and self.shape != self.input_shape:
            raise Refused(f"node {layer.node} reads the graph input as {list(self.shape)}, where a Reshape "
                          f"before the first layer made it {list(self.input_shape or ())}")
        self._add(layer, (self.source,), self.shape)
        self.tail = layer.tail
        if layer.labels is not None:  # the layer goes on from the output its reader names, with its axes
            self.labels = layer.labels
            self._advance(layer.output)
        else:
            self._advance(node.output[0])

    def _merge(self, node: Any, op: str, a: dict[str, Any], data: list[str]) -> None:
        """A node joining several tensors of the network: a layer taking each one's source."""
        if op not in MERGERS:
            raise Refused(f"node {describe(node)} reads {len(data)} tensors of the network ({', '.join(data)}); "
                          f"only {', '.join(MERGERS)} may join the outputs of several layers")
        sources, shapes = [], []
        for name in data:
            self._load(node, name)
            if self.labels is not None or self.tail is not None or self.shape is None:
                why = (f"a tensor of axes {axes_text(self.labels)}, not batch first" if self.labels is not None else
                       f"unfinished by its layer {self.owner.node}" if self.tail is not None else "of no known shape")
                raise Refused(f"node {describe(node)} joins {name!r}, {why}")
            sources.append(self.source)
            shapes.append(self.shape)
        try:
            layer = MERGERS[op][1](node, a, self, shapes)
        except Refused as e:
            raise Refused(f"node {describe(node)}: {e}") from None
        layer.node = describe(node)
        last = len(self.layers) - 1
        prev = self.layers[last] if last >= 0 else None
        if (prev is not None and sources[0] == last and last not in sources[1:] and prev.type == layer.type
                and prev.settings == layer.settings and prev.activation is None and not self.folds[last]
                and self.readers[data[0]] == 1 and data[0] not in self.outputs):
            # a join of the untouched output of the same join before it: that one, wider
            sources[:1], shapes[:1] = prev.sources, self.given.pop()
            del self.layers[-1], self.folds[-1], self.taken[-1]
        self._add(layer, tuple(sources), tuple(shapes))
        self.labels = self.tail = None
        self._advance(node.output[0])

    def _add(self, layer: Layer, sources: tuple[int, ...], given: Any) -> None:
        """The layer `layer` on `given` (a shape; the tuple of shapes of a join), taking `sources`."""
        for key, k in KINDS[layer.type].keys.items():  # a stride of 0 would divide by zero below
            value = layer.settings.get(key)
            if k.form in ("int", "pair") and any(int(v) < k.minimum for v in np.atleast_1d(value)):
                raise Refused(f"node {layer.node}: its {key} {value!r} must be at least {k.minimum}")
        spec = layer.spec()
        shown = " + ".join(str(list(s)) for s in given) if KINDS[layer.type].merges else str(list(given))
        try:
            need = {**spec.param_shapes(given), **spec.state_shapes(given)}
            out = spec.out_shape(given)
        except ShapeError as e:
            raise Refused(f"node {layer.node} on input {shown}: {e}") from None
        for name, value in layer.params.items():
            if value is not None and tuple(value.shape) != tuple(need[name]):
                raise Refused(f"node {layer.node}: its {name} has shape {list(value.shape)}, its input "
                              f"{shown} needs {list(need[name])}")
        layer.sources = sources
        for j in sources:
            if j != INPUT and self.taken[j] is None:
                self.taken[j] = len(self.layers)
        self.layers.append(layer)
        self.folds.append([])
        self.taken.append(None)
        self.given.append(given)
        self.source, self.shape = len(self.layers) - 1, tuple(out)
