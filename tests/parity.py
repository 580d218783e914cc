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
