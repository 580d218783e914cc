import numpy as np
import pytest

from harness.errors import SpecError
from harness.scratch import optim


def run(name, steps, grad=0.5, **settings):
    p = {"w": np.array([1.0])}
    opt = optim.get(name, p, **settings)
    trace = []
    for _ in range(steps):
        opt.step({"w": np.array([grad])})
        trace.append(float(p["w"][0]))
    return trace


def test_plain_sgd():
    assert run("sgd", 2, learning_rate=0.1) == pytest.approx([0.95, 0.90])


def test_sgd_momentum_starts_its_buffer_at_the_first_gradient():
    # b1 = 0.5 -> p = 0.95; b2 = 0.9*0.5 + 0.5 = 0.95 -> p = 0.855
    assert run("sgd", 2, learning_rate=0.1, momentum=0.9) == pytest.approx([0.95, 0.855])


def test_sgd_dampening_scales_later_gradients_only():
    # b1 = 0.5; b2 = 0.9*0.5 + 0.5*0.5 = 0.7 -> p = 0.95 - 0.07
    assert run("sgd", 2, learning_rate=0.1, momentum=0.9, dampening=0.5) == pytest.approx([0.95, 0.88])


def test_nesterov():
    # step 1: b = 0.5, g = 0.5 + 0.9*0.5 = 0.95; step 2: b = 0.95, g = 0.5 + 0.855 = 1.355
    assert run("sgd", 2, learning_rate=0.1, momentum=0.9, nesterov=True) == pytest.approx([0.905, 0.7695])


def test_sgd_weight_decay_adds_lambda_p():
    assert run("sgd", 1, learning_rate=0.1, weight_decay=0.1) == pytest.approx([1 - 0.1 * (0.5 + 0.1)])


def test_adam_moves_by_the_learning_rate_under_a_constant_gradient():
    # bias correction makes m_hat = g and v_hat = g^2 at every step, so each step is lr * g/|g|
    assert run("adam", 3, learning_rate=0.1) == pytest.approx([0.9, 0.8, 0.7], abs=1e-7)


def test_adam_second_step_by_hand():
    g1, g2, lr, b1, b2, eps = 0.5, -0.2, 0.01, 0.9, 0.999, 1e-8
    p = {"w": np.array([1.0])}
    opt = optim.get("adam", p, learning_rate=lr)
    opt.step({"w": np.array([g1])})
    opt.step({"w": np.array([g2])})
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    m2, v2 = m1 + (1 - b1) * (g2 - m1), b2 * v1 + (1 - b2) * g2**2
    p1 = 1 - lr / (1 - b1) * m1 / (np.sqrt(v1) / np.sqrt(1 - b2) + eps)
    p2 = p1 - lr / (1 - b1**2) * m2 / (np.sqrt(v2) / np.sqrt(1 - b2**2) + eps)
    assert p["w"][0] == pytest.approx(p2, rel=1e-14)


def test_adam_l2_and_adamw_decoupled_weight_decay_differ():
    adam = run("adam", 1, learning_rate=0.1, weight_decay=0.5)
    adamw = run("adamw", 1, learning_rate=0.1, weight_decay=0.5)
    assert adam == pytest.approx([0.9], abs=1e-7)          # g + 0.5*p still gives a unit step
    assert adamw == pytest.approx([1 * (1 - 0.05) - 0.1], abs=1e-7)


def test_optimizers_update_every_parameter_of_a_dict_in_place():
    params = {"a": np.ones(3), "b": np.ones((2, 2))}
    ids = {k: id(v) for k, v in params.items()}
    optim.get("adam", params).step({"a": np.ones(3), "b": np.ones((2, 2))})
    assert {k: id(v) for k, v in params.items()} == ids
    assert all((v < 1).all() for v in params.values())


def test_unknown_optimizer_and_setting():
    with pytest.raises(SpecError, match="unknown optimizer 'rmsprop'"):
        optim.get("rmsprop", {})
    with pytest.raises(SpecError, match="'adam' takes .*; got momentum"):
        optim.get("adam", {}, momentum=0.9)
