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


def predict_onnx(path_or_session, x: np.ndarray) -> np.ndarray:
    """The model's outputs for `x`, cast to the model's input type; refuses a width that does not fit."""
    sess = session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    width, kind = input_shape(sess)
    if width is not None and x.shape[1] != width:
        raise ModelFileError(f"the model takes {width} inputs per sample, the data has {x.shape[1]}")
    x = np.ascontiguousarray(x, dtype=_TYPES.get(kind, np.float32))
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]
