"""The machine a figure was measured on: CPU, cores, each library's BLAS and kernel, the
environment variables that change kernels, and the libraries' versions and builds.

Every run, bench and perf records this (`record()`, flat string tags). Two machines of the
same kind can differ by an environment variable alone (`OPENBLAS_CORETYPE=Haswell` held one
machine's float32 GEMM to 237 GFLOP/s where its native kernel reached 431), so the record
names the variables, and `gemm_gflops` can measure a library's peak in a subprocess with
those overrides removed (`native_env`), beside the figure the environment forces. Nothing
here changes the variables of the calling process.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables that pick or limit a BLAS/OpenMP kernel or thread pool. A prefix ends with "_".
KERNEL_VARIABLES = ("OPENBLAS_", "GOTO_", "MKL_", "OMP_", "KMP_", "BLIS_", "ATEN_CPU_CAPABILITY",
                    "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "DNNL_", "ONEDNN_")
# Of those, the ones that force a kernel other than the one the library would pick itself.
KERNEL_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE_CORETYPE", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
                    "MKL_CBWR", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES", "DNNL_MAX_CPU_ISA",
                    "ONEDNN_MAX_CPU_ISA")
# Set by libraries when imported, not by the user: threadpoolctl and scikit-learn set
# KMP_DUPLICATE_LIB_OK (two OpenMP runtimes may coexist), joblib and scikit-learn KMP_INIT_AT_FORK.
NOT_RECORDED = ("KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK")
GEMM_N = 2048


def kernel_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel-changing variables that are set, by name."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in sorted(environ.items()) if k not in NOT_RECORDED
            and any(k == p or (p.endswith("_") and k.startswith(p)) for p in KERNEL_VARIABLES)}


def forced_kernels(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The set variables that force a kernel (a `native_env` figure is worth measuring beside them)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in KERNEL_OVERRIDES if environ.get(k)}


def native_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without the kernel overrides, for a subprocess."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in KERNEL_OVERRIDES}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def usable_cores() -> int:
    """Cores this process may run on (its affinity), which a CPU % is bounded by."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return os.cpu_count() or 1


def cores() -> dict[str, str]:
    import psutil

    return {"machine.cores_logical": str(os.cpu_count()),
            "machine.cores_physical": str(psutil.cpu_count(logical=False)),
            "machine.cores_usable": str(usable_cores())}


def numpy_blas() -> dict[str, str]:
    """NumPy's BLAS as loaded in this process: library, version, kernel architecture, threads."""
    import numpy as np
    from threadpoolctl import threadpool_info

    out = {"blas.numpy.library": "unknown"}
    numpy_dir = Path(np.__file__).resolve().parent.parent
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and Path(pool["filepath"]).resolve().is_relative_to(numpy_dir):
            out = {"blas.numpy.library": str(pool.get("internal_api")), "blas.numpy.version": str(pool.get("version")),
                   "blas.numpy.kernel": str(pool.get("architecture", "unknown")),
                   "blas.numpy.threads": str(pool.get("num_threads")),
                   "blas.numpy.threading": str(pool.get("threading_layer", "unknown"))}
            break
    with contextlib.suppress(Exception):
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["build.numpy.blas"] = str(blas.get("openblas configuration") or blas.get("name"))
    return out


def versions(packages: Iterable[str] = ("numpy", "torch", "onnx", "onnxruntime", "mlflow", "scikit-learn")
             ) -> dict[str, str]:
    out = {"version.python": platform.python_version()}
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[f"version.{package}"] = importlib.metadata.version(package)
    return out


def record(libraries: Iterable[str] | None = None) -> dict[str, str]:
    """The machine record as flat tags; `libraries` names whose BLAS to describe ("numpy", "torch";
    by default NumPy's, and torch's if this process has imported it). Call it in the process that
    measures, after its threads are pinned: the BLAS and its threads are per process."""
    if libraries is None:
        libraries = ("numpy", "torch") if "torch" in sys.modules else ("numpy",)
    out = {"machine.cpu": cpu_model(), "machine.platform": platform.platform(), **cores(), **versions()}
    flags = cpu_flags()
    out["machine.simd"] = ",".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
    for lib in libraries:
        out.update(numpy_blas() if lib == "numpy" else _library(lib).blas_record())
    env = kernel_environment()
    out.update({f"env.{k}": v for k, v in env.items()})
    out["env.kernel_overrides"] = ",".join(f"{k}={v}" for k, v in forced_kernels().items()) or "none"
    return out


def summary(tags: Mapping[str, str]) -> str:
    """One paragraph naming the machine from a record: what a results file starts with."""
    def lib(name: str) -> str:
        if f"blas.{name}.library" not in tags:
            return ""
        threads = tags.get(f"blas.{name}.threads")
        return (f"{name} {tags.get(f'version.{name}', '?')} on {tags[f'blas.{name}.library']} "
                f"{tags.get(f'blas.{name}.version', '?')} (kernel {tags.get(f'blas.{name}.kernel', '?')}"
                + (f", {threads} thread{'s' * (threads != '1')})" if threads else ")"))

    libs = "; ".join(x for x in (lib("numpy"), lib("torch")) if x)
    env = {k.removeprefix("env."): v for k, v in tags.items() if k.startswith("env.") and k != "env.kernel_overrides"}
    return (f"{tags.get('machine.cpu', '?')} ({tags.get('machine.cores_usable', '?')} usable of "
            f"{tags.get('machine.cores_logical', '?')} logical cores, {tags.get('machine.cores_physical', '?')} "
            f"physical; SIMD {tags.get('machine.simd') or 'none listed'}); {libs}; kernel-changing variables: "
            + (", ".join(f"`{k}={v}`" for k, v in env.items()) or "none set")
            + f"; kernel overrides: {tags.get('env.kernel_overrides', '?')}; Python {tags.get('version.python', '?')}.")


# ---------------------------------------------------------------------------- GEMM peak


# library -> the module that describes and times it; imported only when asked for, so that the
# machine record never imports torch itself (harness.reference is the only package that does)
LIBRARIES = {"torch": "harness.reference.build"}


def _library(name: str):
    import importlib

    return importlib.import_module(LIBRARIES[name])


def time_calls(fn, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after one untimed call (first-touch page faults,
    thread start-up)."""
    import time

    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def gemm_gflops(library: str, threads: int, repeats: int = 5) -> list[float]:
    """float32 GFLOP/s of a GEMM_N-square matmul in `library` ("numpy" or "torch"), `repeats` times,
    on `threads` threads, in this process."""
    import numpy as np

    a = np.random.default_rng(0).random((GEMM_N, GEMM_N), dtype=np.float32)
    if library == "numpy":
        from threadpoolctl import threadpool_limits

        c = np.empty_like(a)
        with threadpool_limits(threads):
            seconds = time_calls(lambda: np.matmul(a, a, out=c), repeats)
    else:
        seconds = _library(library).gemm_seconds(a, threads, repeats)
    return [2 * GEMM_N**3 / s / 1e9 for s in seconds]


def gemm_in_subprocess(library: str, threads: int, repeats: int = 5, native: bool = False) -> list[float]:
    """`gemm_gflops` in a fresh interpreter; with `native`, its environment lacks the kernel overrides."""
    env = native_env() if native else dict(os.environ)
    cmd = [sys.executable, "-m", "harness.machine", library, str(threads), str(repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # python -m harness.machine LIBRARY THREADS REPEATS: GFLOP/s as JSON
    print(json.dumps(gemm_gflops(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
