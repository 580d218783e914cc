"""Recurrent networks on both engines: random stacks of rnn, lstm and gru layers, their gradients
through time and their training trajectories against torch.nn.RNN/LSTM/GRU."""

import numpy as np
import pytest

from harness import spec
from harness.scratch import losses
from tests.parity import both_engines, check_gradients, check_trajectory, compare, torch_with_itself
from tests.reference.test_parity import HIDDEN

pytestmark = pytest.mark.parity
KINDS = ("rnn", "lstm", "gru")


def random_rnn(seed: int, dtype: str = "float64", optimizer: dict | None = None, **training) -> spec.ExperimentSpec:
    """1-2 recurrent layers (the last one's return_sequences decides: an output per step, or
    one from the last state), sometimes a linear layer after; sequence lengths 1, 2 or 17."""
    rng = np.random.default_rng(seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    depth = int(rng.integers(1, 3))
    per_step = bool(rng.random() < 0.4)
    layers = []
    for i in range(depth):
        kind = KINDS[(seed + i) % 3]
        layer = {"type": kind, "units": int(rng.integers(1, 7)), "return_sequences": i < depth - 1 or per_step}
        if kind == "rnn":
            layer["activation"] = pick(["tanh", "relu"])
        if rng.random() < 0.2:
            layer["init"] = pick(["xavier_uniform", "he_normal"])
        layers.append(layer)
    if rng.random() < 0.5:
        layers.append({"type": "linear", "units": int(rng.integers(1, 6)), "activation": pick(HIDDEN)})
    loss, out_act = [("mse", "identity"), ("bce", "sigmoid"), ("cross_entropy", "softmax")][seed % 3]
    if per_step and loss == "cross_entropy":
        loss, out_act = "mse", "tanh"
    outputs = int(rng.integers(2, 5)) if out_act == "softmax" else int(rng.integers(1, 4))
    steps = [1, 2, 17][seed % 3]
    return spec.from_dict({
        "data": {"dataset": "xor"},
        "network": {"input_shape": [steps, int(rng.integers(1, 4))], "layers": layers, "outputs": outputs,
                    "output_activation": out_act},
        "training": {"loss": loss, "dtype": dtype, "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.05},
                     **training},
    })


def sequence_batch(s: spec.ExperimentSpec, n: int, seed: int):
    rng = np.random.default_rng(seed + 2000)
    x = rng.normal(size=(n, *s.network.input_shape)).astype(s.training.dtype)
    out = s.network.shapes[-1]
    k = s.network.outputs
    if s.training.loss == "cross_entropy":
        raw = rng.integers(0, k, n)
    else:
        raw = rng.integers(0, 2, (n, *out)) if s.training.loss == "bce" else rng.normal(size=(n, *out))
    return x, losses.get(s.training.loss).targets(raw, k, s.training.dtype)


SEEDS = range(36)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_recurrent_network_gradients(seed):
    s = random_rnn(seed)
    check_gradients(s, seed, *sequence_batch(s, 5, seed), atol=1e-10)


def test_the_random_recurrent_networks_cover_the_space():
    nets = [random_rnn(seed).network for seed in SEEDS]
    layers = [layer for n in nets for layer in n.layers]
    assert {layer.type for layer in layers} >= set(KINDS) | {"linear"}
    assert {n.input_shape[0] for n in nets} == {1, 2, 17}
    assert {len(n.shapes[-1]) for n in nets} == {1, 2}  # one output, and an output per step
    assert {layer.get("activation") for layer in layers if layer.type == "rnn"} == {"tanh", "relu"}
    assert sum(len(n.layers) > 1 and n.layers[1].type in KINDS for n in nets) >= 5  # stacked


@pytest.mark.parametrize("seed,optimizer", [(0, {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}),
                                            (4, {"name": "adam", "learning_rate": 0.01}),
                                            (8, {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9})])
def test_recurrent_training_trajectories_stay_together_for_200_steps(seed, optimizer):
    s = random_rnn(seed, optimizer=optimizer, lr_decay=0.95)
    check_trajectory(s, seed, *sequence_batch(s, 40, seed))


def test_a_network_with_open_time_runs_on_any_length():
    s = spec.from_dict({"data": {"dataset": "binary_addition"}, "network": {
        "input_shape": [0, 2], "layers": [{"type": "gru", "units": 4, "return_sequences": True}], "outputs": 1,
        "output_activation": "sigmoid"}, "training": {"loss": "bce", "dtype": "float64"}})
    scratch, reference = both_engines(s, 0)
    for steps in (3, 9, 33):
        x = np.random.default_rng(steps).integers(0, 2, (6, steps, 2)).astype(float)
        ours = scratch.predict(x)
        assert ours.shape == (6, steps, 1)
        compare(f"{steps} steps", ours, reference.predict(x), 1e-12)


@pytest.mark.slow
def test_real_mnist_rows_in_float64_and_float32(mnist_ready):
    """MNIST read row by row by an LSTM: 100 float64 steps to 1e-9. In float32 one epoch of
    torch with its fused oneDNN LSTM against torch without it already disagrees on a few
    percent of the test set: scratch against torch must agree at least about as well."""
    import torch

    from harness.engines import pin_threads
    from harness.run.parity import lockstep
    from harness.run.prepare import prepare
    from tests.cli.test_cli import ROOT

    path = ROOT / "experiments" / "mnist_rnn.toml"
    exact = prepare(spec.load(path, ['training.dtype="float64"', "data.train_size=6400"]), seed=0)
    (d64,) = list(lockstep(exact, epochs=1, threads=2))
    assert d64.max_param_diff <= 1e-9 and d64.agreement == 1.0
    inputs = prepare(spec.load(path), seed=0)
    (d,) = list(lockstep(inputs, epochs=1, threads=2))
    pin_threads(2, ("torch",))
    floor = torch_with_itself(inputs, [lambda f=f: torch.backends.mkldnn.flags(enabled=f) for f in (True, False)])
    assert d.agreement >= floor - 0.005, (d.agreement, floor)
    assert d.loss_rel_diff <= 2e-2, d
