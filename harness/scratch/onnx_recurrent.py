"""ONNX for the recurrent kinds (rnn, lstm, gru), both ways: RNN, LSTM and GRU nodes, their gate
orders, and the sequence-major tensors around them.

ONNX's recurrent nodes read X sequence-major, (T, N, F), and write Y (T, directions, N, U) and Y_h
(directions, N, U); our layers and the graph's interface are batch first, (N, T, F). Export writes
Transpose [1, 0, 2], the node, then Squeeze of the direction axis and Transpose back for
`return_sequences`, else Squeeze of Y_h (the last step's state). Its weights are W (1, G·U, F),
R (1, G·U, U) and B (1, 2·G·U) = [b_ih | b_hh], gates in ONNX's order: LSTM i, o, f, c (torch's
i, f, g, o), GRU z, r, h (torch's r, z, n) with linear_before_reset = 1 (torch applies the reset gate
to W_hn h + b_hn), RNN with activations ["Tanh"] or ["Relu"]. They are named `layers.i.W`, `.R`,
`.B`: a permutation of the rows of torch's parameters, which import undoes bit for bit.

Import reads one node per layer (`READERS`), layout 0 or 1 (batch first, which onnxruntime does
not run), its initial states and peepholes absent or zero (torch writes Expand or ConstantOfShape
of 0 over [1, batch, units]: `Filled`). It follows the chain's tensor through the layout ops
around the node by naming its axes, batch N, time T, direction D, features F (`follow`):
Transpose permutes them; Squeeze, a Gather of index 0 or -1, or a Reshape that drops D and nothing
else (its target evaluated with the batch and an open time as symbols) removes D; a Gather of the
last time step (index -1, or T - 1) makes the recurrent layer before it `return_sequences = false`.
Any other node must read a batch-first tensor. Refused, naming the node: direction reverse or
bidirectional, clip, input_forget, activations other than torch's, GRU's linear_before_reset = 0,
a sequence_lens input, non-zero initial states or peepholes (P), the cell state Y_c used, and Y and
Y_h both used (a branch, as torch writes h_n of an nn.LSTM with num_layers > 1; a chain of
single-layer nodes, as it writes that module's output, reads as stacked layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.layers import LayerSpec

if TYPE_CHECKING:
    from harness.scratch.onnx_import import _Layer, _Walk

OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
KIND_OF = {op: kind for kind, op in OPS.items()}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# ONNX's gates as torch's blocks: ONNX block k is torch block TO_ONNX[k], torch block k is ONNX block FROM_ONNX[k]
TO_ONNX = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}
FROM_ONNX = {kind: tuple(int(k) for k in np.argsort(order)) for kind, order in TO_ONNX.items()}
DEFAULT_ACTIVATIONS = {"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh")}  # torch's, ONNX's defaults
WORDS = {"N": "batch", "T": "time", "D": "direction", "F": "features"}


def _gates(a: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The gate blocks of `a` (stacked along its first axis) in `order`."""
    return np.ascontiguousarray(a.reshape(len(order), -1, *a.shape[1:])[list(order)].reshape(a.shape))


# ---------------------------------------------------------------------------- export


def _export(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    kind, p, at = layer.type, g.params, f"layers.{i}"
    order = TO_ONNX[kind]
    w = g.tensor(f"{at}.W", _gates(p[f"{at}.weight_ih_l0"], order)[None])
    r = g.tensor(f"{at}.R", _gates(p[f"{at}.weight_hh_l0"], order)[None])
    b = g.tensor(f"{at}.B", np.concatenate([_gates(p[f"{at}.bias_ih_l0"], order),
                                            _gates(p[f"{at}.bias_hh_l0"], order)])[None])
    attrs: dict[str, Any] = {"hidden_size": layer.get("units")}
    if kind == "rnn":
        attrs["activations"] = [layer.get("activation").capitalize()]  # Tanh or Relu
    if kind == "gru":
        attrs["linear_before_reset"] = 1
    xt = g.node("Transpose", [x], f"{at}.x", f"{at}.time_major", perm=[1, 0, 2])
    if layer.get("return_sequences"):
        y = g.node(OPS[kind], [xt, w, r, b], [f"{at}.y"], at, **attrs)  # (T, 1, N, U)
        y = g.node("Squeeze", [y, g.tensor(f"{at}.direction", np.array([1]))], f"{at}.y_tnu", f"{at}.squeeze")
        return g.node("Transpose", [y], f"{at}.z", f"{at}.batch_first", perm=[1, 0, 2])
    g.node(OPS[kind], [xt, w, r, b], ["", f"{at}.y_h"], at, **attrs)  # Y_h (1, N, U): the last step's state
    return g.node("Squeeze", [f"{at}.y_h", g.tensor(f"{at}.direction", np.array([0]))], f"{at}.z", f"{at}.squeeze")


EXPORTERS = {kind: _export for kind in OPS}


# ---------------------------------------------------------------------------- zero initial states


@dataclass(frozen=True)
class Filled:
    """A tensor of one value whose shape depends on the batch, as exporters write a zero initial
    state: Expand(0, [1, batch, units]). Kept among the walk's constants as a 0-d object array."""

    value: float


KEEP_FILLED = {"Identity", "Slice", "Squeeze", "Unsqueeze", "Reshape", "Expand", "Transpose"}  # ops it goes through


def filled(x: Any) -> Filled | None:
    if isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 0 and isinstance(x.item(), Filled):
        return x.item()
    return None


def _fill(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """`x` broadcast over `shape`; over a shape that depends on the batch, the `Filled` of its one value."""
    if shape.dtype != object:
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))).copy()
    if x.dtype == object or x.size == 0 or not np.all(x == x.reshape(-1)[0]):
        raise ValueError("it expands values that differ (or depend on the batch) over a shape that depends on "
                         "the batch")
    return np.array(Filled(x.reshape(-1)[0].item()), dtype=object)


def expand(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    return _fill(xs[0], xs[1].reshape(-1))


def constant_of_shape(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    from onnx import numpy_helper

    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return _fill(value.reshape(-1)[:1], xs[0].reshape(-1))


# ---------------------------------------------------------------------------- import: the nodes


def _no(message: str) -> Exception:
    """The walk's refusal (imported here, not at the top: onnx_import imports this module)."""
    from harness.scratch.onnx_import import _Refused

    return _Refused(message)


def axes_text(labels: tuple[str, ...]) -> str:
    return "[" + ", ".join(WORDS[label] for label in labels) + "]"


def _text(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).lower()


def _check_attributes(kind: str, a: dict[str, Any]) -> dict[str, Any]:
    """The settings the node's attributes give (rnn's activation), refusing what torch's modules cannot be."""
    direction = _text(a.get("direction", "forward"))
    if direction != "forward":
        raise _no(f"direction = {direction}; only forward recurrent layers are supported (torch's "
                  "bidirectional=True or a reversed sequence is not a harness layer)")
    if "clip" in a:
        raise _no(f"clip = {a['clip']} (the cell inputs clipped) is not supported; torch's layers do not clip")
    if a.get("input_forget", 0):
        raise _no("input_forget = 1 (the input gate coupled to the forget gate) is not supported")
    if kind == "gru" and a.get("linear_before_reset", 0) != 1:
        raise _no("linear_before_reset = 0 applies the reset gate before the product, (r ⊙ h) W_hn; torch's GRU "
                  "(and the harness's) applies it after, r ⊙ (W_hn h + b_hn): a different function")
    acts = tuple(_text(v) for v in a.get("activations", []))
    if kind == "rnn":
        if acts not in ((), ("tanh",), ("relu",)):
            raise _no(f"activations {list(acts)}; an RNN layer takes tanh or relu")
        return {"activation": acts[0] if acts else "tanh"}
    if acts not in ((), DEFAULT_ACTIVATIONS[kind]):
        raise _no(f"activations {list(acts)}; only torch's {list(DEFAULT_ACTIVATIONS[kind])} are supported")
    return {}


def _zero(node: Any, i: int, what: str, walk: _Walk) -> None:
    name = node.input[i] if i < len(node.input) else ""
    value = walk.consts.get(name)
    fill = filled(value)
    zero = value is not None and (fill.value == 0 if fill else value.dtype != object and not np.any(value))
    if name and not zero:
        raise _no(f"its {what} ({name}) is not zero; a harness layer starts from a zero state" +
                  (" and has no peepholes" if what.startswith("peephole") else ""))


def _used(walk: _Walk, name: str) -> bool:
    """Whether a node other than Shape (or the graph's output) reads `name`."""
    if not name:
        return False
    return name in walk.outputs or any(name in n.input and n.op_type != "Shape" for n in walk.graph.node)


def read(node: Any, a: dict[str, Any], walk: _Walk) -> _Layer:
    """An RNN, LSTM or GRU node as a layer, its weights back in torch's names and gate order; the
    chain goes on from Y (every step) or Y_h (the last step), with their axes."""
    from harness.scratch.onnx_import import _Layer

    kind = KIND_OF[node.op_type]
    settings = _check_attributes(kind, a)
    layout = a.get("layout", 0)
    want = ("T", "N", "F") if layout == 0 else ("N", "T", "F")
    if walk.shape is None or len(walk.shape) != 2:
        raise _no(f"it takes sequences [batch, time, features], but its input has shape "
                  f"{[WORDS['N'], *walk.shape] if walk.shape else 'unknown'}")
    if walk.axes() != want:
        missing = " (a Transpose [1, 0, 2] before it is missing)" if layout == 0 else ""
        raise _no(f"with layout = {layout} it reads X as {axes_text(want)}, but its input is "
                  f"{axes_text(walk.axes())}{missing}")
    if len(node.input) > 4 and node.input[4]:
        raise _no(f"a sequence_lens input ({node.input[4]}: sequences of different lengths in one batch) is not "
                  "supported; every sequence of a batch runs its full length")
    _zero(node, 5, "initial_h", walk)
    if kind == "lstm":
        _zero(node, 6, "initial_c", walk)
        _zero(node, 7, "peephole weights P", walk)
    w, r = walk.const(node, 1), walk.const(node, 2)
    gu = w.shape[1] if w.ndim == 3 else -1
    units = int(a.get("hidden_size", r.shape[-1] if r.ndim == 3 else -1))
    if w.ndim != 3 or w.shape[0] != 1 or gu != GATES[kind] * units or r.shape != (1, gu, units):
        raise _no(f"W {list(w.shape)} and R {list(r.shape)} are not one direction's weights of {GATES[kind]} "
                  f"gate(s) of hidden_size {units}: (1, {GATES[kind] * units}, features) and "
                  f"(1, {GATES[kind] * units}, {units})")
    b = walk.const(node, 3) if len(node.input) > 3 and node.input[3] else np.zeros((1, 2 * gu), w.dtype)
    if b.shape != (1, 2 * gu):
        raise _no(f"B has shape {list(b.shape)}, W {list(w.shape)} needs [1, {2 * gu}]")
    order = FROM_ONNX[kind]
    params = {"weight_ih_l0": _gates(w[0], order), "weight_hh_l0": _gates(r[0], order),
              "bias_ih_l0": _gates(b[0, :gu], order), "bias_hh_l0": _gates(b[0, gu:], order)}
    outs = [*node.output, "", "", ""][:3]
    if kind == "lstm" and _used(walk, outs[2]):
        raise _no("its cell state Y_c is used; a harness network goes on from the hidden state only")
    y, y_h = _used(walk, outs[0]), _used(walk, outs[1])
    if y and y_h:
        raise _no("its outputs Y (every step) and Y_h (the last step) are both used, a branch (as torch writes h_n "
                  "of an nn.LSTM with num_layers > 1: stack single-layer modules, or use the output's last step)")
    if not (y or y_h):
        raise _no("neither its output Y nor Y_h is used")
    labels = (("T", "D", "N", "F") if y else ("D", "N", "F")) if layout == 0 else \
             (("N", "T", "D", "F") if y else ("N", "D", "F"))
    return _Layer(kind, {"units": units, "return_sequences": y, "init": "torch_default", **settings}, params,
                  output=outs[0] if y else outs[1], labels=labels)


READERS = {op: (kind, read) for kind, op in OPS.items()}


# ---------------------------------------------------------------------------- import: the tensors around them


LAYOUT_OPS = ("Transpose", "Squeeze", "Reshape", "Gather")


def follow(node: Any, op: str, a: dict[str, Any], walk: _Walk) -> tuple[str, ...] | None:
    """The axes of a layout op's output on a sequence tensor of the chain, or None for a node this
    does not handle (on a batch-first tensor it handles only Transpose, and Gather of the last step)."""
    if op not in LAYOUT_OPS:
        return None
    if walk.labels is None and not (op in ("Transpose", "Gather") and walk.shape is not None and len(walk.shape) == 2):
        return None
    labels = walk.axes()
    if op == "Transpose":
        perm = [int(p) for p in a.get("perm", range(len(labels))[::-1])]
        if sorted(perm) != list(range(len(labels))):
            raise _no(f"perm {perm} is not a permutation of the axes {axes_text(labels)}")
        return tuple(labels[p] for p in perm)
    if op == "Squeeze":
        axes = walk.axes_of(node, a)
        if axes is None:  # every axis of size 1: the direction, unless another is 1 too
            sizes = [walk.batch if label == "N" else d for d, label in zip(walk.dims[walk.current], labels, strict=True)
                     if label != "D"]
            if 1 in sizes:
                raise _no(f"a Squeeze without axes of {axes_text(labels)}, where more than the direction has size 1")
            axes = tuple(j for j, label in enumerate(labels) if label == "D")
        axes = tuple(sorted(ax % len(labels) for ax in axes))
        if any(labels[ax] != "D" for ax in axes):
            raise _no(f"it squeezes axes {list(axes)} of {axes_text(labels)}; only the direction axis may go")
        return tuple(label for j, label in enumerate(labels) if j not in axes)
    if op == "Reshape":
        return _reshape(node, a, labels, walk)
    return _gather(node, a, labels, walk)


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, np.integer)) else None


def _same(x: Any, y: Any) -> bool:
    """One size: the same symbol (the batch, an open time) or equal integers."""
    return x is y or (_int(x) is not None and _int(x) == _int(y))


def _reshape(node: Any, a: dict[str, Any], labels: tuple[str, ...], walk: _Walk) -> tuple[str, ...]:
    """A Reshape that drops the direction axis (size 1) and nothing else: each entry of its target
    is that axis's size, the file's fixed batch, -1 (once), or 0 where the input has it."""
    dims = list(walk.dims[walk.current])
    target = list(walk.const(node, 1, symbolic=True).reshape(-1))
    kept = [j for j, label in enumerate(labels) if label != "D"]

    def fits(pos: int, t: Any, j: int) -> bool:
        if _int(t) == -1 or _same(t, dims[j]):
            return True
        if _int(t) == 0 and not a.get("allowzero", 0):
            return _same(dims[pos], dims[j])
        return labels[j] == "N" and walk.batch is not None and _int(t) == walk.batch

    if (len(target) != len(kept) or [_int(t) for t in target].count(-1) > 1
            or not all(fits(pos, t, j) for pos, (t, j) in enumerate(zip(target, kept, strict=True)))):
        raise _no(f"a Reshape of {axes_text(labels)} {dims} to {target}; around a recurrent layer only one that "
                  "drops the direction axis is supported")
    return tuple(labels[j] for j in kept)


def _gather(node: Any, a: dict[str, Any], labels: tuple[str, ...], walk: _Walk) -> tuple[str, ...]:
    """A Gather of one index along the direction axis, or of the last step along the time axis."""
    axis = int(a.get("axis", 0)) % len(labels)
    index = walk.const(node, 1)
    label = labels[axis]
    steps = walk.shape[0] if label == "T" else 1
    last = index.ndim == 0 and (int(index) == -1 or (steps > 0 and int(index) == steps - 1))
    if label not in ("T", "D") or not last:
        raise _no(f"a Gather of index {index.tolist()} along the {WORDS[label]} axis of {axes_text(labels)}; only "
                  "the last time step (index -1) of a recurrent layer's output is supported")
    if label == "T":
        layer = walk.layers[-1] if walk.layers and walk.fresh else None
        if layer is None or layer.type not in OPS or not layer.settings["return_sequences"]:
            raise _no("it takes the last time step of a tensor that is not a recurrent layer's output")
        layer.settings["return_sequences"] = False
        walk.shape = walk.shape[1:]
    return tuple(other for j, other in enumerate(labels) if j != axis)
