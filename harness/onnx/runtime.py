"""Running a saved ONNX model with onnxruntime, as any user of the file would.

onnxruntime computes every node on constants when it loads a file, live nodes and those it keeps
for outputs alike: a node that would make more than `folding.MAX_VALUES` values that way (an Expand
or ConstantOfShape over [65536, 65536], a few hundred bytes of file) is refused before onnxruntime
sees the file, from the shapes onnx infers without computing anything.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.errors import ModelFileError
from harness.onnx.folding import MAX_VALUES

_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}  # int64: token ids


def session(path: str | Path):
    """An onnxruntime session on the CPU; a clear error for a file it cannot load."""
    import onnxruntime as ort

    from harness.onnx.read import read_model

    model = read_model(path)  # one clear message for missing, damaged and non-ONNX files, and files outside
    constant_sizes(model, path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        raise ModelFileError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None


def constant_sizes(model, path: str | Path) -> None:
    """Refuse a node on constants alone whose output onnx's shape inference cannot size, or sizes past
    `MAX_VALUES` values (what onnxruntime would allocate when it folds constants on loading)."""
    from onnx import shape_inference

    from harness.onnx.interface import describe

    g = model.graph
    constant = {t.name for t in g.initializer} | {""}
    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {v.name: v.type.tensor_type.shape for v in [*inferred.value_info, *inferred.output]}
    for node in g.node:
        if not all(x in constant for x in node.input):
            continue
        for name in node.output:
            dims = shapes[name].dim if name in shapes else None
            if dims is None or not all(d.HasField("dim_value") for d in dims):
                raise ModelFileError(f"{path}: node {describe(node)} computes a constant whose size cannot be known "
                                     "before onnxruntime makes it")
            values = math.prod(d.dim_value for d in dims)
            if values > MAX_VALUES:
                raise ModelFileError(f"{path}: node {describe(node)} would make a constant of {values:,} values when "
                                     f"onnxruntime loads it; a value computed in the graph may have at most "
                                     f"{MAX_VALUES:,}")
            constant.add(name)


def sample_shape(sess) -> tuple[int | None, ...] | None:
    """The shape of one sample the model takes, its batch dimension left out (None for a size
    the file leaves dynamic), or None when the file states no shape at all."""
    shape = sess.get_inputs()[0].shape
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape[1:]) if shape else None


def fit_samples(x: np.ndarray, dims: tuple[int | None, ...] | None) -> np.ndarray:
    """`x` with its samples in the model's shape: flat rows of an image model (MNIST's 784) are
    reshaped to [channels, height, width], images to flat rows for a flat model, flat rows of a
    sequence model of open length (dims [None or 0, features]) to steps of its features; data
    with another number of values per sample gets one line saying both shapes."""
    if x.ndim < 2:
        raise ModelFileError(f"the data has shape {list(x.shape)}; it needs one sample per row")
    dims = None if dims is None else tuple(d or None for d in dims)  # 0: a time length left open
    have = x.shape[1:]
    if dims is None or (len(dims) == len(have) and all(d in (None, h) for d, h in zip(dims, have, strict=True))):
        return x
    if dims == (None,):  # a flat model of open width: flat rows, whatever their width
        return x.reshape(len(x), -1)
    if None not in dims and math.prod(dims) == math.prod(have):
        return x.reshape(len(x), *dims)
    if len(dims) == 2 and dims[0] is None and dims[1] and len(have) == 1 and have[0] and have[0] % dims[1] == 0:
        return x.reshape(len(x), -1, dims[1])
    raise ModelFileError(shape_mismatch(dims, have))


def shape_mismatch(dims: tuple[int | None, ...], have: tuple[int, ...]) -> str:
    """One line: what the model takes per sample, and what the data has."""
    data = f"{math.prod(have):,} features" if len(have) == 1 else f"samples of shape {list(have)}"
    if len(dims) == 1:
        return f"the model takes {dims[0]} inputs per sample, the data has {math.prod(have)}"
    shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    if None in dims:
        return f"the model takes samples of shape {shown}, with sizes the file leaves open; the data has {data}"
    return f"the model takes samples of shape {shown} ({math.prod(dims):,} values), the data has {data}"


def fixed_batch(sess) -> int | None:
    """The batch size a model was exported with when it is fixed (torch.onnx.export's default is 1), else None."""
    shape = sess.get_inputs()[0].shape
    return shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None


def model_input(path_or_session, x: np.ndarray) -> np.ndarray:
    """`x` as the model takes it: shaped as its samples (`fit_samples`) and cast to its input type
    (float ids to int64 for a model that starts with an embedding, refused when they are not whole)."""
    sess = session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    x = fit_samples(np.asarray(x), sample_shape(sess))
    dtype = _TYPES.get(sess.get_inputs()[0].type, np.float32)
    if dtype == np.int64 and x.dtype.kind == "f" and not np.array_equal(x, np.trunc(x)):
        raise ModelFileError("the model takes integer token ids, the data holds other numbers (or NaN)")
    return np.ascontiguousarray(x, dtype=dtype)


def predict_onnx(path_or_session, x: np.ndarray) -> np.ndarray:
    """The model's outputs for `x`, cast to the model's input type and shaped as its samples
    (`fit_samples`: MNIST's flat rows become [1, 28, 28] for a CNN). A model exported with a
    fixed batch size is run batch by batch at that size (the last batch padded with zeros, its
    padding dropped from the outputs)."""
    sess = session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    x = model_input(sess, x)
    name = sess.get_inputs()[0].name
    batch = fixed_batch(sess)
    if batch is None or len(x) == batch:
        return _run(sess, name, x)
    out = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *x.shape[1:]), dtype=x.dtype)])
        out.append(_run(sess, name, chunk)[:min(batch, len(x) - start)])
    return np.concatenate(out)


def _run(sess, name: str, x: np.ndarray) -> np.ndarray:
    """One run; a failure of onnxruntime's kernels (its LSTM and GRU take no float64) in one line,
    which onnxruntime is kept from logging to stderr itself."""
    import onnxruntime as ort

    quiet = ort.RunOptions()
    quiet.log_severity_level = 4
    try:
        return sess.run(None, {name: x}, quiet)[0]
    except Exception as e:  # onnxruntime's own exception types
        raise ModelFileError(f"onnxruntime cannot run it ({str(e).splitlines()[0]})") from None
