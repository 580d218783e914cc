"""The names an experiment file may use besides layer kinds, engine-neutrally: activations,
losses, optimizers and initializers, with their settings and defaults.

The spec validates against these tables and every engine implements each entry; a test
checks that scratch, the torch twin and ONNX cover exactly these names. Hyperparameter
defaults are torch's (SGD's learning rate aside, which torch leaves required).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ActivationKind:
    defaults: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    hidden_ok: bool = True  # False: for the output layer only (softmax mixes the units of a row)


def _frozen(d: dict[str, Any]) -> MappingProxyType:
    return MappingProxyType(dict(d))


ACTIVATIONS: dict[str, ActivationKind] = {
    "identity": ActivationKind(),
    "sigmoid": ActivationKind(),
    "tanh": ActivationKind(),
    "relu": ActivationKind(),
    "leaky_relu": ActivationKind(_frozen({"slope": 0.01})),
    "elu": ActivationKind(_frozen({"alpha": 1.0})),
    "gelu": ActivationKind(),
    "softplus": ActivationKind(),
    "softmax": ActivationKind(hidden_ok=False),
}

# loss -> the output activations it needs (None: any)
LOSSES: dict[str, tuple[str, ...] | None] = {
    "mse": None,
    "bce": ("sigmoid",),
    "cross_entropy": ("softmax",),
}

OPTIMIZERS: dict[str, MappingProxyType] = {
    "sgd": _frozen({"learning_rate": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                    "weight_decay": 0.0}),
    "adam": _frozen({"learning_rate": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
    "adamw": _frozen({"learning_rate": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}),
}

INITIALIZERS: tuple[str, ...] = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "uniform01",
                                 "torch_default")

# engine -> "module:Class"; `harness.engines` imports it only when asked for, so that naming an engine never
# imports torch (and the spec can check an engine's name without importing any engine).
ENGINE_NAMES: dict[str, str] = {
    "scratch": "harness.scratch.engine:ScratchEngine",
    "torch": "harness.reference.engine:TorchEngine",
}
