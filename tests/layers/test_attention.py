"""Attention against torch's own modules, not the twin the harness builds: the scratch layer against
nn.MultiheadAttention given the same weights, and a pre-norm encoder block written as a graph in
the experiment file's syntax against nn.TransformerEncoderLayer(norm_first=True), outputs and
every gradient in float64 to 1e-10; torch's fused inference path (eval, no grad) too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness import spec
from harness.errors import SpecError
from harness.layers import LayerSpec
from harness.scratch import Network, losses
from harness.scratch.layers import LAYERS
from tests.parity import compare

ATOL = 1e-10


def causal_mask(t: int) -> torch.Tensor:
    return torch.triu(torch.full((t, t), float("-inf"), dtype=torch.float64), diagonal=1)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("steps", "features", "heads"), [(1, 6, 3), (7, 6, 2), (7, 8, 4), (7, 5, 1)])
def test_scratch_attention_is_torch_multihead_attention(steps, features, heads, causal):
    rng = np.random.default_rng(steps * 100 + features * 10 + heads)
    layer_spec = LayerSpec("attention", (("heads", heads), ("causal", causal)))
    layer = LAYERS["attention"](layer_spec, (steps, features), np.float64)
    params = {name: rng.normal(scale=0.5, size=shape) for name, shape in layer.param_shapes().items()}
    grads = {name: np.zeros(shape) for name, shape in layer.param_shapes().items()}
    layer.bind(params, grads)
    x = rng.normal(size=(4, steps, features))
    g = rng.normal(size=(4, steps, features))

    mha = nn.MultiheadAttention(features, heads, batch_first=True, bias=True, dtype=torch.float64)
    mha.load_state_dict({name: torch.from_numpy(v) for name, v in params.items()})
    xt = torch.tensor(x, requires_grad=True)
    theirs = mha(xt, xt, xt, need_weights=False, attn_mask=causal_mask(steps) if causal else None)[0]
    tensors = dict(mha.named_parameters())
    assert list(tensors) == list(params)  # torch's names, in torch's order
    d_theirs = torch.autograd.grad(theirs, [xt, *tensors.values()], torch.from_numpy(g))

    ours = layer.forward(x, training=True).copy()
    compare("forward", ours, theirs.detach().numpy(), ATOL)
    compare("forward in evaluation mode", layer.forward(x, training=False), theirs.detach().numpy(), ATOL)
    dx = layer.backward(g)
    compare("dL/dx", dx, d_theirs[0].numpy(), ATOL)
    for name, d in zip(tensors, d_theirs[1:], strict=True):
        compare(f"dL/d{name}", grads[name], d.numpy(), ATOL)


def test_a_causal_step_sees_nothing_after_it():
    """What the mask means, without torch: changing the last step changes no earlier output."""
    rng = np.random.default_rng(0)
    layer = LAYERS["attention"](LayerSpec("attention", (("heads", 2), ("causal", True))), (6, 4), np.float64)
    layer.bind({name: rng.normal(size=shape) for name, shape in layer.param_shapes().items()}, {})
    x = rng.normal(size=(3, 6, 4))
    before = layer.forward(x, training=False).copy()
    x[:, -1] += 1.0
    after = layer.forward(x, training=False)
    compare("steps before the changed one", after[:, :-1], before[:, :-1], 0)
    assert np.abs(after[:, -1] - before[:, -1]).min() > 1e-6


def block_layers(causal: bool = False) -> list[dict]:
    """A pre-norm transformer encoder block in the experiment file's syntax, after a linear layer whose
    weight gradient carries the block's input gradient."""
    return [
        {"type": "linear", "units": D, "name": "x"},
        {"type": "layernorm"},
        {"type": "attention", "heads": H, "causal": causal, "name": "att"},
        {"type": "add", "from": ["x", "att"], "name": "r"},
        {"type": "layernorm"},
        {"type": "linear", "units": HIDDEN, "activation": "gelu"},
        {"type": "linear", "units": D, "name": "ff"},
        {"type": "add", "from": ["r", "ff"]},
    ]


D, H, HIDDEN, STEPS, FEATURES, OUTPUTS = 8, 2, 16, 7, 3, 4
# the block's layers by index -> torch's TransformerEncoderLayer's modules
TORCH_NAMES = {1: "norm1.", 2: "self_attn.", 4: "norm2.", 5: "linear1.", 6: "linear2."}


def experiment(causal: bool = False) -> spec.ExperimentSpec:
    return spec.from_dict({
        "data": {"dataset": "xor"},
        "network": {"input_shape": [STEPS, FEATURES], "layers": block_layers(causal), "outputs": OUTPUTS},
        "training": {"loss": "mse", "dtype": "float64"},
    })


class Block(nn.Module):
    """torch's own encoder layer between the same linear layers as the file's."""

    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.pre = nn.Linear(FEATURES, D, dtype=torch.float64)
        self.block = nn.TransformerEncoderLayer(d_model=D, nhead=H, dim_feedforward=HIDDEN, dropout=0.0,
                                                activation="gelu", norm_first=True, batch_first=True,
                                                dtype=torch.float64)
        self.out = nn.Linear(D, OUTPUTS, dtype=torch.float64)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(x.shape[1]) if self.causal else None
        return self.out(self.block(self.pre(x), src_mask=mask, is_causal=self.causal))


def torch_name(name: str) -> str:
    """layers.i.<name> of the file's network -> the name of the same tensor in `Block`."""
    i, rest = int(name.split(".")[1]), name.split(".", 2)[2]
    return {0: "pre.", 8: "out."}.get(i, "block." + TORCH_NAMES.get(i, "?")) + rest


def loaded(net: Network, causal: bool) -> Block:
    block = Block(causal)
    params = net.parameters()
    mapped = {torch_name(k): torch.from_numpy(v) for k, v in params.items()}
    assert set(mapped) == set(block.state_dict())
    block.load_state_dict(mapped)
    return block


def perturbed(s: spec.ExperimentSpec, seed: int) -> Network:
    """The file's network with every parameter moved off its initial value (so that no bias is 0
    and no layernorm the identity)."""
    rng = np.random.default_rng(seed)
    net = Network(s.network, seed=seed, dtype="float64")
    params = {k: v + rng.normal(scale=0.2, size=v.shape) for k, v in net.parameters().items()}
    return Network(s.network, params, dtype="float64")


@pytest.mark.parametrize("causal", [False, True])
def test_an_encoder_block_in_the_file_is_torch_transformer_encoder_layer(causal):
    s = experiment(causal)
    net = perturbed(s, 1)
    block = loaded(net, causal).train()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, STEPS, FEATURES))
    y = rng.normal(size=(5, STEPS, OUTPUTS))

    ours = net.forward(x).copy()
    loss = net.backward(losses.get("mse").targets(y, OUTPUTS, "float64"), losses.get("mse"))
    theirs = block(torch.from_numpy(x))
    torch_loss = nn.functional.mse_loss(theirs, torch.from_numpy(y))
    torch_loss.backward()
    compare("block output", ours, theirs.detach().numpy(), ATOL)
    compare("loss", loss, torch_loss.item(), ATOL)
    tensors = dict(block.named_parameters())
    for name, grad in net.gradients().items():
        compare(f"dL/d{name} ({torch_name(name)})", grad, tensors[torch_name(name)].grad.numpy(), ATOL)


@pytest.mark.parametrize("causal", [False, True])
def test_torch_fused_inference_path_agrees_with_the_file_block(causal, monkeypatch):
    s = experiment(causal)
    net = perturbed(s, 3)
    block = loaded(net, causal).eval()
    fused = torch._transformer_encoder_layer_fwd
    calls = []
    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", lambda *a: calls.append(1) or fused(*a))
    x = np.random.default_rng(4).normal(size=(6, STEPS, FEATURES))
    with torch.no_grad():
        theirs = block(torch.from_numpy(x)).numpy()
    assert calls, "torch's fused encoder layer did not run"
    compare("predict against torch's fused path", net.predict(x), theirs, ATOL)


@pytest.mark.parametrize(("layers", "shape", "message"), [
    ([{"type": "attention", "heads": 3}], [5, 8],
     "network.layers.0 (attention) on input [5, 8]: heads = 3 must divide its 8 features (each head takes "
     "features / heads)"),
    ([{"type": "attention", "heads": 2}], [8],
     "network.layers.0 (attention) on input [8]: attention takes sequences [time, features], but its input has "
     "shape [8]"),
    ([{"type": "layernorm"}], [2, 3, 4],
     "network.layers.0 (layernorm) on input [2, 3, 4]: layernorm normalises flat input [features] or each step "
     "of a sequence [time, features], but its input has shape [2, 3, 4]"),
])
def test_a_bad_attention_or_layernorm_is_one_line(layers, shape, message):
    with pytest.raises(SpecError) as e:
        spec.from_dict({"data": {"dataset": "xor"}, "network": {"input_shape": shape, "layers": layers,
                                                                "outputs": 2}})
    assert str(e.value) == f"spec: {message}"


def test_flops_count_the_projections_and_the_products_over_every_pair_of_steps():
    from harness.layers import KINDS

    layer = LayerSpec("attention", (("heads", 2), ("causal", False)))
    # per step: q, k, v (3 · 8 · 8 multiply-adds) and out (8 · 8); per pair of steps: q·k and p·v (8 each)
    assert KINDS["attention"].flops(layer, (7, 8)) == 2 * (7 * 4 * 64 + 2 * 49 * 8)
    assert KINDS["attention"].flops(layer, (0, 8)) == 2 * (4 * 64 + 2 * 8)  # an open length counts one step
    assert KINDS["layernorm"].flops(LayerSpec("layernorm", (("eps", 1e-5),)), (7, 8)) == 7 * 56
