"""The layer kinds, described once for every engine: keys, shapes, parameters and state, their
initialisation, FLOPs, fans, a one-line description, what a kind does to the time axis.

A layer in an experiment file is a table `{ type = "conv2d", filters = 6, kernel = 5 }`.
Its kind says which keys it takes (with their defaults), which input shapes it accepts,
the output shape it makes, its parameters (and non-trained state) by the names torch's
`state_dict` uses, how they start, its forward FLOPs per sample, and the fan-in and fan-out
its initialisation scales by (torch's rules: a convolution's fans count its kernel window).
Each kind is a class in the module of this package named after it (`conv2d.py`), a family's
shared code in a module of its own (`window.py`, `recurrent.py`); `KINDS` gathers them. The
spec validates against this table; scratch, the torch twin, ONNX export and import each hold
one handler per kind, and tests check that they all name the same kinds.

Shapes are per sample, without the batch: `(features,)` for flat data, `(time, features)` for
sequences, `(channels, height, width)` for images.
"""

from __future__ import annotations

from harness.layers.add import Add
from harness.layers.attention import Attention
from harness.layers.avgpool2d import AvgPool2d
from harness.layers.base import (
    IDENTITY,
    MAX_UNITS,
    ActivationSpec,
    Draw,
    Key,
    Kind,
    LayerSpec,
    Shape,
    ShapeError,
    WeightAndBias,
    setting_to_plain,
)
from harness.layers.batchnorm import BatchNorm
from harness.layers.concat import Concat
from harness.layers.conv2d import Conv2d
from harness.layers.dropout import Dropout
from harness.layers.embedding import Embedding
from harness.layers.flatten import Flatten
from harness.layers.globalavgpool2d import GlobalAvgPool2d
from harness.layers.graph import INPUT, NO_SOURCE, Wiring, WiringError, wire
from harness.layers.gru import GRU
from harness.layers.layernorm import LayerNorm
from harness.layers.linear import Linear
from harness.layers.lstm import LSTM
from harness.layers.maxpool2d import MaxPool2d
from harness.layers.positional import Positional
from harness.layers.recurrent import Recurrent
from harness.layers.rnn import RNN
from harness.layers.seqpool import SeqPool
from harness.layers.tokens import Tokens

RECURRENT: dict[str, type[Kind]] = {k.name: k for k in (RNN, LSTM, GRU)}
KINDS: dict[str, type[Kind]] = {k.name: k for k in (
    Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, BatchNorm, GlobalAvgPool2d, Dropout, Add, Concat,
    LayerNorm, Attention, Embedding, Positional, Tokens, SeqPool)} | RECURRENT

__all__ = ["GRU", "IDENTITY", "INPUT", "KINDS", "LSTM", "MAX_UNITS", "NO_SOURCE", "RECURRENT", "RNN", "ActivationSpec",
           "Add", "Attention", "AvgPool2d", "BatchNorm", "Concat", "Conv2d", "Draw", "Dropout", "Embedding", "Flatten",
           "GlobalAvgPool2d", "Key", "Kind", "LayerNorm", "LayerSpec", "Linear", "MaxPool2d", "Positional",
           "Recurrent", "SeqPool", "Shape", "ShapeError", "Tokens", "WeightAndBias", "Wiring", "WiringError",
           "forward_flops", "linear", "setting_to_plain", "shapes", "train_flops", "wire"]


def linear(units: int, activation: ActivationSpec = IDENTITY) -> LayerSpec:
    return LayerSpec("linear", (("units", units),), activation)


def shapes(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> list:
    """What each layer is given (a shape; a tuple of shapes for a merging kind), then the last
    layer's output: len(layers) + 1 entries; for a chain, the shape after each layer, the input's
    first. Raises ShapeError naming the layer index where one does not fit."""
    try:
        w = wire(input_shape, layers)
    except WiringError as e:
        raise ShapeError(f"layer {e.layer} ({layers[e.layer].type}): {e}") from None
    return [*w.inputs, w.outputs[-1]]


def forward_flops(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> int:
    """Forward FLOPs of one sample through every layer."""
    dims = shapes(input_shape, layers)
    return sum(layer.kind.flops(layer, shape) for layer, shape in zip(layers, dims, strict=False))


def train_flops(input_shape: Shape, layers: tuple[LayerSpec, ...]) -> int:
    """FLOPs of one training sample: each weighted layer's forward, its weight gradient (as many),
    and its input gradient (as many again) for every layer but the first weighted one, whose
    input is data; pooling's backward counts as its forward. A correct backward needs no more."""
    dims = shapes(input_shape, layers)
    total, first = 0, True
    for layer, shape in zip(layers, dims, strict=False):
        f = layer.kind.flops(layer, shape)
        if layer.param_shapes(shape):
            total += 2 * f if first else 3 * f
            first = False
        else:
            total += 2 * f
    return total


