"""Shape-program folding: the constants of a graph and the small integer programs around its layers.

Exporters write a Reshape's target, or a recurrent layer's zero initial state, as a program on the
data's shape (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast, Transpose, Mul, Reshape,
Expand, ConstantOfShape). They are evaluated here on constants, with the batch size and an open
time length as symbols (`BATCH`, `TIME`): a value that depends on them is an object array. The
Expand or ConstantOfShape of one value over a shape that depends on the batch is kept as a
`Filled` of that value.

Nothing here trusts a shape: an op that can make more values than it is given (Expand,
ConstantOfShape, Mul's broadcasting, Gather, Concat) has its output's size computed first and
bounded by `MAX_VALUES`, dead nodes off the chain included, before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.onnx.interface import Refused, describe, squeeze_axes


class Symbol:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MAX_VALUES = 2**24  # a value computed in the graph: far above any exporter's shape program, far below memory
BATCH = Symbol("batch")  # the batch size in shape arithmetic: unknown until the model runs
TIME = Symbol("time")  # a sequence length the file leaves open


@dataclass(frozen=True)
class Filled:
    """A tensor of one value whose shape depends on the batch, as exporters write a zero initial
    state: Expand(0, [1, batch, units]). Kept among the walk's constants as a 0-d object array."""

    value: float


KEEP_FILLED = {"Identity", "Slice", "Squeeze", "Unsqueeze", "Reshape", "Expand", "Transpose"}  # ops it goes through


def bounded(dims: Any) -> int:
    """The number of values of a tensor of shape `dims` (a symbol counts 1); a ValueError past `MAX_VALUES`."""
    n = math.prod(1 if isinstance(d, Symbol) else int(d) for d in dims)
    if n > MAX_VALUES:
        raise ValueError(f"it would make {n:,} values; a value computed in the graph may have at most {MAX_VALUES:,}")
    return n


def filled(x: Any) -> Filled | None:
    if isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 0 and isinstance(x.item(), Filled):
        return x.item()
    return None


def _fill(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """`x` broadcast over `shape`; over a shape that depends on the batch, the `Filled` of its one value."""
    if shape.dtype != object:
        out = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
        bounded(out)
        return np.broadcast_to(x, out).copy()
    if x.dtype == object or x.size == 0 or not np.all(x == x.reshape(-1)[0]):
        raise ValueError("it expands values that differ (or depend on the batch) over a shape that depends on "
                         "the batch")
    return np.array(Filled(x.reshape(-1)[0].item()), dtype=object)


def _expand(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    return _fill(xs[0], xs[1].reshape(-1))


def _constant_of_shape(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    value = array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return _fill(value.reshape(-1)[:1], xs[0].reshape(-1))


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


def _cast(node: Any, a: dict[str, Any], xs: list[np.ndarray]) -> np.ndarray:
    from onnx import helper

    return xs[0] if xs[0].dtype == object else xs[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))


# op -> its value from constant (or batch-symbolic) inputs
FOLD: dict[str, Callable[[Any, dict[str, Any], list[np.ndarray]], np.ndarray]] = {
    "Identity": lambda n, a, xs: xs[0],
    "Cast": _cast,
    "Transpose": lambda n, a, xs: np.transpose(xs[0], a.get("perm")),
    "Shape": lambda n, a, xs: np.array(xs[0].shape, dtype=np.int64)[a.get("start", 0):a.get("end")],
    "Gather": lambda n, a, xs: np.take(xs[0], xs[1], axis=a.get("axis", 0)),
    "Unsqueeze": lambda n, a, xs: np.expand_dims(xs[0], squeeze_axes(n, a, xs)),
    "Squeeze": lambda n, a, xs: np.squeeze(xs[0], squeeze_axes(n, a, xs)),
    "Concat": lambda n, a, xs: np.concatenate([np.reshape(x, -1) if x.ndim == 0 else x for x in xs], a["axis"]),
    "Slice": lambda n, a, xs: (_slice(xs[0], *xs[1:]) if len(xs) > 1 else
                               _slice(xs[0], a["starts"], a["ends"], a.get("axes"))),
    "Mul": lambda n, a, xs: np.multiply(xs[0], xs[1]),
    "Reshape": lambda n, a, xs: _reshape_const(xs[0], xs[1], a.get("allowzero", 0)),
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
}


def _gathered(x: np.ndarray, indices: np.ndarray, axis: int) -> tuple[int, ...]:
    return (*x.shape[:axis % max(x.ndim, 1)], *indices.shape, *x.shape[axis % max(x.ndim, 1) + 1:])


# op -> the shape of its output, for the ops that can make more values than they are given (Expand and
# ConstantOfShape bound theirs in `_fill`, where the shape's symbols are known)
GROWS: dict[str, Callable[[dict[str, Any], list[np.ndarray]], tuple[int, ...]]] = {
    "Mul": lambda a, xs: np.broadcast_shapes(xs[0].shape, xs[1].shape),
    "Gather": lambda a, xs: _gathered(xs[0], xs[1], a.get("axis", 0)),
    "Concat": lambda a, xs: (sum(x.size for x in xs),),
}


def fold(node: Any, a: dict[str, Any], consts: dict[str, np.ndarray]) -> np.ndarray:
    """The value of a node whose inputs are all constants (or batch-symbolic)."""
    op = node.op_type
    if op not in FOLD:
        raise Refused(f"unsupported node {describe(node)} on constants")
    values = [consts[x] if x else None for x in node.input]
    if values and filled(values[0]) and op in KEEP_FILLED:
        return values[0]
    try:
        if op in GROWS:
            bounded(GROWS[op](a, values))
        return np.asarray(FOLD[op](node, a, values))
    except (ValueError, IndexError, KeyError, TypeError) as e:  # NumPy's words for a bad axis or index
        raise Refused(f"node {describe(node)} cannot be evaluated ({e})") from None


def shape_of(a: dict[str, Any], dims: list[Any]) -> np.ndarray:
    """A Shape node on a data tensor of full shape `dims` (with the batch and time symbols)."""
    return np.array(dims, dtype=object)[a.get("start", 0):a.get("end")]


def array(tensor: Any) -> np.ndarray:
    """A TensorProto's value (its external data already read: external.py); one `Refused` for data that
    does not fill its shape."""
    from onnx import numpy_helper

    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as e:
        raise Refused(f"tensor {tensor.name!r} of shape {list(tensor.dims)} cannot be read ({e})") from None


def constant(node: Any, a: dict[str, Any]) -> np.ndarray:
    """The value of a Constant node."""
    if "value" in a:
        return array(a["value"])
    for key, dtype in (("value_int", np.int64), ("value_ints", np.int64), ("value_float", np.float32),
                       ("value_floats", np.float32)):
        if key in a:
            return np.array(a[key], dtype=dtype)
    raise Refused(f"Constant {describe(node)} holds a {', '.join(a)}, which is not read")
