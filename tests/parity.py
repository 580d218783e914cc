"""One helper for every parity check: the same inputs to a scratch function and its torch twin.

In the spirit of tinygrad's `helper_test_op`: forward values are compared, then the
gradients, ours from our backward, theirs from `torch.autograd.grad`; a failure shows
ours against theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def compare(what: str, ours, theirs, atol: float) -> None:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape ours {ours.shape} vs theirs {theirs.shape}"
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    if not diff <= atol:
        worst = np.unravel_index(np.argmax(np.abs(ours - theirs)), ours.shape) if ours.ndim else ()
        raise AssertionError(f"{what}: max |ours - theirs| = {diff:.3e} > {atol:.0e} at {worst}\n"
                             f"  ours:   {np.array2string(ours.ravel()[:8], precision=17)}\n"
                             f"  theirs: {np.array2string(theirs.ravel()[:8], precision=17)}")


def check_op(inputs: Sequence[np.ndarray], ours: Callable, ours_grad: Callable, theirs: Callable,
             wrt: Sequence[int] = (0,), atol: float = 1e-10, grad_atol: float = 1e-10, seed: int = 0) -> None:
    """Compare `ours(*inputs)` with `theirs(*tensors)`, then the gradients of <out, g> with
    respect to the inputs listed in `wrt`, for a random upstream g; `ours_grad(*inputs, g)`
    returns those gradients in the order of `wrt`."""
    tensors = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(inputs)]
    out_theirs = theirs(*tensors)
    out_ours = ours(*inputs)
    compare("forward", out_ours, out_theirs.detach().numpy(), atol)

    g = np.random.default_rng(seed).normal(size=np.shape(out_ours))
    grads_theirs = torch.autograd.grad(out_theirs, [tensors[i] for i in wrt], torch.tensor(g))
    grads_ours = ours_grad(*inputs, g)
    for i, o, t in zip(wrt, grads_ours, grads_theirs, strict=True):
        compare(f"gradient of input {i}", o, t.numpy(), grad_atol)


def both_engines(s, seed: int):
    """The scratch engine and its torch twin of an experiment, from the same initial parameters."""
    from harness.engines import engine_class
    from harness.init import initial_parameters

    params = initial_parameters(s.network, seed=seed, dtype=s.training.dtype)
    return [engine_class(name)(s.network, s.training, params, seed=seed) for name in ("scratch", "torch")]


def check_gradients(s, seed: int, x: np.ndarray, y: np.ndarray, atol: float = 1e-9, grad_atol: float = 1e-9) -> None:
    """Both engines' predictions, loss and every parameter gradient on one batch."""
    scratch, reference = both_engines(s, seed)
    arch = s.network.describe()
    compare(f"predictions of {arch}", scratch.predict(x), reference.predict(x), atol)
    loss_ours, grads_ours = scratch.gradients(x, y)
    loss_theirs, grads_theirs = reference.gradients(x, y)
    compare(f"loss of {arch}", loss_ours, loss_theirs, atol)
    assert set(grads_ours) == set(grads_theirs)
    for k in grads_ours:
        compare(f"{k} of {arch}", grads_ours[k], grads_theirs[k], grad_atol)


def check_trajectory(s, seed: int, x: np.ndarray, y: np.ndarray, steps: int = 200, batch: int = 10,
                     atol: float = 1e-8) -> None:
    """Both engines trained on the same batches for `steps` steps: every epoch's loss, then parameters and state."""
    from harness.engines import epoch_batches

    scratch, reference = both_engines(s, seed)
    per_epoch = len(x) // batch
    for epoch in range(steps // per_epoch):
        batches = epoch_batches(len(x), batch, seed, epoch)
        compare(f"epoch {epoch} loss", scratch.train_epoch(x, y, batches), reference.train_epoch(x, y, batches), atol)
    theirs = {**reference.parameters(), **reference.state()}
    assert set(theirs) == {*scratch.parameters(), *scratch.state()}
    for k, v in {**scratch.parameters(), **scratch.state()}.items():  # parameters and state alike
        compare(f"{k} after {steps} steps", v, theirs[k], atol)


def torch_with_itself(inputs, variants) -> float:
    """Agreement on the test set of torch trained one epoch twice from the same start, under each
    of two settings (`variants`: context-manager factories, e.g. another thread count): the
    floor of float32 agreement that rounding alone leaves."""
    from harness.engines import engine_class
    from harness.metrics import get as get_metric

    runs = []
    for variant in variants:
        with variant():
            e = engine_class("torch")(inputs.spec.network, inputs.spec.training, inputs.initial)
            e.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(0))
            runs.append(e.predict(inputs.x_test))
    return get_metric("accuracy").agreement(*runs)
