"""Initial parameters, drawn once from `numpy.random.Generator(seed)` for every engine.

Each initializer draws a layer's weight (of the shape the layer table gives: (units,
features) for linear, (filters, channels, kh, kw) for conv2d) and its bias, layer after
layer, weight before bias, scaled by the layer's fan-in and fan-out as torch computes them;
each kind of the layer table says how its own parameters are drawn (`Kind.initial_parameters`)
and what its non-trained state starts at (`Kind.initial_state`). Always in float64, so that
the float32 and float64 runs of one seed start from the same numbers (rounded once to the
run's dtype).
"""

from __future__ import annotations

import math

import numpy as np

from harness.errors import SpecError, unknown_name
from harness.layers import Draw
from harness.spec import NetworkSpec


def xavier_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W ~ U(-b, b), b = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); bias 0."""
    bound = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape), np.zeros(shape[0])


def xavier_normal(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W ~ N(0, σ²), σ = √(2 / (fan_in + fan_out)); bias 0."""
    std = math.sqrt(2 / (fan_in + fan_out))
    return rng.normal(0, std, shape), np.zeros(shape[0])


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W ~ U(-b, b), b = √(6 / fan_in) (He et al. 2015, for ReLU); bias 0."""
    bound = math.sqrt(6 / fan_in)
    return rng.uniform(-bound, bound, shape), np.zeros(shape[0])


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W ~ N(0, σ²), σ = √(2 / fan_in); bias 0."""
    return rng.normal(0, math.sqrt(2 / fan_in), shape), np.zeros(shape[0])


def uniform01(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W and bias ~ U(0, 1), as the classic perceptron tutorial draws them."""
    return rng.uniform(0, 1, shape), rng.uniform(0, 1, shape[0])


def torch_default(rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]):
    """W and bias ~ U(-1/√fan_in, 1/√fan_in), the law of torch.nn.Linear's and Conv2d's own initialisation."""
    bound = 1 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape), rng.uniform(-bound, bound, shape[0])


INITIALIZERS: dict[str, Draw] = {
    f.__name__: f for f in (xavier_uniform, xavier_normal, he_uniform, he_normal, uniform01, torch_default)
}


def initial_parameters(network: NetworkSpec | list[int], init: str | None = None, seed: int = 0,
                       dtype: str | np.dtype = "float32") -> dict[str, np.ndarray]:
    """`{"layers.i.weight": ..., "layers.i.bias": ...}` for every weighted layer of `network`,
    by its initializer (or `init`), and each layer's non-trained state at its initial values
    after its parameters (`layers.i.running_mean` ...): the state dict a model starts from, as
    torch's `state_dict` orders it. A list of widths stands for a dense network of those widths."""
    from harness.layers import linear, shapes

    if isinstance(network, NetworkSpec):
        input_shape, layers, init = network.input_shape, network.all_layers, init or network.init
    else:
        input_shape, layers = (network[0],), tuple(linear(n) for n in network[1:])
    try:
        draw = INITIALIZERS[init]
    except KeyError:
        raise SpecError(unknown_name("initializer", init, INITIALIZERS)) from None
    rng = np.random.default_rng(seed)
    params = {}
    for i, (layer, shape) in enumerate(zip(layers, shapes(input_shape, layers), strict=False)):
        drawn = {**layer.kind.initial_parameters(layer, shape, rng, draw, INITIALIZERS),
                 **layer.kind.initial_state(layer, shape)}
        params.update({f"layers.{i}.{name}": np.array(a, dtype=dtype, order="C") for name, a in drawn.items()})
    return params


def initial_state(network: NetworkSpec, dtype: str | np.dtype = "float32") -> dict[str, np.ndarray]:
    """Every layer's non-trained state at its initial values (`{"layers.i.running_mean": ...}`,
    torch's buffer names), as `initial_parameters` includes it: what an engine given parameters
    alone starts its state from."""
    out = {}
    for i, (layer, shape) in enumerate(zip(network.all_layers, network.shapes, strict=False)):
        out.update({f"layers.{i}.{name}": np.array(a, dtype=dtype, order="C")
                    for name, a in layer.kind.initial_state(layer, shape).items()})
    return out
