"""The native checkpoint: one `.npz` of parameters with the network spec as JSON text.

Read with `allow_pickle=False`: a file that holds Python objects is refused, never run.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise ModelFileError(f"{path}: holds pickled Python objects, which are never loaded; "
                                 "re-save it with Network.save") from None
        raise ModelFileError(f"{path}: not a readable .npz checkpoint ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{path}: not a readable .npz checkpoint ({e}); truncated or not written by "
                             "Network.save") from None
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


def metadata(path: Path) -> dict[str, str]:
    """The metadata saved beside the parameters."""
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f[META_KEY])) if META_KEY in f.files else {}
