"""PyTorch's side of the machine record: its BLAS and CPU kernel as its build reports them, and
its float32 GEMM (harness.machine asks for these by name, so that only this package imports torch)."""

from __future__ import annotations

import re

import numpy as np
import torch

from harness.machine import time_calls


def blas_record() -> dict[str, str]:
    """torch's BLAS, version, CPU kernel level and threads (MKL is linked statically, so
    threadpoolctl cannot see it), and its build."""
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    git = getattr(torch.version, "git_version", None)
    return {"blas.torch.library": blas.group(1) if blas else "unknown",
            "blas.torch.version": mkl.group(1) if mkl else "unknown",
            "blas.torch.kernel": torch.backends.cpu.get_cpu_capability(),
            "blas.torch.threads": str(torch.get_num_threads()),
            "build.torch": torch.__version__ + (f" (git {git[:10]})" if git else "")}


def gemm_seconds(a: np.ndarray, threads: int, repeats: int) -> list[float]:
    """Seconds of `repeats` products a·a (square, float32) by torch.mm on `threads` threads."""
    torch.set_num_threads(threads)
    t, c = torch.from_numpy(a), torch.empty(a.shape, dtype=torch.float32)
    return time_calls(lambda: torch.mm(t, t, out=c), repeats)
