"""Reading a `.npz` file that may lie: every member's header is checked against the bytes the
archive really holds before anything is allocated, and pickled objects are never loaded."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np


class NpzError(ValueError):
    """The file is not a sound .npz: the message says why."""


def read(path: Path, max_bytes: int = 2 * 1024**3) -> dict[str, np.ndarray]:
    """Every array of the archive, by name (without '.npy'). Refuses a member whose header promises
    more bytes than it holds or than `max_bytes`, an object dtype, and a damaged archive."""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(f))
                if dtype.hasobject:
                    raise NpzError(f"{info.filename} holds pickled Python objects, which are never loaded")
                promised = math.prod(shape) * dtype.itemsize
                if promised > min(info.file_size, max_bytes):
                    raise NpzError(f"{info.filename}'s header promises shape {shape} of {dtype} ({promised:,} bytes); "
                                   f"the archive holds {info.file_size:,}")
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except NpzError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise NpzError(f"not a readable .npz file ({type(e).__name__}: {e})") from None
