"""Networks of token ids and of image tokens on both engines: embedding, positional, tokens and seqpool
against their torch twins, gradients and 200 training steps in float64, and the sort experiment."""

import numpy as np
import pytest

from harness import spec
from harness.run.prepare import prepare
from harness.scratch import losses
from tests.parity import both_engines, check_gradients, check_trajectory, compare

pytestmark = pytest.mark.parity

IDS = {"input_shape": [7], "layers": [
    {"type": "embedding", "vocab": 5, "dim": 6}, {"type": "positional", "max_len": 9},
    {"type": "lstm", "units": 5, "return_sequences": True}, {"type": "linear", "units": 4, "activation": "relu"}],
    "outputs": 5, "output_activation": "softmax"}  # an output per step, cross-entropy per step
IMAGE = {"input_shape": [2, 6, 4], "layers": [
    {"type": "conv2d", "filters": 4, "kernel": 2, "stride": 2, "activation": "tanh"}, {"type": "tokens"},
    {"type": "positional", "max_len": 6}, {"type": "linear", "units": 5, "activation": "gelu"},
    {"type": "seqpool", "mode": "mean"}], "outputs": 3, "output_activation": "softmax"}
POOLED = {"input_shape": [6], "layers": [
    {"type": "embedding", "vocab": 4, "dim": 3}, {"type": "linear", "units": 5, "activation": "tanh"},
    {"type": "seqpool", "mode": "first"}], "outputs": 2, "output_activation": "sigmoid"}


def experiment(network: dict, loss: str) -> spec.ExperimentSpec:
    return spec.from_dict({"data": {"dataset": "xor"}, "network": network,
                           "training": {"loss": loss, "dtype": "float64",
                                        "optimizer": {"name": "adam", "learning_rate": 0.01}}})


def data(s: spec.ExperimentSpec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = s.network.all_layers[0]
    x = (rng.integers(0, first.get("vocab"), (n, *s.network.input_shape)).astype(np.float64)
         if first.kind.takes_ids else rng.normal(size=(n, *s.network.input_shape)))
    out, k = s.network.shapes[-1], s.network.outputs
    raw = rng.integers(0, k, (n, *out[:-1])) if s.training.loss == "cross_entropy" else rng.integers(0, 2, (n, k))
    return x, losses.get(s.training.loss).targets(raw, k, "float64")


CASES = {"ids per step": (IDS, "cross_entropy"), "image tokens": (IMAGE, "cross_entropy"),
         "ids pooled": (POOLED, "bce")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_agree(case):
    s = experiment(*CASES[case])
    x, y = data(s, 10, seed=1)
    check_gradients(s, 0, x, y, atol=1e-10, grad_atol=1e-10)


@pytest.mark.parametrize("case", sorted(CASES))
def test_200_training_steps_agree_to_1e_8(case):
    s = experiment(*CASES[case])
    x, y = data(s, 40, seed=2)
    check_trajectory(s, 0, x, y, steps=200, batch=8, atol=1e-8)


def test_the_sort_experiment_trains_alike_on_both_engines():
    s = spec.load("experiments/sort_digits.toml", ["training.dtype='float64'", "data.train_size=96",
                                                   "data.test_size=64", "training.batch_size=16"])
    inputs = prepare(s, 0)
    scratch, reference = both_engines(s, 0)
    for epoch in range(2):
        compare(f"epoch {epoch} loss", scratch.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(epoch)),
                reference.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(epoch)), 1e-9)
    ours = scratch.evaluate(inputs.x_test, inputs.y_test, "accuracy")
    theirs = reference.evaluate(inputs.x_test, inputs.y_test, "accuracy")
    assert ours["accuracy"] == theirs["accuracy"]
    compare("test loss", ours["loss"], theirs["loss"], 1e-9)
    assert 0 < ours["loss"] < np.log(10)  # below the loss of a uniform guess over 10 classes per step
