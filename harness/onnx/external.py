"""Tensors an ONNX file keeps in other files (external data), wherever they sit: initializers, sparse
tensors, node attributes (a Constant's value, ConstantOfShape's), subgraphs and functions.

Every file a model names is read from the model's own folder: a plain relative path, never an
absolute one, never through `..` or a link, a regular file, and exactly the bytes the tensor's
shape and type say, within the file. `check` says so of every tensor before anything (onnxruntime
included) reads one; `inline` then reads them into the model, so that nothing later reads a file
relative to the current directory (onnx does, for a tensor that is not an initializer).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.onnx.interface import Refused

MAX_BYTES = 2 * 1024**3  # one tensor's data, as npzfile allows one archive
MISSING = ("its weights are stored outside it and cannot be read ({why}); torch.onnx.export writes them to a .data "
           "file beside the model: keep the two together, or export with external_data=False")


def tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of the model, sparse tensors' values and indices included."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node: Any) -> Iterator[Any]:
    for a in node.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        for sparse in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
            yield from (sparse.values, sparse.indices)
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            yield from _graph_tensors(g)


def _external(tensor: Any) -> bool:
    from onnx import TensorProto

    return tensor.HasField("data_location") and tensor.data_location == TensorProto.EXTERNAL


def check(model: Any, folder: Path) -> None:
    """Refuse (one `Refused` naming the tensor) any external data that is not a sound file of the folder."""
    for tensor in tensors(model):
        if _external(tensor):
            _span(tensor, folder)


def inline(model: Any, folder: Path) -> None:
    """Read every tensor's external data into the model (checked first), as if the file had held it."""
    from onnx import TensorProto

    for tensor in tensors(model):
        if not _external(tensor):
            continue
        target, offset, length = _span(tensor, folder)
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise Refused(f"tensor {tensor.name!r}: its data file {target.name} changed while it was read")
        tensor.raw_data = data
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]


def _span(tensor: Any, folder: Path) -> tuple[Path, int, int]:
    """The file, offset and length of a tensor's external data, each checked."""
    from onnx import helper

    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    parts = location.replace("\\", "/").split("/")
    where = f"tensor {tensor.name!r} keeps its data in {location!r}"
    if location.startswith(("/", "\\")) or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise Refused(f"{where}: a model's files are read from its own folder only (a relative path without "
                      "'..'), never from elsewhere")
    target = folder
    for part in parts:
        target = target / part
        if target.is_symlink():
            raise Refused(f"{where}: {target.name} is a link; a model's files are read from its own folder only, "
                          "never through a link")
    if not target.exists():
        raise Refused(MISSING.format(why=f"no file {location!r} beside it"))
    if not target.is_file():
        raise Refused(f"{where}, which is not a regular file")
    try:
        offset, length = int(info.get("offset", 0)), info.get("length")
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (ValueError, KeyError, TypeError):
        raise Refused(f"{where}, with an offset, a length or a type that cannot be read") from None
    size = target.stat().st_size
    length = size - offset if length is None else int(length)
    need = math.prod(tensor.dims) * itemsize
    if offset < 0 or length < 0 or offset + length > size:
        raise Refused(f"{where} at bytes {offset:,} to {offset + length:,}, beyond the file's {size:,}")
    if length != need or need > MAX_BYTES:
        raise Refused(f"{where}: {length:,} bytes for a tensor of shape {list(tensor.dims)} that needs {need:,}"
                      + (f", more than the {MAX_BYTES:,} a tensor may have" if need > MAX_BYTES else ""))
    return target, offset, length
