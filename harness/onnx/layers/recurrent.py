"""The recurrent family in ONNX (rnn.py, lstm.py and gru.py hold each kind's `Cell`): RNN, LSTM
and GRU nodes, their gate orders, and the sequence-major tensors around them.

ONNX's recurrent nodes read X sequence-major, (T, N, F), and write Y (T, directions, N, U) and Y_h
(directions, N, U); our layers and the graph's interface are batch first, (N, T, F). Export writes
Transpose [1, 0, 2], the node, then Squeeze of the direction axis and Transpose back for
`return_sequences`, else Squeeze of Y_h (the last step's state). Its weights are W (1, G·U, F),
R (1, G·U, U) and B (1, 2·G·U) = [b_ih | b_hh], gates in ONNX's order (a permutation of the rows
of torch's parameters, which import undoes bit for bit), named `layers.i.W`, `.R`, `.B`.

Import reads one node per layer, layout 0 or 1 (batch first, which onnxruntime does not run), its
initial states and peepholes absent or zero (torch writes Expand or ConstantOfShape of 0 over
[1, batch, units]: `folding.Filled`). It follows the chain's tensor through the layout ops around
the node by naming its axes, batch N, time T, direction D, features F (`follow`): Transpose
permutes them; Squeeze, a Gather of index 0 or -1, or a Reshape that drops D and nothing else (its
target evaluated with the batch and an open time as symbols) removes D; a Gather of the last time
step (index -1, or T - 1) makes the recurrent layer before it `return_sequences = false`. Any
other node must read a batch-first tensor. Refused, naming the node: direction reverse or
bidirectional, clip, input_forget, what a kind's `Cell` refuses, a sequence_lens input, non-zero
initial states or peepholes (P), the cell state Y_c used, and Y and Y_h both used (a branch, as
torch writes h_n of an nn.LSTM with num_layers > 1; a chain of single-layer nodes, as it writes
that module's output, reads as stacked layers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.folding import filled
from harness.onnx.interface import AXIS_WORDS as WORDS
from harness.onnx.interface import Chain, Layer, Layout, Refused, axes_text, describe


@dataclass(frozen=True)
class Cell:
    """One recurrent kind in ONNX: its op, its gates in ONNX's order as torch's blocks (ONNX block k
    is torch block `to_onnx[k]`), the attributes it writes, and `settings(attrs)`: the layer settings
    its attributes give, refusing what torch's module cannot be. `states` are its inputs (index,
    name) that must be absent or zero; `cell_state`: its third output Y_c, refused when used."""

    kind: str
    op: str
    to_onnx: tuple[int, ...]
    attributes: Callable[[LayerSpec], dict[str, Any]]
    settings: Callable[[dict[str, Any]], dict[str, Any]]
    states: tuple[tuple[int, str], ...] = ((5, "initial_h"),)
    cell_state: bool = False

    @property
    def gates(self) -> int:
        return len(self.to_onnx)

    @property
    def from_onnx(self) -> tuple[int, ...]:
        """Torch's blocks as ONNX's: torch block k is ONNX block from_onnx[k]."""
        return tuple(int(k) for k in np.argsort(self.to_onnx))


def lower(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).lower()


def _gates(a: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The gate blocks of `a` (stacked along its first axis) in `order`."""
    return np.ascontiguousarray(a.reshape(len(order), -1, *a.shape[1:])[list(order)].reshape(a.shape))


# ---------------------------------------------------------------------------- export


def write(cell: Cell, g: Any, i: int, layer: LayerSpec, x: str) -> str:
    at = f"layers.{i}"
    order = cell.to_onnx
    p = g.tensors
    w = g.tensor(f"{at}.W", _gates(p[f"{at}.weight_ih_l0"], order)[None])
    r = g.tensor(f"{at}.R", _gates(p[f"{at}.weight_hh_l0"], order)[None])
    b = g.tensor(f"{at}.B", np.concatenate([_gates(p[f"{at}.bias_ih_l0"], order),
                                            _gates(p[f"{at}.bias_hh_l0"], order)])[None])
    attrs: dict[str, Any] = {"hidden_size": layer.get("units"), **cell.attributes(layer)}
    xt = g.node("Transpose", [x], f"{at}.x", f"{at}.time_major", perm=[1, 0, 2])
    if layer.get("return_sequences"):
        y = g.node(cell.op, [xt, w, r, b], [f"{at}.y"], at, **attrs)  # (T, 1, N, U)
        y = g.node("Squeeze", [y, g.tensor(f"{at}.direction", np.array([1]))], f"{at}.y_tnu", f"{at}.squeeze")
        return g.node("Transpose", [y], f"{at}.z", f"{at}.batch_first", perm=[1, 0, 2])
    g.node(cell.op, [xt, w, r, b], ["", f"{at}.y_h"], at, **attrs)  # Y_h (1, N, U): the last step's state
    return g.node("Squeeze", [f"{at}.y_h", g.tensor(f"{at}.direction", np.array([0]))], f"{at}.z", f"{at}.squeeze")


# ---------------------------------------------------------------------------- import: the nodes


def _check_attributes(cell: Cell, a: dict[str, Any]) -> dict[str, Any]:
    """The settings the node's attributes give, refusing what torch's modules cannot be."""
    direction = lower(a.get("direction", "forward"))
    if direction != "forward":
        raise Refused(f"direction = {direction}; only forward recurrent layers are supported (torch's "
                      "bidirectional=True or a reversed sequence is not a harness layer)")
    if "clip" in a:
        raise Refused(f"clip = {a['clip']} (the cell inputs clipped) is not supported; torch's layers do not clip")
    if a.get("input_forget", 0):
        raise Refused("input_forget = 1 (the input gate coupled to the forget gate) is not supported")
    return cell.settings(a)


def _zero(node: Any, i: int, what: str, chain: Chain) -> None:
    name = node.input[i] if i < len(node.input) else ""
    value = chain.consts.get(name)
    fill = filled(value)
    zero = value is not None and (fill.value == 0 if fill else value.dtype != object and not np.any(value))
    if name and not zero:
        raise Refused(f"its {what} ({name}) is not zero; a harness layer starts from a zero state" +
                      (" and has no peepholes" if what.startswith("peephole") else ""))


def _used(chain: Chain, name: str) -> bool:
    """Whether a node other than Shape (or the graph's output) reads `name`."""
    if not name:
        return False
    return name in chain.outputs or any(name in n.input and n.op_type != "Shape" for n in chain.graph.node)


def read(cell: Cell, node: Any, a: dict[str, Any], chain: Chain) -> Layer:
    """An RNN, LSTM or GRU node as a layer, its weights back in torch's names and gate order; the
    chain goes on from Y (every step) or Y_h (the last step), with their axes."""
    kind, gates = cell.kind, cell.gates
    settings = _check_attributes(cell, a)
    layout = a.get("layout", 0)
    want = ("T", "N", "F") if layout == 0 else ("N", "T", "F")
    if chain.shape is None or len(chain.shape) != 2:
        raise Refused(f"it takes sequences [batch, time, features], but its input has shape "
                      f"{[WORDS['N'], *chain.shape] if chain.shape else 'unknown'}")
    if chain.axes() != want:
        missing = " (a Transpose [1, 0, 2] before it is missing)" if layout == 0 else ""
        raise Refused(f"with layout = {layout} it reads X as {axes_text(want)}, but its input is "
                      f"{axes_text(chain.axes())}{missing}")
    if len(node.input) > 4 and node.input[4]:
        raise Refused(f"a sequence_lens input ({node.input[4]}: sequences of different lengths in one batch) is "
                      "not supported; every sequence of a batch runs its full length")
    for i, what in cell.states:
        _zero(node, i, what, chain)
    w, r = chain.const(node, 1), chain.const(node, 2)
    gu = w.shape[1] if w.ndim == 3 else -1
    units = int(a.get("hidden_size", r.shape[-1] if r.ndim == 3 else -1))
    if w.ndim != 3 or w.shape[0] != 1 or gu != gates * units or r.shape != (1, gu, units):
        raise Refused(f"W {list(w.shape)} and R {list(r.shape)} are not one direction's weights of {gates} "
                      f"gate(s) of hidden_size {units}: (1, {gates * units}, features) and "
                      f"(1, {gates * units}, {units})")
    b = chain.const(node, 3) if len(node.input) > 3 and node.input[3] else np.zeros((1, 2 * gu), w.dtype)
    if b.shape != (1, 2 * gu):
        raise Refused(f"B has shape {list(b.shape)}, W {list(w.shape)} needs [1, {2 * gu}]")
    order = cell.from_onnx
    params = {"weight_ih_l0": _gates(w[0], order), "weight_hh_l0": _gates(r[0], order),
              "bias_ih_l0": _gates(b[0, :gu], order), "bias_hh_l0": _gates(b[0, gu:], order)}
    outs = [*node.output, "", "", ""][:3]
    if cell.cell_state and _used(chain, outs[2]):
        raise Refused("its cell state Y_c is used; a harness network goes on from the hidden state only")
    y, y_h = _used(chain, outs[0]), _used(chain, outs[1])
    if y and y_h:
        raise Refused("its outputs Y (every step) and Y_h (the last step) are both used, a branch (as torch writes "
                      "h_n of an nn.LSTM with num_layers > 1: stack single-layer modules, or use the output's last "
                      "step)")
    if not (y or y_h):
        raise Refused("neither its output Y nor Y_h is used")
    labels = (("T", "D", "N", "F") if y else ("D", "N", "F")) if layout == 0 else \
             (("N", "T", "D", "F") if y else ("N", "D", "F"))
    return Layer(kind, {"units": units, "return_sequences": y, "init": "torch_default", **settings}, params,
                 output=outs[0] if y else outs[1], labels=labels)


def refusal(node: Any, chain: Chain) -> str:
    """The message for a node other than a recurrent one or a layout op on a tensor not batch first."""
    return (f"node {describe(node)} reads a tensor of axes {axes_text(chain.labels or ())}, "
            "not batch first; only an RNN, LSTM or GRU node and the Transpose, Squeeze, Reshape and "
            "Gather around it may (torch's dynamo exporter writes nn.RNN unrolled step by step, "
            "which is not read: export it with dynamo=False; torch writes nn.MultiheadAttention and "
            "nn.TransformerEncoderLayer as MatMul, Softmax and reshapes over [time, batch, features], which are not "
            "read either: the harness reads attention as its own export writes it, one nn_harness.SelfAttention node)")


# ---------------------------------------------------------------------------- import: the tensors around them


LAYOUT_OPS = ("Transpose", "Squeeze", "Reshape", "Gather")


def follow(node: Any, op: str, a: dict[str, Any], chain: Chain) -> tuple[str, ...] | None:
    """The axes of a layout op's output on a sequence tensor of the chain, or None for a node this
    does not handle (on a batch-first tensor it handles only Transpose, and Gather of the last step)."""
    if op not in LAYOUT_OPS:
        return None
    sequence = chain.shape is not None and len(chain.shape) == 2
    if chain.labels is None and not (op in ("Transpose", "Gather") and sequence):
        return None
    labels = chain.axes()
    if op == "Transpose":
        perm = [int(p) for p in a.get("perm", range(len(labels))[::-1])]
        if sorted(perm) != list(range(len(labels))):
            raise Refused(f"perm {perm} is not a permutation of the axes {axes_text(labels)}")
        return tuple(labels[p] for p in perm)
    if op == "Squeeze":
        axes = chain.axes_of(node, a)
        if axes is None:  # every axis of size 1: the direction, unless another is 1 too
            dims = chain.dims[chain.current]
            sizes = [chain.batch if label == "N" else d for d, label in zip(dims, labels, strict=True) if label != "D"]
            if 1 in sizes:
                raise Refused(f"a Squeeze without axes of {axes_text(labels)}, where more than the direction has "
                              "size 1")
            axes = tuple(j for j, label in enumerate(labels) if label == "D")
        axes = tuple(sorted(ax % len(labels) for ax in axes))
        if any(labels[ax] != "D" for ax in axes):
            raise Refused(f"it squeezes axes {list(axes)} of {axes_text(labels)}; only the direction axis may go")
        return tuple(label for j, label in enumerate(labels) if j not in axes)
    if op == "Reshape":
        return _reshape(node, a, labels, chain)
    return _gather(node, a, labels, chain)


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, np.integer)) else None


def _same(x: Any, y: Any) -> bool:
    """One size: the same symbol (the batch, an open time) or equal integers."""
    return x is y or (_int(x) is not None and _int(x) == _int(y))


def _reshape(node: Any, a: dict[str, Any], labels: tuple[str, ...], chain: Chain) -> tuple[str, ...]:
    """A Reshape that drops the direction axis (size 1) and nothing else: each entry of its target
    is that axis's size, the file's fixed batch, -1 (once), or 0 where the input has it."""
    dims = list(chain.dims[chain.current])
    target = list(chain.const(node, 1, symbolic=True).reshape(-1))
    kept = [j for j, label in enumerate(labels) if label != "D"]

    def fits(pos: int, t: Any, j: int) -> bool:
        if _int(t) == -1 or _same(t, dims[j]):
            return True
        if _int(t) == 0 and not a.get("allowzero", 0):
            return _same(dims[pos], dims[j])
        return labels[j] == "N" and chain.batch is not None and _int(t) == chain.batch

    if (len(target) != len(kept) or [_int(t) for t in target].count(-1) > 1
            or not all(fits(pos, t, j) for pos, (t, j) in enumerate(zip(target, kept, strict=True)))):
        raise Refused(f"a Reshape of {axes_text(labels)} {dims} to {target}; around a recurrent layer only one that "
                      "drops the direction axis is supported")
    return tuple(labels[j] for j in kept)


def _gather(node: Any, a: dict[str, Any], labels: tuple[str, ...], chain: Chain) -> tuple[str, ...]:
    """A Gather of one index along the direction axis, or of the last step along the time axis."""
    axis = int(a.get("axis", 0)) % len(labels)
    index = chain.const(node, 1)
    label = labels[axis]
    steps = chain.shape[0] if label == "T" else 1
    last = index.ndim == 0 and (int(index) == -1 or (steps > 0 and int(index) == steps - 1))
    if label not in ("T", "D") or not last:
        raise Refused(f"a Gather of index {index.tolist()} along the {WORDS[label]} axis of {axes_text(labels)}; only "
                      "the last time step (index -1) of a recurrent layer's output is supported")
    if label == "T":
        layer = chain.owner if chain.fresh else None
        if layer is None or layer.labels is None or not layer.settings["return_sequences"]:
            raise Refused("it takes the last time step of a tensor that is not a recurrent layer's output")
        layer.settings["return_sequences"] = False
        chain.shape = chain.shape[1:]
    return tuple(other for j, other in enumerate(labels) if j != axis)


def layout(readers: frozenset[str]) -> Layout:
    """The layout ops around the recurrent nodes `readers` (their ONNX ops)."""
    return Layout(follow, refusal, readers)
