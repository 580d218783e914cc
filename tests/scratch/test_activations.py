import math

import numpy as np
import pytest

from harness.errors import SpecError
from harness.scratch import activations
from harness.scratch.activations import ACTIVATIONS, erf
from tests.gradcheck import numeric_grad, relative_error


def away_from_kinks(rng, shape):
    """Pre-activations with |z| >= 0.05, so that relu-like kinks at 0 never sit inside a finite difference."""
    z = rng.normal(0, 2, shape)
    return np.where(np.abs(z) < 0.05, 0.05 * np.sign(z) + 0.05 * (z == 0), z)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    act = activations.get(name)
    z = away_from_kinks(rng, (5, 4))
    upstream = rng.normal(size=(5, 4))

    def f():
        return float((act.forward(z) * upstream).sum())

    analytic = act.backward(z, act.forward(z), upstream)
    assert relative_error(analytic, numeric_grad(f, z)) <= 1e-6


@pytest.mark.parametrize("name,params", [("leaky_relu", {"slope": 0.2}), ("elu", {"alpha": 0.5})])
def test_parameterised_activations_use_their_parameter(name, params):
    z = np.array([[-2.0, -0.5, 1.5]])
    act = activations.get(name, **params)
    a = act.forward(z)
    if name == "leaky_relu":
        np.testing.assert_allclose(a, [[-0.4, -0.1, 1.5]])
    else:
        np.testing.assert_allclose(a, [[0.5 * math.expm1(-2), 0.5 * math.expm1(-0.5), 1.5]])
    numeric = numeric_grad(lambda: float(act.forward(z).sum()), z)
    assert relative_error(act.backward(z, a, np.ones_like(z)), numeric) <= 1e-6


def test_sigmoid_is_finite_and_exact_at_extremes():
    a = activations.get("sigmoid").forward(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]))
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, [0.0, 1 / (1 + math.exp(40)), 0.5, 1 / (1 + math.exp(-40)), 1.0], rtol=1e-15)


def test_softmax_rows_sum_to_one_without_overflow():
    a = activations.get("softmax").forward(np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(a[0], [0.5, 0.5, 0.0])


def test_softplus_follows_the_threshold_rule():
    act = activations.get("softplus")
    z = np.array([19.0, 20.5, -30.0])
    np.testing.assert_array_equal(act.forward(z)[1], 20.5)
    np.testing.assert_allclose(act.forward(z)[[0, 2]], [math.log1p(math.exp(19)), math.log1p(math.exp(-30))])
    assert act.derivative(z, act.forward(z))[1] == 1.0


def test_erf_agrees_with_the_standard_library_to_a_few_ulp():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 0.5, -0.5, 4.0, -4.0, np.inf, -np.inf]])
    expected = np.array([math.erf(v) for v in x])
    got = erf(x)
    assert np.max(np.abs(got - expected)) <= 4 * np.finfo(np.float64).eps
    assert erf(np.float32([0.25])).dtype == np.float32


def test_elementwise_derivative_agrees_with_backward():
    z = away_from_kinks(np.random.default_rng(1), (3, 3))
    for name, cls in ACTIVATIONS.items():
        if name == "softmax":
            continue
        act = cls()
        a = act.forward(z)
        np.testing.assert_allclose(act.backward(z, a, np.ones_like(z)), act.derivative(z, a), rtol=0, atol=0)


def test_unknown_activation_and_parameter_are_named():
    with pytest.raises(SpecError, match=r"unknown activation 'relu6'.*known: elu"):
        activations.get("relu6")
    with pytest.raises(SpecError, match=r"'tanh' takes no parameters; got alpha"):
        activations.get("tanh", alpha=1.0)


def test_float32_in_float32_out():
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    for name, cls in ACTIVATIONS.items():
        act = cls()
        a = act.forward(z)
        assert a.dtype == np.float32, name
        assert act.backward(z, a, np.ones_like(z)).dtype == np.float32, name


def test_float32_gelu_is_as_accurate_as_float32_allows():
    """float32 takes its own formula of Φ: gelu and its derivative within a few float32 ulps of the exact
    values (math.erf in float64); torch's own float32 gelu is itself off by up to 1e-6 (its vectorised
    erf), and agrees within that."""
    import torch

    z = np.concatenate([np.linspace(-12, 12, 48001), [0.0, 1e-30, -1e-30]]).astype(np.float32)
    z64 = z.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z64])
    act = activations.get("gelu")
    a = act.forward(z)
    assert a.dtype == np.float32
    tol = 3e-7 * np.maximum(1, np.abs(z64))  # about 4 ulps of float32 at either scale
    assert np.all(np.abs(a - z64 * cdf) <= tol)
    exact = cdf + z64 * np.exp(-0.5 * z64 * z64) / math.sqrt(2 * math.pi)
    assert np.all(np.abs(act.derivative(z, a) - exact) <= tol)
    assert np.all(np.abs(a - torch.nn.functional.gelu(torch.from_numpy(z)).numpy()) <= 5 * tol)
