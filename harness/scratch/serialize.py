"""The native checkpoint: one `.npz` of parameters with the network spec as JSON text.

Read with `allow_pickle=False`: a file that holds Python objects is refused, never run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness import npzfile
from harness.errors import ModelFileError, SpecError
from harness.spec import network_from_dict, network_to_dict

if TYPE_CHECKING:
    from harness.scratch.network import Network

SPEC_KEY = "__network__"
META_KEY = "__metadata__"


def save(net: Network, path: Path, metadata: dict[str, str]) -> Path:
    if path.suffix != ".npz":
        raise ModelFileError(f"{path}: native checkpoints end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(net.parameters())
    arrays[SPEC_KEY] = np.array(json.dumps({"dtype": str(net.dtype), **network_to_dict(net.spec)}))
    arrays[META_KEY] = np.array(json.dumps(metadata))
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def load(path: Path) -> Network:
    from harness.scratch.network import Network

    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    arrays = _arrays(path)
    if SPEC_KEY not in arrays:
        raise ModelFileError(f"{path}: no network spec inside (key {SPEC_KEY}); not written by Network.save")
    try:
        head = json.loads(str(arrays.pop(SPEC_KEY)))
        arrays.pop(META_KEY, None)
        dtype = head.pop("dtype")
        spec = network_from_dict(head, source=str(path))
        return Network(spec, arrays, dtype=dtype)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ModelFileError(f"{path}: the network spec inside is damaged ({e})") from None
    except (SpecError, ValueError) as e:
        raise ModelFileError(f"{path}: {e}") from None


def _arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return npzfile.read(path)
    except npzfile.NpzError as e:
        hint = "re-save it with Network.save" if "pickled" in str(e) else "truncated or not written by Network.save"
        raise ModelFileError(f"{path}: {e}; {hint}") from None


def metadata(path: Path) -> dict[str, str]:
    """The metadata saved beside the parameters ({} where there is none or it is not a JSON object)."""
    arrays = _arrays(path)
    try:
        meta = json.loads(str(arrays[META_KEY])) if META_KEY in arrays else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
