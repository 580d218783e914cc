"""The rnn kind in torch: nn.RNN, batch first."""

from __future__ import annotations

from torch import nn

from harness.reference.layers.recurrent import sequence_module

module = sequence_module(nn.RNN)
