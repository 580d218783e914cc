"""Activation functions, each forward beside its backward.

`forward(z)` maps pre-activations to activations; `backward(z, a, grad_a)` returns the
gradient with respect to `z`, given the `z` and `a = forward(z)` cached by the layer.
Element-wise activations define `derivative(z, a)` = f'(z); softmax, which mixes the
units of a row, defines its vector-Jacobian product instead. Every formula is the one
PyTorch uses for the function of the same name, thresholds included, so that the two
engines agree to rounding in float64.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from harness import catalog
from harness.errors import SpecError, unknown_name


class Activation:
    """Base class: an element-wise activation with no parameters.

    `forward(z, out)` and `backward(z, a, grad_a, out)` write into `out` when given (it may
    be `z`, or `grad_a`, for an in-place update) and return the result. An activation whose
    backward needs only `a` has `needs_z = False`: the network may then overwrite `z` with `a`.
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, float]] = {}
    hidden_ok: ClassVar[bool] = True
    needs_z: ClassVar[bool] = True

    def __init__(self, **params: float) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "no parameters"
            raise SpecError(f"activation {self.name!r} takes {allowed}; got {', '.join(sorted(unknown))}")
        self.params = {**self.defaults, **params}

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.multiply(grad_a, self.derivative(z, a), out=out)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None or out is result:
        return result
    np.copyto(out, result)
    return out


class Identity(Activation):
    """f(z) = z; its output is its input, never a copy."""

    name = "identity"
    needs_z = False

    def forward(self, z, out=None):
        return z

    def backward(self, z, a, grad_a, out=None):
        return _into(grad_a, out)

    def derivative(self, z, a):
        return np.ones_like(z)


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)), evaluated without overflow; f' = a (1 - a)."""

    name = "sigmoid"
    needs_z = False

    def forward(self, z, out=None):
        e = np.exp(-np.abs(z))
        return _into(np.where(z >= 0, 1 / (1 + e), e / (1 + e)), out)

    def derivative(self, z, a):
        return a * (1 - a)

    def backward(self, z, a, grad_a, out=None):
        d = np.subtract(1, a, out=out if out is not None and out is not grad_a else None)
        d *= a
        return np.multiply(d, grad_a, out=out if out is not None else d)


class Tanh(Activation):
    """f(z) = tanh z; f' = 1 - a²."""

    name = "tanh"
    needs_z = False

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def derivative(self, z, a):
        return 1 - a * a

    def backward(self, z, a, grad_a, out=None):
        d = np.multiply(a, a, out=out if out is not None and out is not grad_a else None)
        np.subtract(1, d, out=d)
        return np.multiply(d, grad_a, out=out if out is not None else d)


class ReLU(Activation):
    """f(z) = max(z, 0); f'(z) = 1 for z > 0, else 0 (0 at z = 0, as in torch). a > 0 exactly where z > 0."""

    name = "relu"
    needs_z = False

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def derivative(self, z, a):
        return (a > 0).astype(a.dtype)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, a > 0, out=out)


class LeakyReLU(Activation):
    """f(z) = z for z > 0, slope·z otherwise (torch's negative_slope, default 0.01)."""

    name = "leaky_relu"
    defaults = dict(catalog.ACTIVATIONS["leaky_relu"].defaults)

    def forward(self, z, out=None):
        return _into(np.where(z > 0, z, z * z.dtype.type(self.params["slope"])), out)

    def derivative(self, z, a):
        return np.where(z > 0, z.dtype.type(1), z.dtype.type(self.params["slope"]))


class ELU(Activation):
    """f(z) = z for z > 0, alpha·(exp z - 1) otherwise; f'(z) = alpha·exp z for z <= 0."""

    name = "elu"
    defaults = dict(catalog.ACTIVATIONS["elu"].defaults)

    def forward(self, z, out=None):
        alpha = z.dtype.type(self.params["alpha"])
        return _into(np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))), out)

    def derivative(self, z, a):
        alpha = z.dtype.type(self.params["alpha"])
        return np.where(z > 0, z.dtype.type(1), alpha * np.exp(np.minimum(z, 0)))


class GELU(Activation):
    """The exact GELU, f(z) = z·Φ(z) with Φ(z) = (1 + erf(z/√2)) / 2, as torch's default.

    f'(z) = Φ(z) + z·φ(z), φ the standard normal density. NumPy has no erf, so `erf`
    below evaluates W. J. Cody's rational approximations (Math. Comp. 1969), accurate
    to about one unit in the last place of float64; float32 takes a cheaper formula of
    float32's accuracy (`_normal_cdf_float32`).
    """

    name = "gelu"

    def forward(self, z, out=None):
        return np.multiply(z, _normal_cdf(z), out=out)

    def derivative(self, z, a):
        # Φ(z) = a / z from the forward's output, to a rounding or two (Φ(0) = 1/2): not computed again
        half = z.dtype.type(0.5)
        cdf = np.divide(a, z, out=np.full_like(z, half), where=z != 0)
        density = np.square(z)
        density *= -half
        np.exp(density, out=density)
        density *= z.dtype.type(1 / math.sqrt(2 * math.pi))
        density *= z
        density += cdf
        return density


class Softplus(Activation):
    """f(z) = log(1 + exp z), and f(z) = z where z > 20 (torch's threshold); f' = sigmoid(z), 1 past the threshold."""

    name = "softplus"
    threshold = 20.0

    def forward(self, z, out=None):
        return _into(np.where(z > self.threshold, z, np.log1p(np.exp(np.minimum(z, self.threshold)))), out)

    def derivative(self, z, a):
        e = np.exp(np.minimum(z, self.threshold))
        return np.where(z > self.threshold, z.dtype.type(1), e / (e + 1))


class Softmax(Activation):
    """f(z)_i = exp(z_i - max z) / Σ_j exp(z_j - max z) over each row; output layer only.

    Backward is the vector-Jacobian product a ⊙ (g - Σ_j g_j a_j), row by row.
    """

    name = "softmax"
    hidden_ok = catalog.ACTIVATIONS["softmax"].hidden_ok
    needs_z = False

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        self._ones = Ones()

    def forward(self, z, out=None):
        e = np.subtract(z, row_max(z), out=out)
        np.exp(e, out=e)
        e /= row_sum(e, self._ones)
        return e

    def backward(self, z, a, grad_a, out=None):
        dot = row_sum(grad_a * a, self._ones)
        d = np.subtract(grad_a, dot, out=out)
        d *= a
        return d


def row_max(x: np.ndarray) -> np.ndarray:
    """The max of each row, as a column. NumPy's reduction along short rows is slow (45 µs
    for 1024 rows of 10), so rows of up to 32 are reduced as the columns of a transposed
    copy: 9 µs, and at every batch size faster than the reduction or a column-by-column fold."""
    if x.shape[1] > 32:
        return np.maximum.reduce(x, axis=1, keepdims=True)
    return np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)[:, None]


class Ones:
    """Vectors of ones, made once per length and dtype and read-only, kept by the one layer, activation
    or loss that owns this: sums by BLAS products use them (np.dot(ones, dz) is 2-4x faster than
    add.reduce on short rows). Each owner has its own, so that no array is shared between the
    networks (and threads) of a process, and none can be written through."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[int, np.dtype], np.ndarray] = {}

    def get(self, n: int, dtype: np.dtype) -> np.ndarray:
        v = self._kept.get((n, dtype))
        if v is None:
            if len(self._kept) >= 8:  # a caller cycling through sizes: do not hoard
                self._kept.clear()
            v = self._kept[n, dtype] = np.ones(n, dtype=dtype)
            v.flags.writeable = False
        return v


def row_sum(x: np.ndarray, ones: Ones) -> np.ndarray:
    """The sum of each row, as a column: one BLAS matrix-vector product with a vector of
    ones (the caller's own), several times faster than NumPy's row reduction on short rows."""
    return np.dot(x, ones.get(x.shape[1], x.dtype))[:, None]


def erf(x: np.ndarray) -> np.ndarray:
    """Element-wise error function by Cody's three rational approximations.

    |x| <= 0.5: x·P(x²)/Q(x²); 0.5 < |x| <= 4: erfc = exp(-x²)·P(|x|)/Q(|x|);
    |x| > 4: erfc = exp(-x²)/|x| · (1/√π + P(1/x²)/(x² Q(1/x²))). exp(-x²) is split as
    exp(-s²)·exp(-(x-s)(x+s)) with s = x rounded down to 1/16, which keeps it exact to
    rounding for large x. Evaluated in float64 and returned in the input's dtype.
    """
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x64 = x.astype(np.float64, copy=False)
    ax = np.abs(x64)
    out = np.empty_like(x64)

    small = ax <= 0.5
    xs = x64[small]
    out[small] = xs * _poly(_A, xs * xs, _A[4]) / _poly1(_B, xs * xs)

    mid = (ax > 0.5) & (ax <= 4.0)
    xm = ax[mid]
    out[mid] = 1 - _exp_neg_square(xm) * _poly(_C, xm, _C[8]) / _poly1(_D, xm)

    big = ax > 4.0
    xb = np.minimum(ax[big], 10.0)  # erfc(10) < 1e-44: erf is 1 to the last bit from here on
    inv = 1 / (xb * xb)
    tail = (1 / math.sqrt(math.pi) - inv * _poly(_P, inv, _P[5]) / _poly1(_Q, inv)) / xb
    out[big] = 1 - _exp_neg_square(xb) * tail

    np.negative(out, out=out, where=~small & (x64 < 0))
    return out.astype(dtype, copy=False)


# Cody's coefficients (erf on |x| <= 0.5, erfc on 0.5 < |x| <= 4, erfc beyond 4).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)


def _poly(coef: tuple[float, ...], t: np.ndarray, lead: float) -> np.ndarray:
    """Numerator in Cody's nested form: ((lead·t + c0)·t + c1)·t + … + c_{k-1}."""
    acc = lead * t
    for c in coef[: len(coef) - 2]:
        acc = (acc + c) * t
    return acc + coef[len(coef) - 2]


def _poly1(coef: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Monic denominator in Cody's nested form: ((t + d0)·t + d1)·t + … + d_{k-1}."""
    acc = t
    for d in coef[:-1]:
        acc = (acc + d) * t
    return acc + coef[-1]


def _exp_neg_square(x: np.ndarray) -> np.ndarray:
    s = np.trunc(x * 16) / 16
    return np.exp(-s * s) * np.exp(-(x - s) * (x + s))


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z): in float32 by `_normal_cdf_float32`, otherwise through Cody's erf."""
    if z.dtype == np.float32:
        return _normal_cdf_float32(z)
    return 0.5 * (1 + erf(z * z.dtype.type(1 / math.sqrt(2))))


# erfc(a) ≈ t·exp(-a² + Σ c_k t^k), t = 1 / (1 + a/2), a >= 0: the Chebyshev fit of Numerical Recipes
# (erfcc), fractional error below 1.2e-7 for every a, enough for float32
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
         -0.82215223, 0.17087277)


def _normal_cdf_float32(z: np.ndarray) -> np.ndarray:
    """Φ(z) in float32 arithmetic, one formula over every z: Φ(-|z|) = erfc(|z|/√2)/2, Φ(z) = 1 - Φ(-z).

    Cody's erf in float64 splits the array three ways and converts it twice, ten times the cost of
    these few in-place passes. Against Φ to float64 precision the error is below 3e-7 absolute
    (in Φ's tail, where the float32 rounding of -a² enters exp, a relative 2e-5 of a value below 1e-13)."""
    f = np.float32
    a = np.abs(z)
    a *= f(1 / math.sqrt(2))
    t = np.multiply(a, f(0.5))
    t += f(1)
    np.reciprocal(t, out=t)
    acc = np.full_like(z, f(_ERFC[-1]))
    for c in _ERFC[-2::-1]:
        acc *= t
        acc += f(c)
    np.square(a, out=a)
    acc -= a
    np.exp(acc, out=acc)
    acc *= t
    acc *= f(0.5)  # Φ(-|z|)
    return np.where(z < 0, acc, f(1) - acc)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softplus, Softmax)
}


def get(name: str, **params: float) -> Activation:
    """The activation registered under `name`, with its parameters."""
    try:
        cls = ACTIVATIONS[name]
    except KeyError:
        raise SpecError(unknown_name("activation", name, ACTIVATIONS)) from None
    return cls(**params)
