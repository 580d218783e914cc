"""torch.nn modules built from a `NetworkSpec` (each kind's module from `harness.reference.layers`), as a
PyTorch user would write them."""

from __future__ import annotations

import torch
from torch import nn

from harness.reference.layers import LAYER_MODULES
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
        "softmax": lambda: nn.Softmax(dim=-1),  # over the outputs of a row (or of a time step)
    }[spec.name]()


def layer_modules(spec: NetworkSpec, dtype: torch.dtype) -> list[tuple[nn.Module, nn.Module]]:
    """(layer, activation) modules for every layer of the spec, the output layer last; a layer
    kind without an activation gets nn.Identity."""
    out = []
    for layer, shape in zip(spec.all_layers, spec.shapes, strict=False):
        act = activation_module(layer.activation) if layer.kind.activation else nn.Identity()
        out.append((LAYER_MODULES[layer.type](layer, shape, dtype), act))
    return out


def run_wired(x: torch.Tensor, layers, acts, sources) -> torch.Tensor:
    """A graph's forward: each layer, then its activation, on the outputs its sources name (-1: the input)."""
    outs: list[torch.Tensor] = []
    for layer, act, src in zip(layers, acts, sources, strict=True):
        outs.append(act(layer(*(x if j < 0 else outs[j] for j in src))))
    return outs[-1]


class Net(nn.Module):
    """The layers named `layers.i` (torch's state-dict names, as the scratch engine names them),
    each followed by its activation in `acts.i`, in a chain or wired as the spec says (each layer
    given the outputs its `from` names; autograd adds up the gradients where an output feeds two).

    `forward` returns logits when the loss is computed from them (sigmoid + bce,
    softmax + cross_entropy) and the output activation otherwise; `predict` always
    applies the output activation.
    """

    def __init__(self, spec: NetworkSpec, dtype: torch.dtype, logits_out: bool, seed: int = 0) -> None:
        super().__init__()
        modules = layer_modules(spec, dtype)
        self.layers = nn.ModuleList(layer for layer, _ in modules)
        self.acts = nn.ModuleList(act for _, act in modules)
        self.logits_out = logits_out
        # a graph: the outputs each layer takes (-1: the input); a chain runs as a plain loop
        self.sources = None if spec.is_chain else spec.wiring.sources
        for i, layer in enumerate(self.layers):
            if hasattr(layer, "set_seed"):  # a layer drawing masks draws the scratch engine's
                layer.set_seed(seed, i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        if self.sources is None:
            for i, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
                x = layer(x)
                if i < last or not self.logits_out:
                    x = act(x)
            return x
        acts = [*self.acts[:-1], (lambda h: h) if self.logits_out else self.acts[-1]]
        return run_wired(x, self.layers, acts, self.sources)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        return self.acts[-1](out) if self.logits_out else out


MLP = Net  # the name of the dense-only twin, kept for scripts
