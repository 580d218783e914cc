"""PyTorch as its users write it (harness.reference.plain, perf's peer): on a network that is not a chain it
trains as the harness's torch twin does, step for step, from the same initial tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness import spec
from harness.init import initial_parameters
from harness.reference.encoder import CausalEncoderLayer
from harness.reference.engine import TorchEngine
from harness.reference.plain import PlainTorch

# a residual block with batch normalisation and a concatenation of two branches, on small images
NETWORK = {
    "input_shape": [2, 6, 6],
    "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "activation": "relu", "name": "stem"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "activation": "relu"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "name": "block"},
        {"type": "add", "from": ["stem", "block"], "activation": "relu", "name": "sum"},
        {"type": "conv2d", "filters": 2, "kernel": 1, "from": "stem", "activation": "tanh", "name": "side"},
        {"type": "concat", "from": ["sum", "side"]},
        {"type": "maxpool2d", "kernel": 2},
        {"type": "flatten"},
    ],
    "outputs": 3, "output_activation": "softmax"}


def test_plain_pytorch_trains_a_graph_as_the_torch_twin_does_step_for_step():
    s = spec.from_dict({"data": {"dataset": "xor"}, "network": NETWORK,
                        "training": {"loss": "cross_entropy", "dtype": "float64", "batch_size": 8,
                                     "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}}})
    assert not s.network.is_chain
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 2, 6, 6)), rng.integers(0, 3, size=48)
    plan = [np.arange(i, i + 8) for i in range(0, 48, 8)]
    params = initial_parameters(s.network, seed=3, dtype="float64")
    twin, plain = TorchEngine(s.network, s.training, params), PlainTorch(s.network, s.training, params)
    seen: list[float] = []
    loss_fn = plain.loss_fn
    plain.loss_fn = lambda out, target: (seen.append(float((v := loss_fn(out, target)).detach())), v)[1]
    expected = [twin.train_epoch(x, y, [idx]) for idx in plan]  # one step each: the batch's loss before it
    plain.train(plain.slice_batches(x, y, plan))
    np.testing.assert_allclose(seen, expected, rtol=0, atol=1e-12)
    assert expected[-1] < expected[0]  # it learned: the trajectories are not flat by accident
    theirs = twin.model.state_dict()
    for name, value in plain.model.state_dict().items():  # parameters, running statistics, batches tracked
        torch.testing.assert_close(value, theirs[name], rtol=0, atol=1e-12)
    np.testing.assert_allclose(plain.predict(x), twin.predict(x), rtol=0, atol=1e-12)


def vit(causal: bool = False) -> dict:
    """A small vision transformer in the file's syntax (as experiments/mnist_vit.toml): 4x4 patches by a
    convolution, 4 tokens with positions, two pre-norm encoder blocks (the second's attention causal
    where asked, its MLP relu), layer norm, mean pool."""
    def block(n: int, source: str, act: str, causal: bool) -> list[dict]:
        return [{"type": "layernorm"}, {"type": "attention", "heads": 2, "causal": causal, "name": f"a{n}"},
                {"type": "add", "from": [source, f"a{n}"], "name": f"r{n}"}, {"type": "layernorm"},
                {"type": "linear", "units": 12, "activation": act}, {"type": "linear", "units": 8, "name": f"f{n}"},
                {"type": "add", "from": [f"f{n}", f"r{n}"], "name": f"x{n}"}]  # either order of the sum
    return {"input_shape": [1, 8, 8],
            "layers": [{"type": "conv2d", "filters": 8, "kernel": 4, "stride": 4}, {"type": "tokens"},
                       {"type": "positional", "max_len": 4, "name": "x0"},
                       *block(1, "x0", "gelu", False), *block(2, "x1", "relu", causal),
                       {"type": "layernorm"}, {"type": "seqpool"}],
            "outputs": 3, "output_activation": "softmax"}


def twin_name(name: str, plain: PlainTorch, s) -> str:
    """A tensor's name in the plain model -> its name in the twin (layers.i of the spec)."""
    from harness.reference.encoder import MODULES, encoder_blocks, rewired

    blocks = encoder_blocks(s.network)
    kept, _ = rewired(s.network.wiring.sources, blocks)
    _, n, rest = name.split(".", 2)
    j = kept[int(n)]
    block = next((b for b in blocks if b.last == j), None)
    if block is None:
        return f"layers.{j}.{rest}"
    module, tensor = rest.split(".", 1)
    k = next(k for k, m in MODULES.items() if m == module)
    return f"layers.{block.first + k}.{tensor}"


@pytest.mark.parametrize("causal", [False, True])
def test_plain_pytorch_trains_encoder_blocks_as_torch_encoder_layers_as_the_twin_does(causal):
    s = spec.from_dict({"data": {"dataset": "xor"}, "network": vit(causal),
                        "training": {"loss": "cross_entropy", "dtype": "float64", "batch_size": 8,
                                     "optimizer": {"name": "adam", "learning_rate": 0.01}}})
    rng = np.random.default_rng(1)
    params = {k: v + rng.normal(scale=0.1, size=v.shape)  # no layer norm the identity, no bias 0
              for k, v in initial_parameters(s.network, seed=3, dtype="float64").items()}
    x, y = rng.normal(size=(48, 1, 8, 8)), rng.integers(0, 3, size=48)
    plan = [np.arange(i, i + 8) for i in range(0, 48, 8)]
    twin, plain = TorchEngine(s.network, s.training, params), PlainTorch(s.network, s.training, params)
    encoders = [m for m in plain.model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    assert len(encoders) == 2 and [isinstance(m, CausalEncoderLayer) for m in encoders] == [False, causal]
    assert not any(isinstance(m, nn.MultiheadAttention) and m not in [e.self_attn for e in encoders]
                   for m in plain.model.modules())  # no attention left outside them
    assert len(plain.model.layers) == len(s.network.all_layers) - 2 * 6
    seen: list[float] = []
    loss_fn = plain.loss_fn
    plain.loss_fn = lambda out, target: (seen.append(float((v := loss_fn(out, target)).detach())), v)[1]
    expected = [twin.train_epoch(x, y, [idx]) for idx in plan]
    plain.train(plain.slice_batches(x, y, plan))
    np.testing.assert_allclose(seen, expected, rtol=0, atol=1e-10)
    assert expected[-1] < expected[0]
    theirs = twin.model.state_dict()
    ours = plain.model.state_dict()
    assert len(ours) == len(theirs)
    for name, value in ours.items():
        torch.testing.assert_close(value, theirs[twin_name(name, plain, s)], rtol=0, atol=1e-10)
    np.testing.assert_allclose(plain.predict(x), twin.predict(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize(("change", "why"), [
    (lambda layers: layers[5].update(activation="relu"), "an activation after the attention's sum"),
    (lambda layers: layers[7].update(activation="tanh"), "an MLP of tanh"),
    (lambda layers: layers[6].update(eps=1e-3), "two different eps"),
    (lambda layers: layers.insert(-2, {"type": "add", "from": ["r1", "x2"]}), "an inner output read outside"),
])
def test_a_block_unlike_torch_encoder_layer_stays_as_the_file_writes_it(change, why):
    from harness.reference.encoder import encoder_blocks

    network = vit()
    change(network["layers"])
    s = spec.from_dict({"data": {"dataset": "xor"}, "network": network,
                        "training": {"loss": "cross_entropy", "dtype": "float32"}})
    assert [b.first for b in encoder_blocks(s.network)] == [10], why  # the second block alone
    plain = PlainTorch(s.network, s.training, initial_parameters(s.network, seed=0, dtype="float32"))
    assert sum(isinstance(m, nn.TransformerEncoderLayer) for m in plain.model.modules()) == 1
    assert sum(isinstance(m, nn.LayerNorm) for m in plain.model.modules()) == 2 + 2 + 1  # the first block's, the last


def test_the_plain_loop_indexes_each_batch_as_it_is_due_as_a_dataloader_does():
    """Batches are made when the loop reaches them (a whole epoch made ahead comes back from memory):
    the same tensors as indexing up front, in the plan's order, a slice of them the first ones."""
    from harness.reference.plain import Batches, PlainTorch

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    plan = [np.array([3, 1]), np.array([0, 9, 4]), np.array([7])]
    batches = PlainTorch.slice_batches(x, y, plan)
    assert isinstance(batches, Batches) and len(batches) == 3
    x[3] = 99.0  # not copied ahead: indexed when iterated
    got = list(batches)
    assert [b[0].shape[0] for b in got] == [2, 3, 1] and float(got[0][0][0, 0]) == 99.0
    for (xb, yb), idx in zip(got, plan, strict=True):
        np.testing.assert_array_equal(xb.numpy(), x[idx])
        np.testing.assert_array_equal(yb.numpy(), y[idx])
    assert [b[0].shape[0] for b in batches[:2]] == [2, 3]
