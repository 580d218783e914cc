"""torch.nn modules built from a `NetworkSpec`, as a PyTorch user would write them."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from harness.spec import ActivationSpec, NetworkSpec


def activation_module(spec: ActivationSpec) -> nn.Module:
    """The torch module for an activation of the spec (GELU in its exact erf form)."""
    p = spec.kwargs()
    return {
        "identity": lambda: nn.Identity(),
        "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(),
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(negative_slope=p.get("slope", 0.01)),
        "elu": lambda: nn.ELU(alpha=p.get("alpha", 1.0)),
        "gelu": lambda: nn.GELU(approximate="none"),
        "softplus": lambda: nn.Softplus(),
        "softmax": lambda: nn.Softmax(dim=1),
    }[spec.name]()


class MLP(nn.Module):
    """Linear layers named `layers.i`, each followed by its activation.

    `forward` returns logits when the loss is computed from them (sigmoid + bce,
    softmax + cross_entropy) and the output activation otherwise; `predict` always
    applies the output activation.
    """

    def __init__(self, spec: NetworkSpec, dtype: torch.dtype, logits_out: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(i, o, dtype=dtype) for i, o in itertools.pairwise(spec.sizes))
        self.acts = nn.ModuleList(activation_module(a) for a in spec.activations)
        self.logits_out = logits_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
            x = layer(x)
            if i < last or not self.logits_out:
                x = act(x)
        return x

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        return self.acts[-1](out) if self.logits_out else out
