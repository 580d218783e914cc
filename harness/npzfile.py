"""Reading a `.npz` file that may lie. Every member is checked before any is read: it must be a
`.npy` array (a header NumPy can read, no pickled objects) whose header promises no more bytes
than the member holds; the members together may hold at most `max_bytes`; and the caller's
`check` may refuse a member by its name, shape and dtype (an unknown name, a dtype it does not
take). Only then are the arrays read, each by its own header, never through `np.load`'s
fallbacks (which serve a member without the `.npy` suffix, or raw bytes)."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

MAX_BYTES = 2 * 1024**3
MAX_MEMBERS = 10_000


class NpzError(ValueError):
    """The file is not a sound .npz: the message says why."""


# (name without .npy, shape, dtype) -> why the member is refused, or None
Check = Callable[[str, tuple[int, ...], np.dtype], str | None]


def read(path: Path, max_bytes: int = MAX_BYTES, check: Check | None = None) -> dict[str, np.ndarray]:
    """Every array of the archive, by name (without '.npy'). Refuses, before reading any array, a member
    that is not a `.npy` array, whose header promises more bytes than it holds, an object dtype, members
    past `max_bytes` together, whatever `check` refuses, and a damaged archive."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            if len(members) > MAX_MEMBERS:
                raise NpzError(f"{len(members):,} members; a .npz read here has at most {MAX_MEMBERS:,}")
            total = sum(info.file_size for info in members)
            if total > max_bytes:
                raise NpzError(f"its members hold {total:,} bytes together, more than the {max_bytes:,} allowed")
            for info in members:
                _check(z, info, check)
            return {info.filename[:-4]: _array(z, info) for info in members}
    except NpzError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, NotImplementedError) as e:
        raise NpzError(f"not a readable .npz file ({type(e).__name__}: {e})") from None


def _header(f) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                       else np.lib.format.read_array_header_2_0(f))
    return shape, dtype


def _check(z: zipfile.ZipFile, info: zipfile.ZipInfo, check: Check | None) -> None:
    name = info.filename
    if not name.endswith(".npy"):
        raise NpzError(f"member {name[:80]!r} is not a .npy array; a .npz holds only .npy members")
    with z.open(info) as f:
        shape, dtype = _header(f)
        header = f.tell()
    if dtype.hasobject:
        raise NpzError(f"{name} holds pickled Python objects, which are never loaded")
    promised = math.prod(shape) * dtype.itemsize
    if header + promised > info.file_size:
        raise NpzError(f"{name}'s header promises shape {shape} of {dtype} ({promised:,} bytes); "
                       f"the archive holds {info.file_size - header:,}")
    why = check(name[:-4], shape, dtype) if check else None
    if why:
        raise NpzError(f"{name[:-4][:80]!r} ({dtype}, shape {shape}): {why}")


def _array(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with z.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)
