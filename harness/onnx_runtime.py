"""Running a saved ONNX model with onnxruntime, as any user of the file would."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import ModelFileError

_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def session(path: str | Path):
    """An onnxruntime session on the CPU; a clear error for a file it cannot load."""
    import onnxruntime as ort

    from harness.scratch.onnx import read_model

    read_model(path)  # one clear message for missing, damaged and non-ONNX files
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        raise ModelFileError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None


def input_shape(sess) -> tuple[int | None, str]:
    """(width of the model's input or None when dynamic, its element type)."""
    info = sess.get_inputs()[0]
    width = info.shape[-1] if info.shape and isinstance(info.shape[-1], int) else None
    return width, info.type


def fixed_batch(sess) -> int | None:
    """The batch size a model was exported with when it is fixed (torch.onnx.export's default is 1), else None."""
    shape = sess.get_inputs()[0].shape
    return shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None


def predict_onnx(path_or_session, x: np.ndarray) -> np.ndarray:
    """The model's outputs for `x`, cast to the model's input type; refuses a width that does not fit.
    A model exported with a fixed batch size is run batch by batch at that size (the last batch
    padded with zeros, its padding dropped from the outputs)."""
    sess = session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    width, kind = input_shape(sess)
    if width is not None and x.shape[1] != width:
        raise ModelFileError(f"the model takes {width} inputs per sample, the data has {x.shape[1]}")
    x = np.ascontiguousarray(x, dtype=_TYPES.get(kind, np.float32))
    name = sess.get_inputs()[0].name
    batch = fixed_batch(sess)
    if batch is None or len(x) == batch:
        return sess.run(None, {name: x})[0]
    out = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *x.shape[1:]), dtype=x.dtype)])
        out.append(sess.run(None, {name: chunk})[0][:min(batch, len(x) - start)])
    return np.concatenate(out)
