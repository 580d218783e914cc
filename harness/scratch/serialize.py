"""The native checkpoint: one `.npz` of a network's tensors (by name) with its spec and dtype as
JSON text. Engine-neutral: it writes and reads (spec, tensors, dtype); `Network.save` and
`Network.load` build on it.

Read with `allow_pickle=False`: a file that holds Python objects is refused, never run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from harness import npzfile
from harness.errors import ModelFileError, SpecError, usable_path
from harness.spec import DTYPES, NetworkSpec, network_from_dict, network_to_dict
from harness.spec.tables import read_json

SPEC_KEY = "__network__"
META_KEY = "__metadata__"
TENSOR_NAME = re.compile(r"layers\.\d{1,6}\.[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_TEXT = 1024 * 1024  # characters of the spec or the metadata


def save(spec: NetworkSpec, tensors: dict[str, np.ndarray], dtype: str | np.dtype, path: Path,
         metadata: dict[str, str]) -> Path:
    """Write `tensors` with `spec`, `dtype` and `metadata` to the `.npz` file `path` (atomically)."""
    if path.suffix != ".npz":
        raise ModelFileError(f"{path}: native checkpoints end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(tensors)
    arrays[SPEC_KEY] = np.array(json.dumps({"dtype": str(np.dtype(dtype)), **network_to_dict(spec)}))
    arrays[META_KEY] = np.array(json.dumps(metadata))
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def load(path: Path) -> tuple[NetworkSpec, dict[str, np.ndarray], str]:
    """The spec, tensors and dtype of the checkpoint at `path`; one `ModelFileError` for a file that
    is missing, damaged, or not written by `Network.save`."""
    usable_path(path, "model file", ModelFileError)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    arrays = _arrays(path)
    if SPEC_KEY not in arrays:
        raise ModelFileError(f"{path}: no network spec inside (key {SPEC_KEY}); not written by Network.save")
    try:
        head = read_json(str(arrays.pop(SPEC_KEY)))
        arrays.pop(META_KEY, None)
        dtype = head.pop("dtype")
        if dtype not in DTYPES:
            raise ModelFileError(f"{path}: its network's dtype is {str(dtype)[:40]!r}; a network is "
                                 f"{' or '.join(DTYPES)}")
        spec = network_from_dict(head, source=str(path))
        return spec, arrays, dtype
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ModelFileError(f"{path}: the network spec inside is damaged ({e})") from None
    except (SpecError, ValueError) as e:
        raise ModelFileError(f"{path}: {e}") from None


def _member(name: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """Why a member is not one Network.save writes: its spec and metadata as one string each, tensors
    of real numbers by their `layers.i.name`."""
    if name in (SPEC_KEY, META_KEY):
        if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * MAX_TEXT:
            return f"must be one string of at most {MAX_TEXT:,} characters"
    elif not TENSOR_NAME.fullmatch(name):
        return f"not a name Network.save writes ({SPEC_KEY}, {META_KEY}, layers.<i>.<tensor>)"
    elif dtype.kind not in "fiub":
        return "a tensor must hold real numbers"
    return None


def _arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return npzfile.read(path, check=_member)
    except npzfile.NpzError as e:
        hint = "re-save it with Network.save" if "pickled" in str(e) else "truncated or not written by Network.save"
        raise ModelFileError(f"{path}: {e}; {hint}") from None


def metadata(path: Path) -> dict[str, str]:
    """The metadata saved beside the parameters ({} where there is none or it is not a JSON object)."""
    arrays = _arrays(path)
    try:
        meta = read_json(str(arrays[META_KEY])) if META_KEY in arrays else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
