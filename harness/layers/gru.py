"""The gru kind: the gated recurrent unit."""

from __future__ import annotations

from harness.layers.recurrent import Recurrent


class GRU(Recurrent):
    """Gates r, z, n in torch's order; n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h."""

    name = "gru"
    gates = 3
