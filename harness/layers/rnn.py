"""The rnn kind: the plain (Elman) recurrent layer."""

from __future__ import annotations

from harness.layers.base import Key
from harness.layers.recurrent import Recurrent


class RNN(Recurrent):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu (torch's `nonlinearity`)."""

    name = "rnn"
    gates = 1
    keys = {**Recurrent.keys, "activation": Key("choice", "tanh", choices=("tanh", "relu"))}
