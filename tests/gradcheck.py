"""Central finite differences in float64, for checking analytic gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, perturbing `x` in place (restored after)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| over the largest gradient magnitude, max |n|.

    Relative to the whole gradient rather than element by element: the rounding noise of
    a central difference is about 1e-16·|f|/eps everywhere, so a tiny element (a gelu far
    in its tail) would look wrong element-wise while being exact.
    """
    scale = max(float(np.max(np.abs(numeric))), float(np.max(np.abs(analytic))), 1e-12)
    return float(np.max(np.abs(analytic - numeric))) / scale
