"""Optimizers with the update rules of torch.optim, applied in place to a dict of arrays.

Each optimizer is written once and loops over the named parameters; state (momentum
buffers, moments) is kept per name. Hyperparameter defaults are torch's, except the
learning rate, which torch does not default for SGD.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from harness import catalog
from harness.errors import SpecError, unknown_name


class Optimizer:
    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, params: dict[str, np.ndarray], **settings: Any) -> None:
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise SpecError(f"optimizer {self.name!r} takes {', '.join(sorted(self.defaults))}; "
                            f"got {', '.join(sorted(unknown))}")
        self.params = params
        self.settings = {**self.defaults, **settings}
        self.steps = 0
        self._tmp = {k: np.empty_like(v) for k, v in params.items()}  # scratch space, so a step allocates nothing

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in place from its gradient."""
        self.steps += 1
        for name, p in self.params.items():
            self._update(name, p, grads[name])

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, torch.optim.SGD's rule.

    g ← g + λ·p (weight decay λ); with momentum μ: b ← g on the first step, else
    b ← μ·b + (1 - τ)·g (dampening τ); then g ← g + μ·b (nesterov) or g ← b;
    finally p ← p - lr·g.
    """

    name = "sgd"
    defaults = dict(catalog.OPTIMIZERS["sgd"])

    def __init__(self, params, **settings):
        super().__init__(params, **settings)
        self.buffers: dict[str, np.ndarray] = {}
        self._tmp2: dict[str, np.ndarray] = {}

    def _update(self, name, p, g):
        s, tmp = self.settings, self._tmp[name]
        if s["weight_decay"]:
            g = np.add(g, np.multiply(p, s["weight_decay"], out=tmp), out=tmp)
        if s["momentum"]:
            buf = self.buffers.get(name)
            if buf is None:
                buf = self.buffers[name] = g.copy()
            else:
                buf *= s["momentum"]
                if s["dampening"]:
                    buf += np.multiply(g, 1 - s["dampening"], out=tmp)
                else:
                    buf += g
            if s["nesterov"]:
                extra = self._tmp2.setdefault(name, np.empty_like(p))  # tmp may hold the decayed g
                g = np.add(g, np.multiply(buf, s["momentum"], out=extra), out=extra)
            else:
                g = buf
        p -= np.multiply(g, s["learning_rate"], out=tmp)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), torch.optim.Adam's rule with L2 weight decay.

    g ← g + λ·p; m ← m + (1 - β1)(g - m); v ← β2·v + (1 - β2)·g²;
    p ← p - (lr / (1 - β1^t)) · m / (√v / √(1 - β2^t) + ε).
    """

    name = "adam"
    defaults = dict(catalog.OPTIMIZERS["adam"])
    decoupled = False

    def __init__(self, params, **settings):
        super().__init__(params, **settings)
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def _update(self, name, p, g):
        s, tmp = self.settings, self._tmp[name]
        lr, (b1, b2), t = s["learning_rate"], s["betas"], self.steps
        if s["weight_decay"]:
            if self.decoupled:
                p *= 1 - lr * s["weight_decay"]
            else:
                g = g + s["weight_decay"] * p  # a new array: tmp is needed below
        m, v = self.m[name], self.v[name]
        m += np.multiply(np.subtract(g, m, out=tmp), 1 - b1, out=tmp)
        v *= b2
        v += np.multiply(np.multiply(g, 1 - b2, out=tmp), g, out=tmp)
        denom = np.sqrt(v, out=tmp)
        denom /= np.sqrt(1 - b2**t)
        denom += s["eps"]
        p -= np.multiply(np.divide(m, denom, out=tmp), lr / (1 - b1**t), out=tmp)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam whose weight decay is p ← p·(1 - lr·λ), torch's rule."""

    name = "adamw"
    defaults = dict(catalog.OPTIMIZERS["adamw"])
    decoupled = True


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def get(name: str, params: dict[str, np.ndarray], **settings: Any) -> Optimizer:
    """The optimizer registered under `name`, over `params`."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise SpecError(unknown_name("optimizer", name, OPTIMIZERS)) from None
    return cls(params, **settings)
