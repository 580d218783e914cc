import math

import numpy as np
import pytest

from harness.scratch import activations, losses
from tests.gradcheck import numeric_grad, relative_error

RNG = np.random.default_rng(3)


def outputs_and_targets(loss_name):
    if loss_name == "mse":
        return RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    if loss_name == "bce":
        return RNG.uniform(0.05, 0.95, (6, 2)), RNG.integers(0, 2, (6, 2)).astype(float)
    a = activations.get("softmax").forward(RNG.normal(size=(6, 4)))
    return a, RNG.integers(0, 4, 6)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_grad_matches_finite_differences(name):
    loss = losses.get(name)
    a, y = outputs_and_targets(name)
    numeric = numeric_grad(lambda: loss.value(a, y), a)
    assert relative_error(loss.grad(a, y), numeric) <= 1e-6


@pytest.mark.parametrize("name", ["bce", "cross_entropy"])
def test_fused_grad_is_the_gradient_with_respect_to_logits(name):
    loss = losses.get(name)
    act = activations.get(loss.fused_with)
    z = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 2, (6, 4)).astype(float) if name == "bce" else RNG.integers(0, 4, 6)
    numeric = numeric_grad(lambda: loss.value_from_logits(z, y), z)
    assert relative_error(loss.fused_grad(act.forward(z), y), numeric) <= 1e-6
    # and from logits the value is the value from the activations
    assert loss.value_from_logits(z, y) == pytest.approx(loss.value(act.forward(z), y), rel=1e-12)


def test_reductions_are_torch_s_means():
    a, y = np.array([[1.0, 2.0], [3.0, 5.0]]), np.zeros((2, 2))
    assert losses.get("mse").value(a, y) == pytest.approx((1 + 4 + 9 + 25) / 4)
    p = np.array([[0.9], [0.2]])
    t = np.array([[1.0], [0.0]])
    assert losses.get("bce").value(p, t) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    probs = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert losses.get("cross_entropy").value(probs, np.array([0, 1])) == pytest.approx(
        -(math.log(0.7) + math.log(0.6)) / 2)


def test_losses_from_logits_stay_finite_for_huge_logits():
    z = np.array([[800.0, -800.0], [-800.0, 800.0]])
    assert math.isfinite(losses.get("cross_entropy").value_from_logits(z, np.array([1, 0])))
    assert losses.get("cross_entropy").value_from_logits(z, np.array([1, 0])) == pytest.approx(1600.0)
    assert losses.get("bce").value_from_logits(z, np.array([[0.0, 1.0], [1.0, 0.0]])) == pytest.approx(800.0)


def test_bce_from_probabilities_clamps_log_at_minus_100_as_torch():
    assert losses.get("bce").value(np.array([[0.0]]), np.array([[1.0]])) == pytest.approx(100.0)
