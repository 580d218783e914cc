"""The scratch engine's layers, one module per kind of the layer table (`harness.layers.KINDS`),
named after it; `LAYERS` maps each kind to its class. A family's shared code has a module of its
own (window.py for pooling, recurrent.py for the recurrent layers)."""

from __future__ import annotations

from harness.scratch.layers.activation import ActivationLayer
from harness.scratch.layers.add import Add
from harness.scratch.layers.attention import Attention
from harness.scratch.layers.avgpool2d import AvgPool2d
from harness.scratch.layers.base import Layer
from harness.scratch.layers.batchnorm import BatchNorm
from harness.scratch.layers.concat import Concat
from harness.scratch.layers.conv2d import Conv2d
from harness.scratch.layers.dropout import Dropout
from harness.scratch.layers.embedding import Embedding
from harness.scratch.layers.flatten import Flatten
from harness.scratch.layers.globalavgpool2d import GlobalAvgPool2d
from harness.scratch.layers.gru import GRU
from harness.scratch.layers.layernorm import LayerNorm
from harness.scratch.layers.linear import Dense
from harness.scratch.layers.lstm import LSTM
from harness.scratch.layers.maxpool2d import MaxPool2d
from harness.scratch.layers.positional import Positional
from harness.scratch.layers.rnn import RNN
from harness.scratch.layers.seqpool import SeqPool
from harness.scratch.layers.tokens import Tokens

LAYERS: dict[str, type[Layer]] = {cls.kind: cls for cls in (
    Dense, Conv2d, MaxPool2d, AvgPool2d, Flatten, RNN, LSTM, GRU, BatchNorm, GlobalAvgPool2d, Dropout, Add, Concat,
    LayerNorm, Attention, Embedding, Positional, Tokens, SeqPool)}

__all__ = ["GRU", "LAYERS", "LSTM", "RNN", "ActivationLayer", "Add", "Attention", "AvgPool2d", "Concat", "Conv2d",
           "Dense", "Dropout", "Embedding", "Flatten", "GlobalAvgPool2d", "Layer", "LayerNorm", "MaxPool2d",
           "Positional", "SeqPool", "Tokens"]
