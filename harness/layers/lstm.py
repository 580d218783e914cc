"""The lstm kind: long short-term memory."""

from __future__ import annotations

from harness.layers.recurrent import Recurrent


class LSTM(Recurrent):
    """Gates i, f, g, o in torch's order; c' = f c + i g, h' = o tanh(c')."""

    name = "lstm"
    gates = 4
