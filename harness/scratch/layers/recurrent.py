"""What the recurrent layers (rnn.py, lstm.py, gru.py) share: backpropagation through time, as torch computes it.

Input x is (N, T, F), batch first; the output is every step's state (N, T, units) with
`return_sequences`, else the last step's (N, units); the initial state is zero. Parameters
carry torch's names and layouts: `weight_ih_l0` (G·U, F), `weight_hh_l0` (G·U, U),
`bias_ih_l0` and `bias_hh_l0` (G·U,), gates stacked in torch's order.

Forward. x is copied time-major beside a column of ones, [x_t | 1] (T, N, F + 1), and the
input projections of all steps are one matmul call over it, one GEMM per gate,
(T·N, F + 1) @ [W_ih | b]ᵀ of the gate: the bias rides in the product (NumPy's broadcast add
of a row over T·N rows costs nearly as much), and the result is laid out gate-major,
(G, T, N, U). The steps keep their values gate-major too: step t's gates are a (G, N, U)
block, each gate a contiguous (N, U) array, because NumPy runs an element-wise op over one
gate's columns of a row-major (N, G·U) block 2-3 times slower (one inner loop per row). Each
step then makes one (N, U) @ (U, U) product per gate in one matmul call, with each gate's
W_hhᵀ copied contiguous; the first step, whose state is zero, none. Sigmoid gates are
evaluated as σ(z) = (1 + tanh(z/2)) / 2: their rows of the weights and biases are halved
(exact in binary floating point), one tanh covers every gate of a step, and a multiply-add
over the sigmoid gates, stored first, turns their tanh into σ.

Backward. The gate gradients dL/dz of every step go into one (T, N, G·U) buffer in torch's
gate order, in one loop over time in reverse with one (N, G·U) @ (G·U, U) product per step.
The factors of each gate gradient that do not depend on dL/dh (σ' times the other operand
of its product) are made for all steps at once: by the LSTM's training forward, step by
step; by the others before the loop. Then dL/dW_hh is one GEMM over the stacked states
h_0..h_{T-2}, [dL/dW_ih | dL/db_ih] one GEMM over the stacked [x | 1], dL/dx one GEMM.

Buffers are the layer's own, keyed by shape: one layer runs sequences of any length (input
shape [0, F]). Training keeps what backward needs of every step; evaluation two steps' worth.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness.layers import ShapeError
from harness.scratch.activations import Ones
from harness.scratch.layers.base import Layer

SINGLE_THREADED_GEMM = 1 << 18  # OpenBLAS's GEMM_MULTITHREAD_THRESHOLD (4) × 65536: M·N·K up to this on one thread


class Recurrent(Layer):
    """What the three kinds share: shapes, the input projection, the weight gradients, dx."""

    gates: ClassVar[int]
    order: ClassVar[tuple[int, ...]]  # torch's index of each gate as the steps store them: sigmoid gates first
    sigmoids: ClassVar[int] = 0  # how many of them are sigmoids, evaluated by the tanh trick

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        self.units = spec.get("units")
        self.features = self.in_shape[1]
        self.sequences = bool(spec.get("return_sequences"))
        self._half = np.ones((self.gates, 1, 1), self.dtype)  # the factor on each gate's rows
        self._half[:self.sigmoids] = 0.5
        self._cache: tuple | None = None
        self._ones = Ones()  # the hidden bias gradient's row sum

    # -- forward ------------------------------------------------------------------------------

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if x.ndim != 3 or x.shape[2] != self.features or x.shape[1] < 1:
            raise ShapeError(f"{self.kind} takes a batch of sequences (N, T >= 1, {self.features}), "
                             f"got an array of shape {x.shape}")
        n, t, f = x.shape
        g, u = self.gates, self.units
        mode = "" if training else "eval_"
        # [x_t | 1 | 0…], time-major, padded to a multiple of 8 columns: OpenBLAS's dzᵀ [x | 1] takes
        # a fifth less time on 32 columns than on 29
        xa = self.buffer(mode + "x1", (t, n, -(-(f + 1) // 8) * 8))
        np.copyto(xa[..., :f], x.transpose(1, 0, 2))
        xa[..., f] = 1
        xa[..., f + 1:] = 0
        order = list(self.order)
        wa = self.buffer(mode + "w_ih1", (g, u, f + 1))  # [W_ih | b] per gate, sigmoid gates halved
        np.multiply(self.params["weight_ih_l0"].reshape(g, u, f)[order], self._half, out=wa[..., :f])
        np.multiply(self._input_bias().reshape(g, u)[order], self._half[..., 0], out=wa[..., f])
        xp = self.buffer(mode + "xp", (g, t, n, u))
        np.matmul(xa.reshape(t * n, -1)[:, :f + 1], wa.transpose(0, 2, 1), out=xp.reshape(g, t * n, u))
        # each gate's W_hhᵀ, contiguous: OpenBLAS's (N, U) @ (U, U) takes half the time it takes on a transposed view
        whh_t = self.buffer(mode + "w_hh_t", (g, u, u))
        np.multiply(self.params["weight_hh_l0"].reshape(g, u, u)[order].transpose(0, 2, 1), self._half, out=whh_t)
        states, saved = self._steps(xp, whh_t, training)
        if training:
            self._cache = (xa, *saved)
        if self.sequences:
            y = self.buffer(mode + "y", (n, t, u))
            np.copyto(y, states.transpose(1, 0, 2))
        else:
            y = self.buffer(mode + "y", (n, u))
            y[...] = states[(t - 1) % len(states)]
        return y

    def _input_bias(self) -> np.ndarray:
        """The bias added to the input projection: both biases (GRU keeps b_hn apart)."""
        return self.params["bias_ih_l0"] + self.params["bias_hh_l0"]

    def _steps(self, xp: np.ndarray, whh_t: np.ndarray, training: bool) -> tuple[np.ndarray, tuple]:
        """Run the recurrence over the projections xp (G, T, N, U), with whh_t (G, U, U) the
        transposed hidden weights of each gate: the states (slots, N, U), slot t % slots holding
        h_t, and what backward needs (when training)."""
        raise NotImplementedError

    def _slots(self, t: int, training: bool) -> tuple[int, int, str]:
        """How many steps to keep of per-step values and of the states, and the buffers' prefix:
        training keeps every step; evaluation two, or every state when all are returned."""
        keep = t if training else min(t, 2)
        return keep, t if training or self.sequences else keep, "" if training else "eval_"

    # -- backward -----------------------------------------------------------------------------

    def _incoming(self, dy: np.ndarray, s: int, t: int, into: np.ndarray) -> None:
        """Add dL/dh_s from the output into `into`; at the last step, where nothing came from a
        later step, set it. Without return_sequences only the last step has one."""
        if s == t - 1:
            into[...] = dy[:, s] if self.sequences else dy
        elif self.sequences:
            np.add(into, dy[:, s], out=into)

    def _back_through_hh(self, dz: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = dz W_hh, dz a step's gate gradients (N, G·U): the gradient reaching h_{t-1}.
        OpenBLAS runs a product of up to M·N·K = 2^18 on one thread and splits a larger one
        across threads, which for a (64, 256) @ (256, 64) step costs more than it gains (25 µs
        on 2 threads, 15 on one); so when one product per gate stays at that size and the whole
        would not, the gates are multiplied apart (on one thread) and summed."""
        n, (g, u) = len(dz), (self.gates, self.units)
        if n * u * u <= SINGLE_THREADED_GEMM < n * g * u * u:
            parts = np.matmul(dz.reshape(n, g, u).transpose(1, 0, 2), self.params["weight_hh_l0"].reshape(g, u, u),
                              out=self.buffer("gate_parts", (g, n, u)))
            return np.add.reduce(parts, axis=0, out=out)
        return np.dot(dz, self.params["weight_hh_l0"], out=out)

    def _hidden_grads(self, dzh: np.ndarray, h: np.ndarray, bias: bool) -> None:
        """dL/dW_hh = Σ_{t>=1} dz_tᵀ h_{t-1} as one GEMM; dL/db_hh = Σ dz when `bias`."""
        t, n, gu = dzh.shape
        if t > 1:
            np.dot(dzh[1:].reshape(-1, gu).T, h[:-1].reshape(-1, self.units), out=self.grads["weight_hh_l0"])
        else:
            self.grads["weight_hh_l0"][...] = 0
        if bias:
            np.dot(self._ones.get(t * n, dzh.dtype), dzh.reshape(-1, gu), out=self.grads["bias_hh_l0"])

    def _input_grads(self, dzi: np.ndarray, xa: np.ndarray, need_dx: bool) -> np.ndarray | None:
        """[dL/dW_ih | dL/db_ih] = dzᵀ [x | 1] as one GEMM over all steps, and dL/dx = dz W_ih."""
        t, n, gu = dzi.shape
        f = self.features
        dz2 = dzi.reshape(t * n, gu)
        dwb = np.dot(dz2.T, xa.reshape(t * n, -1), out=self.buffer("dw_ih1", (gu, xa.shape[2])))
        self.grads["weight_ih_l0"][...] = dwb[:, :f]
        self.grads["bias_ih_l0"][...] = dwb[:, f]
        if not need_dx:
            return None
        dxt = np.dot(dz2, self.params["weight_ih_l0"], out=self.buffer("dx_t", (t, n, f)).reshape(t * n, f))
        dx = self.buffer("dx", (n, t, f))
        np.copyto(dx, dxt.reshape(t, n, f).transpose(1, 0, 2))
        return dx

    def _saved(self) -> tuple:
        if self._cache is None:
            raise RuntimeError(f"{self.kind}.backward without a forward in training mode")
        return self._cache
