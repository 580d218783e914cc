"""Reading ONNX files into scratch networks: one reader per ONNX operator that makes a layer.

`load` walks the graph as one chain from its input to its output. What it reads:
- layers, by `READERS` (ONNX op -> layer kind and reader): Gemm, MatMul (+ an Add that is its
  bias; on every step of a sequence too), Conv, MaxPool, AveragePool, Flatten, Reshape where it
  flattens each sample (to [batch, -1], [-1, features], [0, -1], or the file's fixed batch), and
  RNN, LSTM and GRU with the layout ops around them (harness/scratch/onnx_recurrent.py);
- the activations of `ONNX_OPS` right after a linear or conv2d layer, and torch's thresholded
  Softplus (Softplus, Greater, Where);
- around them: initializers, Constant and Identity nodes, and the small integer programs
  exporters write for a Reshape's target (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice,
  Cast, Transpose, Mul, Reshape), evaluated here with the batch size and an open time length as
  symbols, and the Expand or ConstantOfShape of one value over a shape that depends on the batch
  that makes a recurrent layer's zero initial state.
Refused, one `ModelFileError` naming the node: any other op, a branch off the chain, grouped
or dilated convolutions, pools with ceil_mode or dilations, a MaxPool whose indices are used,
an AveragePool that leaves the padding out of the mean (count_include_pad = 0 with pads),
asymmetric pads, auto_pad other than NOTSET, and a graph that does not end in a linear layer.

The spec comes back in the general form (`input_shape` from the graph input's dims, a fixed
batch allowed, a time length left open as 0), parameters by our names (`layers.i.weight`, i
counting `spec.all_layers`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelFileError
from harness.layers import IDENTITY, KINDS, ActivationSpec, LayerSpec, ShapeError, setting_to_plain
from harness.scratch import onnx_recurrent
from harness.spec import NetworkSpec, network_from_dict

if TYPE_CHECKING:
    from harness.scratch.network import Network

ONNX_DEFAULTS = {"LeakyRelu": {"alpha": 0.01}, "Elu": {"alpha": 1.0}}


class _Refused(Exception):
    """A node this reader does not take; `load` prefixes the file's name."""


def read_model(path: str | Path) -> Any:
    """The ONNX ModelProto at `path`, or one clear error for a missing, damaged or non-ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends for anything that is not ONNX
        raise ModelFileError(f"{path}: not a readable ONNX model ({type(e).__name__}); truncated, damaged, "
                             "or another format") from None
    if not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path}: not an ONNX model with a graph (no nodes or no inputs)")
    return model


def metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


# ---------------------------------------------------------------------------- layer readers


@dataclass
class _Layer:
    """A layer read off the graph: its kind, settings, parameters (a bias of None may still
    come from an Add), the node that made it, and its activation once one follows; a recurrent
    node also says which of its outputs the chain goes on from, and that tensor's axes."""

    type: str
    settings: dict[str, Any]
    params: dict[str, np.ndarray | None]
    node: str = ""
    activation: ActivationSpec | None = None
    output: str = ""  # the node's output the chain goes on from, when not its first
    labels: tuple[str, ...] | None = None  # that output's axes, when not batch first

    def spec(self) -> LayerSpec:
        keys = KINDS[self.type].keys
        return LayerSpec(self.type, tuple((k, self.settings[k]) for k in keys), self.activation or IDENTITY)


Reader = Callable[[Any, dict[str, Any], "_Walk"], _Layer]


def _linear(w: np.ndarray, b: np.ndarray | None) -> _Layer:
    if w.ndim != 2:
        raise _Refused(f"a weight of shape {list(w.shape)} is not a matrix")
    return _Layer("linear", {"units": int(w.shape[0])}, {"weight": w, "bias": b})


def _gemm(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise _Refused("Gemm with transA, alpha or beta is not supported")
    w = walk.const(node, 1)
    b = walk.const(node, 2) if len(node.input) > 2 and node.input[2] else None
    return _linear(w if a.get("transB", 0) else w.T, None if b is None else b.reshape(-1))


def _matmul(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    return _linear(walk.const(node, 1).T, None)


def _window(a: dict[str, Any], what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, padding) of a 2-D window op, refusing what torch's layers cannot express."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise _Refused(f"auto_pad = {_text(a['auto_pad'])}; only explicit pads (NOTSET) are supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _Refused(f"dilations {list(a['dilations'])} are not supported (a {what} here is never dilated)")
    stride, pads = tuple(a.get("strides", [1, 1])), list(a.get("pads", [0, 0, 0, 0]))
    if len(stride) != 2 or len(pads) != 4:
        raise _Refused(f"strides {list(stride)} and pads {pads} are not those of a 2-D {what}")
    if pads[:2] != pads[2:]:
        raise _Refused(f"asymmetric pads {pads} (top, left, bottom, right) are not supported; torch pads both "
                       "sides alike")
    return stride, tuple(pads[:2])  # type: ignore[return-value]


def _conv(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    w = walk.const(node, 1)
    if w.ndim != 4:
        raise _Refused(f"a {w.ndim - 2}-D convolution (weight {list(w.shape)}); only 2-D ones, over images, are "
                       "supported")
    if a.get("group", 1) != 1:
        raise _Refused(f"group = {a['group']} (a grouped convolution) is not supported")
    stride, padding = _window(a, "convolution")
    kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
    if kernel != w.shape[2:]:
        raise _Refused(f"kernel_shape {list(kernel)} does not match its weight {list(w.shape)}")
    b = walk.const(node, 2) if len(node.input) > 2 and node.input[2] else None
    return _Layer("conv2d", {"filters": int(w.shape[0]), "kernel": kernel, "stride": stride, "padding": padding},
                  {"weight": w, "bias": b})


def _pool(kind: str) -> Reader:
    def read(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
        kernel = tuple(a.get("kernel_shape", ()))
        if len(kernel) != 2:
            raise _Refused(f"kernel_shape {list(kernel)}: only 2-D pools, over images, are supported")
        if a.get("ceil_mode", 0):
            raise _Refused("ceil_mode = 1 (partial windows past the edge) is not supported")
        stride, padding = _window(a, "pool")
        if kind == "maxpool2d" and len(node.output) > 1 and node.output[1] in walk.used:
            raise _Refused("its second output, the indices of the maxima, is used; only the values are supported")
        if kind == "avgpool2d" and not a.get("count_include_pad", 0) and any(padding):
            raise _Refused("count_include_pad = 0 with pads (a mean over the pixels inside the image only) is a "
                           "different function from torch's AvgPool2d, which counts the padding")
        return _Layer(kind, {"kernel": kernel, "stride": stride, "padding": padding}, {})
    return read


def _flatten(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    axis = a.get("axis", 1)
    if (axis + len(walk.shape) + 1 if axis < 0 else axis) != 1:
        raise _Refused(f"axis = {axis}; only axis 1 (each sample flattened) is supported")
    return _Layer("flatten", {}, {})


def _reshape(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    target = [v if isinstance(v, _Symbol) else int(v) for v in walk.const(node, 1, symbolic=True).reshape(-1)]
    features = math.prod(walk.shape)
    first, last = (target + [None, None])[:2]
    batch_ok = (first is BATCH or (first == 0 and not a.get("allowzero", 0)) or first == walk.batch
                or (first == -1 and last == features))
    if len(target) != 2 or not batch_ok or not (last == features or (last == -1 and first != -1)):
        raise _Refused(f"a Reshape of [batch, {', '.join(map(str, walk.shape))}] to {target} is not a flatten of "
                       f"each sample (to [batch, {features}]), the only Reshape supported")
    return _Layer("flatten", {}, {})


# ONNX op -> (the layer kind it reads, its reader); IMPORTERS (op -> kind) covers every kind
READERS: dict[str, tuple[str, Reader]] = {
    "Gemm": ("linear", _gemm), "MatMul": ("linear", _matmul), "Conv": ("conv2d", _conv),
    "MaxPool": ("maxpool2d", _pool("maxpool2d")), "AveragePool": ("avgpool2d", _pool("avgpool2d")),
    "Flatten": ("flatten", _flatten), "Reshape": ("flatten", _reshape), **onnx_recurrent.READERS,
}
IMPORTERS: dict[str, str] = {op: kind for op, (kind, _) in READERS.items()}


# ---------------------------------------------------------------------------- shape arithmetic


class _Symbol:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


BATCH = _Symbol("batch")  # the batch size in shape arithmetic: unknown until the model runs
TIME = _Symbol("time")  # a sequence length the file leaves open


def _reshape_const(x: np.ndarray, target: np.ndarray, allowzero: int) -> np.ndarray:
    shape = [x.shape[j] if int(t) == 0 and not allowzero else int(t) for j, t in enumerate(target.reshape(-1))]
    return x.reshape(shape)


def _slice(x: np.ndarray, starts, ends, axes=None, steps=None) -> np.ndarray:
    index = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _axes(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> tuple[int, ...] | None:
    """Unsqueeze's and Squeeze's axes: an input since opset 13, an attribute before."""
    axes = a.get("axes", xs[1] if len(xs) > 1 else None)
    return None if axes is None else tuple(int(v) for v in np.reshape(axes, -1))


def _cast(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    from onnx import helper

    return xs[0] if xs[0].dtype == object else xs[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))


# op -> its value from constant (or batch-symbolic) inputs
_FOLD: dict[str, Callable[[Any, dict[str, Any], list[np.ndarray]], np.ndarray]] = {
    "Identity": lambda n, a, xs: xs[0],
    "Cast": _cast,
    "Transpose": lambda n, a, xs: np.transpose(xs[0], a.get("perm")),
    "Shape": lambda n, a, xs: np.array(xs[0].shape, dtype=np.int64)[a.get("start", 0):a.get("end")],
    "Gather": lambda n, a, xs: np.take(xs[0], xs[1], axis=a.get("axis", 0)),
    "Unsqueeze": lambda n, a, xs: np.expand_dims(xs[0], _axes(n, a, xs)),
    "Squeeze": lambda n, a, xs: np.squeeze(xs[0], _axes(n, a, xs)),
    "Concat": lambda n, a, xs: np.concatenate([np.reshape(x, -1) if x.ndim == 0 else x for x in xs], a["axis"]),
    "Slice": lambda n, a, xs: (_slice(xs[0], *xs[1:]) if len(xs) > 1 else
                               _slice(xs[0], a["starts"], a["ends"], a.get("axes"))),
    "Mul": lambda n, a, xs: np.multiply(xs[0], xs[1]),
    "Reshape": lambda n, a, xs: _reshape_const(xs[0], xs[1], a.get("allowzero", 0)),
    "Expand": onnx_recurrent.expand,
    "ConstantOfShape": onnx_recurrent.constant_of_shape,
}


# ---------------------------------------------------------------------------- the walk


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(node: Any) -> str:
    return f"{node.name or node.output[0]!r} (op {node.op_type})"


@dataclass
class _Walk:
    """The state of one pass over a graph: constants, the chain's current tensor and its shape
    (per sample, as if batch first), and its axes where they are not batch first (around a
    recurrent node: onnx_recurrent names them N, T, D, F)."""

    graph: Any
    folder: str  # where tensors stored outside the file (external data) are, as torch's dynamo writes them
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, list[Any]] = field(default_factory=dict)  # each data tensor's full shape, with symbols
    layers: list[_Layer] = field(default_factory=list)
    fresh: bool = False  # the current tensor is a layer's output, before any activation
    softplus: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None  # the current tensor's axes when not batch first

    def __post_init__(self) -> None:
        from onnx import numpy_helper
        from onnx.checker import ValidationError

        g = self.graph
        try:
            self.consts = {t.name: numpy_helper.to_array(t, base_dir=self.folder) for t in g.initializer}
        except (OSError, ValueError, ValidationError) as e:  # onnx refuses locations outside the folder itself
            why = str(e).splitlines()[0]
            raise _Refused(f"its weights are stored outside it and cannot be read ({why}); torch.onnx.export "
                           "writes them to a .data file beside the model: keep the two together, or export "
                           "with external_data=False") from None
        self.outputs = {o.name for o in g.output}
        self.used = {x for n in g.node for x in n.input} | self.outputs
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise _Refused(f"expected one graph input, found {[i.name for i in inputs]}")
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
            raise _Refused(f"the graph input {self.input!r} has shape {dims}; a harness network takes "
                           "[batch, features], [batch, time, features] or [batch, channels, height, width], "
                           "sizes fixed but the time")
        self.input_shape = self.shape
        self._advance(self.input)

    def const(self, node: Any, i: int, symbolic: bool = False) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.consts:
            raise _Refused(f"its input {i} ({name or 'missing'}) is not a constant; weights must be initializers "
                           "or Constant nodes")
        value = self.consts[name]
        if value.dtype == object and not symbolic:
            raise _Refused(f"its input {i} ({name}) depends on the batch size")
        return value

    def axes(self) -> tuple[str, ...]:
        """The current sequence tensor's axes: its labels, or batch first."""
        return self.labels or (("N", "T", "F") if len(self.shape or ()) == 2 else ("N", "F"))

    def axes_of(self, node: Any, a: dict[str, Any]) -> tuple[int, ...] | None:
        """Unsqueeze's or Squeeze's axes (an attribute before opset 13, a constant input since)."""
        return _axes(node, a, [None, *(self.const(node, 1) for _ in node.input[1:2] if _)])

    def _advance(self, name: str) -> None:
        """The chain goes on from `name`; its full shape is known where the per-sample shape is."""
        self.current = name
        if self.shape is not None:
            time = {"T": self.shape[0] or TIME} if len(self.shape) == 2 else {}
            sizes = {"N": BATCH, "D": 1, "F": self.shape[-1], **time}
            self.dims[name] = ([sizes[label] for label in self.labels] if self.labels is not None else
                               [BATCH, *(d or TIME for d in self.shape)])

    def step(self, node: Any) -> None:
        op, a = node.op_type, _attrs(node)
        if op == "Constant":
            self.consts[node.output[0]] = _constant(node, a)
            return
        data = [x for x in node.input if x and x not in self.consts]
        if not data:
            if op not in _FOLD:
                raise _Refused(f"unsupported node {_describe(node)} on constants")
            values = [self.consts[x] if x else None for x in node.input]
            if values and onnx_recurrent.filled(values[0]) and op in onnx_recurrent.KEEP_FILLED:
                self.consts[node.output[0]] = values[0]
                return
            try:
                self.consts[node.output[0]] = np.asarray(_FOLD[op](node, a, values))
            except (ValueError, IndexError, KeyError, TypeError) as e:  # NumPy's words for a bad axis or index
                raise _Refused(f"node {_describe(node)} cannot be evaluated ({e})") from None
            return
        if op == "Shape" and data[0] in self.dims:
            self.consts[node.output[0]] = np.array(self.dims[data[0]], dtype=object)[a.get("start", 0):a.get("end")]
            return
        if self._softplus(node, op):
            return
        if data != [self.current]:
            raise _Refused(f"node {_describe(node)} is not part of a plain chain of layers (it reads {data})")
        try:
            labels = onnx_recurrent.follow(node, op, a, self)
        except _Refused as e:
            raise _Refused(f"node {_describe(node)}: {e}") from None
        if labels is not None:  # a layout op around a recurrent layer
            self.labels = None if labels in (("N", "T", "F"), ("N", "F")) else labels
            self._advance(node.output[0])
            return
        if self.labels is not None and op not in onnx_recurrent.READERS:
            raise _Refused(f"node {_describe(node)} reads a tensor of axes {onnx_recurrent.axes_text(self.labels)}, "
                           "not batch first; only an RNN, LSTM or GRU node and the Transpose, Squeeze, Reshape and "
                           "Gather around it may (torch's dynamo exporter writes nn.RNN unrolled step by step, "
                           "which is not read: export it with dynamo=False)")
        if op in READERS:
            if self.shape is None and op not in ("Gemm", "MatMul"):
                raise _Refused(f"the graph input {self.input!r} has no fixed shape for node {_describe(node)}")
            try:
                layer = READERS[op][1](node, a, self)
            except _Refused as e:
                raise _Refused(f"node {_describe(node)}: {e}") from None
            layer.node = _describe(node)
            self._add(layer)
            if layer.labels is not None:  # a recurrent node: the chain goes on from Y or Y_h
                self.labels = layer.labels
                self._advance(layer.output)
                return
        elif op == "Add" and self._bias(node):
            pass
        elif op in _from_onnx() and self._can_activate(node):
            self.layers[-1].activation = _activation(node, a)
            self.fresh = False
            if op == "Softplus":
                self.softplus["z"] = node.input[0]
        elif op != "Identity":
            raise _Refused(f"unsupported node {_describe(node)}; a harness model is a chain of the layers "
                           f"{', '.join(READERS)} and the activations {', '.join(sorted(_from_onnx()))}")
        self._advance(node.output[0])

    def _add(self, layer: _Layer) -> None:
        if self.shape is None:  # a flat input of unknown width: the first weight's
            self.shape = self.input_shape = (int(layer.params["weight"].shape[1]),)
        spec = layer.spec()
        try:
            need = spec.param_shapes(self.shape)
            out = spec.out_shape(self.shape)
        except ShapeError as e:
            raise _Refused(f"node {layer.node} on input {list(self.shape)}: {e}") from None
        for name, value in layer.params.items():
            if value is not None and tuple(value.shape) != tuple(need[name]):
                raise _Refused(f"node {layer.node}: its {name} has shape {list(value.shape)}, its input "
                               f"{list(self.shape)} needs {list(need[name])}")
        self.layers.append(layer)
        self.shape, self.fresh = tuple(out), True

    def _bias(self, node: Any) -> bool:
        """An Add right after a layer without a bias, of one value per output channel (the last
        axis of a linear layer's output, the first of a convolution's): its bias."""
        last = self.layers[-1] if self.layers and self.fresh else None
        if last is None or last.params.get("bias", 0) is not None:
            return False
        other = next((x for x in node.input if x in self.consts), None)
        b = None if other is None else self.consts[other]
        channel = 0 if last.type == "conv2d" else len(self.shape) - 1
        n = self.shape[channel]
        if b is None or b.dtype == object or b.size != n:
            return False
        per_channel = np.broadcast_to(b.reshape([n if j == channel else 1 for j in range(len(self.shape))]),
                                      self.shape)
        try:
            if not np.array_equal(np.broadcast_to(b, (1, *self.shape))[0], per_channel):
                return False
        except ValueError:
            return False
        last.params["bias"] = b.reshape(n)
        return True

    def _can_activate(self, node: Any) -> bool:
        if not self.layers:
            raise _Refused(f"activation {_describe(node)} comes before any layer")
        last = self.layers[-1]
        if not last.spec().kind.activation:
            raise _Refused(f"activation {_describe(node)} follows {last.node}, a {last.type} layer; a harness "
                           "network applies activations right after a linear or conv2d layer only")
        if not self.fresh:
            raise _Refused(f"activation {_describe(node)} follows another activation of the same layer")
        return True

    def _softplus(self, node: Any, op: str) -> bool:
        """torch's thresholded softplus: Where(Greater(z, 20), z, Softplus(z)) reads as softplus."""
        if op == "Greater" and self.softplus and node.input[0] == self.softplus["z"]:
            self.softplus["greater"] = node.output[0]
            return True
        if (op == "Where" and self.softplus.get("greater") == node.input[0]
                and list(node.input[1:]) == [self.softplus["z"], self.current]):
            self._advance(node.output[0])
            self.softplus.clear()
            return True
        return False


def _constant(node: Any, a: dict[str, Any]) -> np.ndarray:
    from onnx import numpy_helper

    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for key, dtype in (("value_int", np.int64), ("value_ints", np.int64), ("value_float", np.float32),
                       ("value_floats", np.float32)):
        if key in a:
            return np.array(a[key], dtype=dtype)
    raise _Refused(f"Constant {_describe(node)} holds a {', '.join(a)}, which is not read")


def _from_onnx() -> dict[str, str]:
    from harness.scratch.onnx import ONNX_OPS

    return {op: name for name, (op, _) in ONNX_OPS.items()}


def _activation(node: Any, attrs: dict[str, Any]) -> ActivationSpec:
    from harness.scratch.onnx import ONNX_OPS

    name = _from_onnx()[node.op_type]
    if node.op_type == "Gelu" and _text(attrs.get("approximate", "none")) != "none":
        raise _Refused(f"Gelu {node.name!r} uses the tanh approximation; only the exact form is supported")
    if node.op_type == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
        raise _Refused(f"Softmax {node.name!r} over axis {attrs['axis']} is not over the outputs")
    # ONNX stores float attributes in single precision: read back the shortest decimal that is
    # that float32 (0.2, not 0.20000000298), the value the exporter was given.
    params = {ours: float(np.format_float_positional(np.float32(attrs.get(theirs, ONNX_DEFAULTS[node.op_type][theirs])),
                                                     unique=True))
              for ours, theirs in ONNX_OPS[name][1].items()}
    return ActivationSpec(name, tuple(sorted(params.items())))


def read_network(path: str | Path) -> tuple[NetworkSpec, dict[str, np.ndarray], np.dtype]:
    """The spec, parameters (by our names) and dtype of the ONNX model at `path`."""
    path = Path(path)
    model = read_model(path)
    try:
        walk = _Walk(model.graph, str(path.resolve().parent))
        for node in model.graph.node:
            walk.step(node)
        layers = walk.layers
        if not layers:
            raise _Refused("no layer found (no Gemm, MatMul or Conv)")
        if layers[-1].type != "linear":
            raise _Refused(f"unsupported node {layers[-1].node} at the end of the graph: a harness network ends "
                           "with a linear output layer (Gemm, or MatMul and Add)")
        outputs = [o.name for o in model.graph.output]
        if walk.labels is not None:
            raise _Refused(f"the graph ends on a tensor of axes {onnx_recurrent.axes_text(walk.labels)}, not batch "
                           "first")
        if outputs != [walk.current]:
            raise _Refused(f"the graph's outputs {outputs} are not the end of its chain of layers "
                           f"({walk.current!r})")
        dtype = np.result_type(*(p for layer in layers for p in layer.params.values() if p is not None))
        if dtype not in (np.float32, np.float64):
            raise _Refused(f"its parameters are {dtype}; a harness network is float32 or float64")
    except _Refused as e:
        raise ModelFileError(f"{path}: {e}") from None
    out = layers[-1]
    raw: dict[str, Any] = {
        "input_shape": list(walk.input_shape), "outputs": out.settings["units"],
        "layers": [{"type": layer.type, **{k: setting_to_plain(v) for k, v in layer.settings.items()},
                    **({"activation": _plain(layer.activation)} if KINDS[layer.type].activation else {})}
                   for layer in layers[:-1]],
        "output_activation": _plain(out.activation)}
    meta = metadata(model)
    if "network" in meta:
        try:
            saved = json.loads(meta["network"])
            raw["init"] = saved.get("init", "xavier_uniform")
            for ours, theirs in zip(raw["layers"], saved.get("layers", []), strict=False):  # a recurrent layer's own
                choices = KINDS[ours["type"]].keys.get("init")
                if (choices and isinstance(theirs, dict) and theirs.get("type") == ours["type"]
                        and theirs.get("init") in choices.choices):
                    ours["init"] = theirs["init"]
        except (ValueError, AttributeError):
            pass  # a damaged saved spec: the graph itself says all but the initializer
    spec = network_from_dict(raw, source=str(path))
    params = {}
    for i, layer in enumerate(layers):
        for name, value in layer.params.items():
            if value is None:  # no bias in the file: a zero bias
                value = np.zeros(layer.params["weight"].shape[0], dtype=dtype)
            params[f"layers.{i}.{name}"] = value
    return spec, params, dtype


def _plain(act: ActivationSpec | None) -> dict[str, Any]:
    act = act or IDENTITY
    return {"name": act.name, **act.kwargs()}


def load(path: str | Path) -> Network:
    """A scratch `Network` from an ONNX model (see the module docstring for what is read)."""
    from harness.scratch.network import Network

    spec, params, dtype = read_network(path)
    try:
        return Network(spec, params, dtype=dtype)
    except ValueError as e:
        raise ModelFileError(f"{path}: {e}") from None
