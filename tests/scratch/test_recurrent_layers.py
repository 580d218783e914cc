"""Parity of the scratch recurrent layers (RNN, LSTM, GRU) with torch.nn.RNN/LSTM/GRU: forward and the
gradients of the input and of all four parameters within 1e-10 in float64 over a grid of sequence
lengths, batch, feature and unit sizes, with and without return_sequences; stacked layers chained
by hand; float32 to float32's rounding; one layer object on two sequence lengths; and nothing kept
by an evaluation forward."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from harness.layers import LayerSpec, ShapeError
from harness.scratch.layers import GRU, LSTM, RNN
from tests.parity import compare

OURS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
THEIRS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
VARIANTS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]


def spec(kind, units, sequences, activation=None) -> LayerSpec:
    settings = [("units", units), ("return_sequences", sequences), ("init", "torch_default")]
    if kind == "rnn":
        settings.append(("activation", activation))
    return LayerSpec(kind, tuple(settings))


def pair(kind, features, units, sequences, activation=None, time=0, dtype=np.float64, seed=0):
    """Our layer, bound as the network binds it (parameters and gradients views into one flat
    buffer each, the gradients NaN until backward writes them), and its torch twin in float64 with
    the same parameters."""
    torch.manual_seed(seed)
    kwargs = {"nonlinearity": activation} if kind == "rnn" else {}
    theirs = THEIRS[kind](features, units, batch_first=True, dtype=torch.float64, **kwargs)
    layer = OURS[kind](spec(kind, units, sequences, activation), (time, features), dtype)
    shapes = layer.param_shapes()
    assert tuple(shapes) == PARAMS
    sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
    flat, flat_grad = np.empty(sum(sizes.values()), dtype), np.full(sum(sizes.values()), np.nan, dtype)
    p, g, at = {}, {}, 0
    state = theirs.state_dict()
    for k, s in shapes.items():
        assert tuple(state[k].shape) == s
        p[k], g[k] = flat[at:at + sizes[k]].reshape(s), flat_grad[at:at + sizes[k]].reshape(s)
        p[k][...] = state[k].numpy()
        state[k] = torch.tensor(p[k], dtype=torch.float64)  # float32 layers: the twin gets the rounded values
        at += sizes[k]
    theirs.load_state_dict(state)
    layer.bind(p, g)
    layer.flat_grad = flat_grad
    return layer, theirs


def run(layer, x, dy, need_dx=True):
    """forward (training), then backward with the output overwritten: the layer after may overwrite
    it in place, so backward must not read it. x and dy must come back unchanged. Returns (y, dx)."""
    x0, dy0 = x.copy(), dy.copy()
    y = layer.forward(x, training=True)
    assert y.dtype == layer.dtype and y.flags.c_contiguous
    assert y.shape == (len(x), *((x.shape[1], layer.units) if layer.sequences else (layer.units,)))
    out = y.copy()
    y.fill(np.nan)
    dx = layer.backward(dy, need_dx)
    assert dx is None if not need_dx else dx.shape == x.shape and dx.dtype == layer.dtype
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)
    assert np.isfinite(layer.flat_grad).all(), "backward left part of a gradient unwritten"
    return out, dx


def twin(theirs, x, sequences):
    """torch's output (every step, or the last step's h) for x, with x requiring its gradient."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out, _ = theirs(xt)
    return xt, out if sequences else out[:, -1]


def check(layer, theirs, x, atol=1e-10, seed=1, relative=False):
    """Forward and every gradient against the twin's; `relative`: atol scales with the largest
    value of each reference (a weight gradient sums N·T products: float32 loses digits in it)."""
    rng = np.random.default_rng(seed)
    xt, yt = twin(theirs, x, layer.sequences)
    dy = rng.normal(size=yt.shape).astype(layer.dtype)
    y, dx = run(layer, x.astype(layer.dtype), dy)
    yt.backward(torch.tensor(dy, dtype=torch.float64))
    pairs = [("forward", y, yt.detach().numpy()), ("dL/dx", dx, xt.grad.numpy())]
    pairs += [(f"dL/d{name}", layer.grads[name], p.grad.numpy()) for name, p in theirs.named_parameters()]
    for what, ours, ref in pairs:
        compare(what, ours, ref, atol * max(1.0, float(np.abs(ref).max())) if relative else atol)


# -- one layer against torch, float64 --------------------------------------------------------------

GRID = list(itertools.product(VARIANTS, (1, 2, 17), (True, False), (1, 4), (1, 3), (1, 6)))


@pytest.mark.parametrize(("variant", "steps", "sequences", "batch", "features", "units"), GRID,
                         ids=[f"{k}{'-' + a if a else ''}-T{t}-{'seq' if s else 'last'}-N{n}-F{f}-U{u}"
                              for (k, a), t, s, n, f, u in GRID])
def test_parity_float64(variant, steps, sequences, batch, features, units):
    kind, activation = variant
    layer, theirs = pair(kind, features, units, sequences, activation, time=steps, seed=steps * 7 + units)
    x = np.random.default_rng(batch + features).normal(size=(batch, steps, features))
    check(layer, theirs, x)


@pytest.mark.parametrize(("kind", "activation"), VARIANTS)
def test_without_dx_the_same_gradients(kind, activation):
    layer, _ = pair(kind, 3, 5, True, activation, time=6)
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 6, 5))
    run(layer, x, dy, need_dx=True)
    with_dx = layer.flat_grad.copy()
    layer.flat_grad.fill(np.nan)
    _, dx = run(layer, x, dy, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(layer.flat_grad, with_dx)


@pytest.mark.parametrize(("kind", "activation"), VARIANTS)
def test_large_preactivations(kind, activation):
    """Saturated gates (|z| in the tens): σ computed through tanh stays exact to rounding."""
    layer, theirs = pair(kind, 3, 4, True, activation, time=9)
    layer.params["weight_ih_l0"] *= 30
    layer.params["bias_hh_l0"] *= 30
    with torch.no_grad():
        theirs.weight_ih_l0.mul_(30)
        theirs.bias_hh_l0.mul_(30)
    check(layer, theirs, np.random.default_rng(3).normal(size=(4, 9, 3)))


# -- stacked layers, chained by hand ---------------------------------------------------------------

STACKS = [
    [("gru", None, 6, True), ("lstm", None, 5, False)],
    [("lstm", None, 4, True), ("rnn", "relu", 3, True), ("gru", None, 2, False)],
    [("rnn", "tanh", 5, True), ("lstm", None, 6, True)],
]


@pytest.mark.parametrize("stack", STACKS, ids=["gru-lstm", "lstm-rnn-gru", "rnn-lstm"])
def test_stacked(stack):
    features, steps, batch = 3, 11, 4
    pairs = []
    for depth, (kind, activation, units, sequences) in enumerate(stack):
        pairs.append(pair(kind, features, units, sequences, activation, time=steps, seed=depth))
        features = units
    rng = np.random.default_rng(5)
    x = rng.normal(size=(batch, steps, 3))
    xt = torch.tensor(x, requires_grad=True)
    h, ht = x, xt
    for layer, theirs in pairs:
        h = layer.forward(h, training=True)
        ht, _ = theirs(ht)
        if not layer.sequences:
            ht = ht[:, -1]
    compare("forward", h, ht.detach().numpy(), 1e-10)
    dy = rng.normal(size=h.shape)
    ht.backward(torch.tensor(dy))
    g = dy
    for layer, _ in reversed(pairs):
        g = layer.backward(g, need_dx=True)
    compare("dL/dx", g, xt.grad.numpy(), 1e-10)
    for depth, (layer, theirs) in enumerate(pairs):
        for name, param in theirs.named_parameters():
            compare(f"layer {depth} dL/d{name}", layer.grads[name], param.grad.numpy(), 1e-10)


# -- float32 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "activation"), VARIANTS)
@pytest.mark.parametrize("sequences", [True, False])
def test_float32(kind, activation, sequences):
    """float32 throughout (no upcast), within float32's rounding of the float64 result (relative
    errors are about 5e-7 here, as torch's float32 kernels make)."""
    layer, theirs = pair(kind, 7, 16, sequences, activation, time=28, dtype=np.float32)
    x = np.random.default_rng(2).normal(size=(8, 28, 7)).astype(np.float32)
    check(layer, theirs, x, atol=1e-5, relative=True)
    assert all(b.dtype == np.float32 for b in layer._buffers.values())
    assert all(g.dtype == np.float32 for g in layer.grads.values())


# -- open time length, evaluation -------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "activation"), VARIANTS)
@pytest.mark.parametrize("sequences", [True, False])
def test_open_time_length(kind, activation, sequences):
    """A layer built for input [0, features] runs on any length; the same object on T = 5, 9, 5."""
    layer, theirs = pair(kind, 3, 4, sequences, activation, time=0)
    assert layer.out_shape == ((0, 4) if sequences else (4,))
    rng = np.random.default_rng(4)
    for steps in (5, 9, 5):
        for p in theirs.parameters():
            p.grad = None
        check(layer, theirs, rng.normal(size=(3, steps, 3)), seed=steps)


@pytest.mark.parametrize(("kind", "activation"), VARIANTS)
@pytest.mark.parametrize("sequences", [True, False])
def test_evaluation_keeps_nothing(kind, activation, sequences):
    """forward(training=False) gives the training forward's values, keeps nothing for backward, and
    leaves a training forward's state alone: backward after it still differentiates the training
    batch. Without return_sequences it stores no state per step: each extra step costs only its
    input projection ([x | 1] and the gates' projections)."""
    layer, theirs = pair(kind, 3, 5, sequences, activation, time=0)
    rng = np.random.default_rng(6)
    x_eval = rng.normal(size=(4, 7, 3))
    y_eval = layer.forward(x_eval, training=False).copy()
    with pytest.raises(RuntimeError, match="without a forward in training mode"):
        layer.backward(np.zeros_like(y_eval))
    compare("eval forward", y_eval, twin(theirs, x_eval, sequences)[1].detach().numpy(), 1e-10)

    x = rng.normal(size=(4, 7, 3))
    y_train = layer.forward(x, training=True).copy()
    np.testing.assert_array_equal(layer.forward(x, training=False), y_train)
    layer.forward(x_eval, training=False)
    xt, yt = twin(theirs, x, sequences)
    dy = rng.normal(size=yt.shape)
    dx = layer.backward(dy)
    yt.backward(torch.tensor(dy))
    compare("dL/dx after an eval forward", dx, xt.grad.numpy(), 1e-10)

    if not sequences:
        def eval_bytes(steps):
            fresh, _ = pair(kind, 3, 5, sequences, activation, time=0)
            fresh.forward(rng.normal(size=(4, steps, 3)), training=False)
            return sum(b.nbytes for b in fresh._buffers.values())
        per_step = (eval_bytes(20) - eval_bytes(10)) / 10
        assert per_step <= 4 * (3 + 8 + layer.gates * 5) * 8  # [x | 1] (padded up to 8 columns), projections


def test_wrong_shapes():
    layer, _ = pair("lstm", 3, 4, False, time=5)
    for shape in [(2, 5, 4), (2, 15), (2, 0, 3)]:
        with pytest.raises(ShapeError, match="lstm takes a batch of sequences"):
            layer.forward(np.zeros(shape))
