"""Every registry names the same kinds: a layer, activation, loss, optimizer or initializer is
either complete everywhere (the table, scratch, the torch twin, ONNX out and in) or fails here."""

from __future__ import annotations

from harness import catalog, init, onnx
from harness.layers import KINDS
from harness.reference import engine as torch_engine
from harness.reference import modules
from harness.reference.layers import LAYER_MODULES
from harness.scratch import activations, losses, optim
from harness.scratch.layers import LAYERS


def test_layer_kinds_are_the_same_everywhere():
    kinds = set(KINDS)
    assert set(LAYERS) == kinds, "scratch layers"
    assert set(LAYER_MODULES) == kinds, "torch twin modules"
    assert set(onnx.WRITERS) == kinds, "ONNX export handlers"
    assert {k for ks in onnx.IMPORTERS.values() for k in ks} >= kinds, "ONNX import handlers (ONNX op -> layer kinds)"


def test_activations_losses_optimizers_initializers_are_the_same_everywhere():
    names = set(catalog.ACTIVATIONS)
    assert set(activations.ACTIVATIONS) == names
    for name, kind in catalog.ACTIVATIONS.items():
        cls = activations.ACTIVATIONS[name]
        assert (dict(cls.defaults), cls.hidden_ok) == (dict(kind.defaults), kind.hidden_ok), name
        modules.activation_module(catalog_spec(name))  # the torch twin has each one
    assert set(onnx.ONNX_OPS) | {"identity"} == names
    assert set(losses.LOSSES) == set(catalog.LOSSES) == set(torch_engine.LOSSES)
    assert {n: c.allowed_outputs for n, c in losses.LOSSES.items()} == catalog.LOSSES
    assert {n: dict(c.defaults) for n, c in optim.OPTIMIZERS.items()} == {n: dict(d) for n, d in
                                                                          catalog.OPTIMIZERS.items()}
    for name in catalog.OPTIMIZERS:
        torch_engine.make_optimizer(name, [torch_param()], dict(catalog.OPTIMIZERS[name]))
    assert set(init.INITIALIZERS) == set(catalog.INITIALIZERS)


def catalog_spec(name: str):
    from harness.layers import ActivationSpec

    return ActivationSpec(name, tuple(sorted(catalog.ACTIVATIONS[name].defaults.items())))


def torch_param():
    import torch

    return torch.nn.Parameter(torch.zeros(1))
