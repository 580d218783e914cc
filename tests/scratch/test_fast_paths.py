"""The scratch engine's fast paths against the plain formulas they replace."""

import numpy as np
import pytest

from harness.scratch import activations, losses
from harness.scratch.activations import Ones, row_max, row_sum


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_is_the_row_reduction_to_the_bit_for_any_width(dtype):
    rng = np.random.default_rng(0)
    for k in range(1, 40):
        x = rng.standard_normal((9, k)).astype(dtype)
        x[0, :] = -np.inf
        x[1, k // 2] = np.nan
        x[2, -1] = np.inf
        expected = np.maximum.reduce(x, axis=1, keepdims=True)
        assert np.array_equal(row_max(x), expected, equal_nan=True), k
        assert np.allclose(row_sum(x[3:], Ones()), x[3:].sum(axis=1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_fused_head_is_sigmoid_loss_and_gradient_to_the_bit(dtype):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((16, 3)) * 8).astype(dtype)
    z[0, 0], z[1, 1] = 0.0, -50.0
    y = rng.integers(0, 2, (16, 3)).astype(dtype)
    bce, sig = losses.get("bce"), activations.get("sigmoid")
    a, g = np.empty_like(z), np.empty_like(z)
    value = bce.fused_head(z, y, sig, a, g)
    assert value == bce.value_from_logits(z, y)
    assert np.array_equal(a, sig.forward(z))
    assert np.array_equal(g, bce.fused_grad(sig.forward(z), y))


def test_cross_entropy_head_labels_behave_as_indexing():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((6, 4))
    ce, sm = losses.get("cross_entropy"), activations.get("softmax")
    a, g = np.empty_like(z), np.empty_like(z)
    wrapped = ce.fused_head(z, np.array([0, -1, 3, -4, 2, 1]), sm, a, g)
    assert wrapped == pytest.approx(ce.value_from_logits(z, np.array([0, 3, 3, 0, 2, 1])), rel=1e-14)
    with pytest.raises(IndexError):
        ce.fused_head(z, np.array([0, 1, 2, 3, 4, 0]), sm, a, g)


def test_each_owner_keeps_its_own_read_only_vector_of_ones():
    mine, yours = Ones(), Ones()
    v = mine.get(5, np.dtype(np.float64))
    assert v is mine.get(5, np.dtype(np.float64)) and v is not yours.get(5, np.dtype(np.float64))
    assert v.tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="read-only"):
        v[0] = 2.0
