"""The scratch engine's layers, one class per kind of the layer table (`harness.layers.KINDS`)."""

from __future__ import annotations

from harness.scratch.layers.activation import ActivationLayer
from harness.scratch.layers.base import Layer
from harness.scratch.layers.conv import Conv2d
from harness.scratch.layers.dense import Dense
from harness.scratch.layers.flatten import Flatten
from harness.scratch.layers.pool import AvgPool2d, MaxPool2d
from harness.scratch.layers.recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN

LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Dense, Conv2d, MaxPool2d, AvgPool2d, Flatten)
} | RECURRENT_LAYERS

__all__ = ["GRU", "LAYERS", "LSTM", "RNN", "ActivationLayer", "AvgPool2d", "Conv2d", "Dense", "Flatten", "Layer",
           "MaxPool2d"]
