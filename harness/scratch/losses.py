"""Loss functions: each value beside its gradient, with PyTorch's reductions.

`value(a, y)` and `grad(a, y)` take the network's output activations. A loss that
pairs with an output activation (sigmoid + bce, softmax + cross_entropy) also offers
`value_from_logits(z, y)`, stable for any logit, and `fused_grad(a, y)`, the gradient
with respect to the logits z, (a - y)/n, which never forms the activation's Jacobian.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness import catalog
from harness.errors import SpecError, unknown_name
from harness.scratch.activations import Ones, row_max, row_sum


class Loss:
    name: ClassVar[str]
    fused_with: ClassVar[str | None] = None  # the output activation whose gradient fuses with ours
    allowed_outputs: ClassVar[tuple[str, ...] | None] = None  # None: any output activation

    def targets(self, y: np.ndarray, outputs: int, dtype: str | np.dtype) -> np.ndarray:
        """y as this loss takes it: (n, outputs) values in `dtype`, class labels one-hot encoded."""
        y = np.asarray(y)
        if y.ndim == 1 and y.dtype.kind in "iu" and outputs > 1:
            return np.eye(outputs, dtype=dtype)[y]
        return np.ascontiguousarray(y, dtype=dtype).reshape(len(y), -1)

    def value(self, a: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def grad(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def value_from_logits(self, z: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def fused_grad(self, a: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """dL/dz for the fused output activation; written into `out` when given."""
        raise NotImplementedError

    def fused_head(self, z: np.ndarray, y: np.ndarray, act, a: np.ndarray, g: np.ndarray) -> float:
        """The output activation of logits z into `a`, dL/dz into `g`, and the loss, in one go."""
        act.forward(z, out=a)
        value = self.value_from_logits(z, y)
        self.fused_grad(a, y, out=g)
        return value


class MSE(Loss):
    """L = mean over all n·k elements of (a - y)²; dL/da = 2 (a - y) / (n·k). As torch's MSELoss."""

    name = "mse"

    def value(self, a, y):
        d = a - y
        return float(np.vdot(d, d)) / d.size

    def grad(self, a, y):
        return (a - y) * a.dtype.type(2 / a.size)


class BCE(Loss):
    """Binary cross-entropy, the mean over all n·k elements of -[y log a + (1 - y) log(1 - a)].

    From logits: max(z, 0) - z·y + log(1 + exp(-|z|)), as torch's BCEWithLogitsLoss.
    From probabilities, log is clamped at -100, as torch's BCELoss does.
    """

    name = "bce"
    fused_with = "sigmoid"
    allowed_outputs = catalog.LOSSES["bce"]

    def value(self, a, y):
        with np.errstate(divide="ignore"):  # log 0 = -inf, then clamped
            log_a = np.maximum(np.log(a), -100)
            log_1a = np.maximum(np.log1p(-a), -100)
        return float(-(y * log_a + (1 - y) * log_1a).mean())

    def grad(self, a, y):
        return (a - y) / (a * (1 - a)) / a.dtype.type(a.size)

    def value_from_logits(self, z, y):
        return float(np.add.reduce((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).ravel())) / z.size

    def fused_grad(self, a, y, out=None):
        g = np.subtract(a, y, out=out)
        g /= a.dtype.type(a.size)
        return g

    def fused_head(self, z, y, act, a, g):
        """Sigmoid, loss and gradient sharing e = exp(-|z|): a = 1/(1 + e) where z >= 0, else
        e/(1 + e) (the `Sigmoid` formula, to the bit), L from logits as `value_from_logits`,
        dL/dz = (a - y) / size. On small batches the time is in the count of NumPy calls."""
        e = np.abs(z, out=g)  # g is free until the last lines: scratch space
        np.negative(e, out=e)
        np.exp(e, out=e)
        np.divide(np.where(z >= 0, 1, e), np.add(e, 1), out=a)
        terms = np.maximum(z, 0)
        terms -= z * y
        terms += np.log1p(e, out=e)
        value = float(np.add.reduce(terms, axis=None)) / z.size
        np.subtract(a, y, out=g)
        g /= a.dtype.type(a.size)
        return value


class CrossEntropy(Loss):
    """Cross-entropy with integer class labels, the mean over the n rows of -log a[y].

    From logits: logsumexp(z) - z[y], as torch's CrossEntropyLoss on logits.
    """

    name = "cross_entropy"
    fused_with = "softmax"
    allowed_outputs = catalog.LOSSES["cross_entropy"]
    _eye: np.ndarray | None = None  # the one-hot rows of fused_head, kept between calls

    def __init__(self) -> None:
        self._ones = Ones()  # fused_head's row sums

    def targets(self, y, outputs, dtype):
        """Class labels as int64: (n,), or (n, T) with a label per time step; one-hot rows (of floats,
        over the last axis) are turned back into labels."""
        y = np.asarray(y)
        labels = y.dtype.kind in "iu" and y.ndim > 1
        return np.ascontiguousarray(y if y.ndim == 1 or labels else y.argmax(axis=-1), dtype=np.int64)

    def value(self, a, y):
        return float(-np.log(a[np.arange(len(y)), y]).mean())

    def grad(self, a, y):
        g = np.zeros_like(a)
        rows = np.arange(len(y))
        g[rows, y] = -1 / (a[rows, y] * len(y))
        return g

    def value_from_logits(self, z, y):
        m = z.max(axis=1, keepdims=True)
        shifted = z - m
        picked = np.take_along_axis(shifted, y[:, None], axis=1)
        np.exp(shifted, out=shifted)
        return float((np.log(shifted.sum(axis=1, keepdims=True)) - picked).mean())

    def fused_grad(self, a, y, out=None):
        g = a.copy() if out is None else _copied(a, out)
        g[np.arange(len(y)), y] -= 1
        g /= a.dtype.type(len(y))
        return g

    def fused_head(self, z, y, act, a, g):
        """Softmax, loss and gradient sharing one pass: with s = z - max z and e = exp s,
        a = e / Σe, L = mean(log Σe - s[y]) (log-sum-exp, stable), dL/dz = (a - onehot(y)) / n.
        Each NumPy call costs microseconds on rows this short, so the head makes few: labels
        are picked by flat index and the one-hot rows are taken from an identity matrix."""
        n, k = z.shape
        onehot = self._identity(k, a.dtype).take(y, axis=0)  # IndexError for a label out of range
        at = np.arange(0, z.size, k)
        at += y % k  # each row's label as an index into the flattened batch (negative ones wrap, as in indexing)
        np.subtract(z, row_max(z), out=a)
        picked = a.take(at)
        np.exp(a, out=a)
        total = row_sum(a, self._ones)
        a /= total
        value = float(np.log(total).sum() - picked.sum()) / n
        np.subtract(a, onehot, out=g)
        g /= a.dtype.type(n)
        return value

    def _identity(self, k: int, dtype: np.dtype) -> np.ndarray:
        eye = self._eye
        if eye is None or eye.shape[0] != k or eye.dtype != dtype:
            eye = self._eye = np.eye(k, dtype=dtype)
        return eye


def _copied(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not a:
        np.copyto(out, a)
    return out


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, BCE, CrossEntropy)}


def get(name: str) -> Loss:
    """The loss registered under `name`."""
    try:
        return LOSSES[name]()
    except KeyError:
        raise SpecError(unknown_name("loss", name, LOSSES)) from None
