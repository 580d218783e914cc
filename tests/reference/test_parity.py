"""The scratch engine against the PyTorch reference: every op, whole networks, optimizers, training."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness import spec
from harness.engines import engine_class, epoch_batches
from harness.reference.engine import make_optimizer
from harness.reference.modules import activation_module
from harness.scratch import activations, losses, optim
from harness.scratch.init import initial_parameters
from tests.parity import check_op, compare

pytestmark = pytest.mark.parity

ACTIVATION_CASES = [("identity", {}), ("sigmoid", {}), ("tanh", {}), ("relu", {}), ("leaky_relu", {}),
                    ("leaky_relu", {"slope": 0.2}), ("elu", {}), ("elu", {"alpha": 0.5}), ("gelu", {}),
                    ("softplus", {}), ("softmax", {})]


def preactivations(seed=0):
    """Wide range, both signs, values near and at softplus's threshold and exactly 0."""
    z = np.random.default_rng(seed).normal(0, 4, (16, 8))
    z[0, :4] = [0.0, 20.0, 20.5, -25.0]
    return z


@pytest.mark.parametrize("name,params", ACTIVATION_CASES, ids=[f"{n}{p or ''}" for n, p in ACTIVATION_CASES])
def test_activation_forward_and_gradient(name, params):
    ours = activations.get(name, **params)
    theirs = activation_module(spec.ActivationSpec(name, tuple(params.items())))
    check_op([preactivations()], ours.forward,
             lambda z, g: [ours.backward(z, ours.forward(z), g)], theirs)


def test_activation_parity_in_float32():
    z = preactivations(1).astype(np.float32)
    for name, params in ACTIVATION_CASES:
        ours = activations.get(name, **params)
        theirs = activation_module(spec.ActivationSpec(name, tuple(params.items())))
        check_op([z], ours.forward, lambda z, g, o=ours: [o.backward(z, o.forward(z), g.astype(np.float32))],
                 theirs, atol=2e-6, grad_atol=2e-6)


RNG = np.random.default_rng(7)
PROBS = activations.get("softmax").forward(RNG.normal(size=(12, 5)))
LABELS = RNG.integers(0, 5, 12)
BINARY = RNG.integers(0, 2, (12, 3)).astype(float)
LOGITS = RNG.normal(0, 3, (12, 3))


def test_mse():
    a, y = RNG.normal(size=(12, 3)), RNG.normal(size=(12, 3))
    loss = losses.get("mse")
    check_op([a, y], loss.value, lambda a, y, g: [g * loss.grad(a, y)], F.mse_loss)


def test_bce_on_probabilities():
    p = activations.get("sigmoid").forward(LOGITS)
    loss = losses.get("bce")
    check_op([p, BINARY], loss.value, lambda a, y, g: [g * loss.grad(a, y)], F.binary_cross_entropy)


def test_bce_from_logits_and_its_fused_gradient():
    loss = losses.get("bce")
    sig = activations.get("sigmoid")
    check_op([LOGITS, BINARY], loss.value_from_logits, lambda z, y, g: [g * loss.fused_grad(sig.forward(z), y)],
             F.binary_cross_entropy_with_logits)


def test_cross_entropy_on_probabilities():
    loss = losses.get("cross_entropy")
    check_op([PROBS, LABELS], loss.value, lambda a, y, g: [g * loss.grad(a, y)],
             lambda a, y: F.nll_loss(torch.log(a), y))


def test_cross_entropy_from_logits_and_its_fused_gradient():
    loss = losses.get("cross_entropy")
    smax = activations.get("softmax")
    z = RNG.normal(0, 3, (12, 5))
    check_op([z, LABELS], loss.value_from_logits, lambda z, y, g: [g * loss.fused_grad(smax.forward(z), y)],
             F.cross_entropy)


OUTPUT_LOSS = [("identity", "mse"), ("sigmoid", "mse"), ("tanh", "mse"), ("relu", "mse"), ("softmax", "mse"),
               ("sigmoid", "bce"), ("softmax", "cross_entropy")]
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus"]


def random_experiment(seed: int, dtype: str = "float64", optimizer: dict | None = None,
                      **training) -> spec.ExperimentSpec:
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(0, 5))
    out_act, loss = OUTPUT_LOSS[seed % len(OUTPUT_LOSS)]
    outputs = int(rng.integers(2, 11)) if out_act == "softmax" else int(rng.integers(1, 11))
    hidden = [{"units": int(rng.integers(1, 65)), "activation": HIDDEN[int(rng.integers(len(HIDDEN)))]}
              for _ in range(depth)]
    return spec.from_dict({
        "data": {"dataset": "xor"},
        "network": {"inputs": int(rng.integers(1, 65)), "outputs": outputs, "hidden": hidden,
                    "output_activation": out_act, "init": ["xavier_uniform", "he_normal", "torch_default"][seed % 3]},
        "training": {"loss": loss, "dtype": dtype, "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.05},
                     **training},
    })


def batch_for(s: spec.ExperimentSpec, n: int, seed: int):
    rng = np.random.default_rng(seed + 1000)
    x = rng.normal(size=(n, s.network.inputs)).astype(s.training.dtype)
    k = s.network.outputs
    if s.training.loss == "cross_entropy":
        raw = rng.integers(0, k, n)
    else:
        raw = rng.integers(0, 2, (n, k)) if s.training.loss == "bce" else rng.normal(size=(n, k))
    y = losses.get(s.training.loss).targets(raw, s.network.outputs, s.training.dtype)
    return x, y


def both_engines(s: spec.ExperimentSpec, seed: int):
    params = initial_parameters(s.network.sizes, s.network.init, seed, s.training.dtype)
    return [engine_class(name)(s.network, s.training, params) for name in ("scratch", "torch")]


@pytest.mark.parametrize("seed", range(56))
def test_whole_network_gradients(seed):
    s = random_experiment(seed)
    scratch, reference = both_engines(s, seed)
    x, y = batch_for(s, 17, seed)
    for k, v in scratch.parameters().items():
        compare(k, v, reference.parameters()[k], 0)
    loss_ours, grads_ours = scratch.gradients(x, y)
    loss_theirs, grads_theirs = reference.gradients(x, y)
    arch = f"{s.network.sizes} {[a.name for a in s.network.activations]} {s.training.loss}"
    compare(f"loss of {arch}", loss_ours, loss_theirs, 1e-9)
    assert set(grads_ours) == set(grads_theirs)
    for k in grads_ours:
        compare(f"{k} of {arch}", grads_ours[k], grads_theirs[k], 1e-9)


def test_the_random_architectures_cover_the_space():
    specs = [random_experiment(seed) for seed in range(56)]
    assert {len(s.network.hidden) for s in specs} == {0, 1, 2, 3, 4}
    assert {(s.network.output_activation.name, s.training.loss) for s in specs} == set(OUTPUT_LOSS)
    assert {h.activation.name for s in specs for h in s.network.hidden} == set(HIDDEN)
    widths = [h.units for s in specs for h in s.network.hidden]
    assert min(widths) <= 8 and max(widths) >= 56


OPTIMIZERS = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.01}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("adam", {"learning_rate": 0.01}),
    ("adam", {"learning_rate": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name,settings", OPTIMIZERS, ids=[f"{n}{s}" for n, s in OPTIMIZERS])
def test_optimizer_steps(name, settings):
    rng = np.random.default_rng(11)
    start = {"w": rng.normal(size=(6, 4)), "b": rng.normal(size=6)}
    ours = {k: v.copy() for k, v in start.items()}
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    opt_ours = optim.get(name, ours, **settings)
    opt_theirs = make_optimizer(name, list(theirs.values()), settings)
    for _ in range(20):
        grads = {k: rng.normal(size=v.shape) for k, v in start.items()}
        opt_ours.step(grads)
        for k, p in theirs.items():
            p.grad = torch.tensor(grads[k])
        opt_theirs.step()
    for k in start:
        compare(f"{name} {k} after 20 steps", ours[k], theirs[k].detach().numpy(), 1e-10)


@pytest.mark.parametrize("seed,optimizer,lr_decay", list(itertools.product(
    [0, 3, 5, 6], [{"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}, {"name": "adam", "learning_rate": 0.003}],
    [1.0, 0.9])))
def test_training_trajectories_stay_together_for_200_steps(seed, optimizer, lr_decay):
    s = random_experiment(seed, optimizer=optimizer, lr_decay=lr_decay)
    scratch, reference = both_engines(s, seed)
    x, y = batch_for(s, 100, seed)
    for epoch in range(20):  # 10 batches of 10: 200 steps
        batches = epoch_batches(100, 10, seed, epoch)
        loss_ours = scratch.train_epoch(x, y, batches)
        loss_theirs = reference.train_epoch(x, y, batches)
        compare(f"epoch {epoch} loss", loss_ours, loss_theirs, 1e-8)
    theirs = {**reference.parameters(), **reference.state()}
    assert set(theirs) == {*scratch.parameters(), *scratch.state()}
    for k, v in {**scratch.parameters(), **scratch.state()}.items():
        compare(f"{k} after 200 steps", v, theirs[k], 1e-8)
    for metric in ("accuracy", "mae"):
        ours, theirs = scratch.evaluate(x, y, metric), reference.evaluate(x, y, metric)
        compare(f"evaluate {metric}", ours[metric], theirs[metric], 1e-9)
        compare("evaluate loss", ours["loss"], theirs["loss"], 1e-9)


@pytest.mark.slow
def test_one_epoch_of_real_mnist_in_float32(mnist_ready):
    from harness.run.parity import lockstep
    from harness.run.prepare import prepare
    from tests.cli.test_cli import ROOT

    inputs = prepare(spec.load(ROOT / "experiments" / "mnist.toml"), seed=0)
    (d,) = list(lockstep(inputs, epochs=1, threads=2))
    assert d.loss_rel_diff <= 1e-3, (d.loss_scratch, d.loss_torch)
    assert d.agreement >= 0.995
    assert d.max_param_diff < 1e-3
