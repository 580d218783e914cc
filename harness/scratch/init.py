"""Initial parameters, drawn from `numpy.random.Generator(seed)`.

Each initializer draws a (fan_out, fan_in) weight matrix and a (fan_out,) bias, layer
after layer, weight before bias, always in float64 so that the float32 and float64
runs of one seed start from the same numbers (rounded once to the run's dtype).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from harness.errors import SpecError, unknown_name

Draw = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


def xavier_uniform(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W ~ U(-b, b), b = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); bias 0."""
    bound = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_out, fan_in)), np.zeros(fan_out)


def xavier_normal(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W ~ N(0, σ²), σ = √(2 / (fan_in + fan_out)); bias 0."""
    std = math.sqrt(2 / (fan_in + fan_out))
    return rng.normal(0, std, (fan_out, fan_in)), np.zeros(fan_out)


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W ~ U(-b, b), b = √(6 / fan_in) (He et al. 2015, for ReLU); bias 0."""
    bound = math.sqrt(6 / fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), np.zeros(fan_out)


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W ~ N(0, σ²), σ = √(2 / fan_in); bias 0."""
    return rng.normal(0, math.sqrt(2 / fan_in), (fan_out, fan_in)), np.zeros(fan_out)


def uniform01(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W and bias ~ U(0, 1), as the classic perceptron tutorial draws them."""
    return rng.uniform(0, 1, (fan_out, fan_in)), rng.uniform(0, 1, fan_out)


def torch_default(rng: np.random.Generator, fan_in: int, fan_out: int):
    """W and bias ~ U(-1/√fan_in, 1/√fan_in), the law of torch.nn.Linear's own initialisation."""
    bound = 1 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)


INITIALIZERS: dict[str, Draw] = {
    f.__name__: f for f in (xavier_uniform, xavier_normal, he_uniform, he_normal, uniform01, torch_default)
}


def initial_parameters(sizes: list[int], init: str, seed: int, dtype: str | np.dtype) -> dict[str, np.ndarray]:
    """`{"layers.i.weight": (out, in), "layers.i.bias": (out,)}` for the layer widths `sizes`."""
    try:
        draw = INITIALIZERS[init]
    except KeyError:
        raise SpecError(unknown_name("initializer", init, INITIALIZERS)) from None
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w, b = draw(rng, fan_in, fan_out)
        params[f"layers.{i}.weight"] = np.ascontiguousarray(w, dtype=dtype)
        params[f"layers.{i}.bias"] = np.ascontiguousarray(b, dtype=dtype)
    return params
