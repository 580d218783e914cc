"""Recurrent layers (RNN, LSTM, GRU) with backpropagation through time, as torch's modules compute them.

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
from harness.scratch.activations import ones
from harness.scratch.layers.base import Layer

SINGLE_THREADED_GEMM = 1 << 18  # OpenBLAS's GEMM_MULTITHREAD_THRESHOLD (4) × 65536: M·N·K up to this on one thread


class _Recurrent(Layer):
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
            np.dot(ones(t * n, dzh.dtype), dzh.reshape(-1, gu), out=self.grads["bias_hh_l0"])

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


class RNN(_Recurrent):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act tanh or relu (torch's `nonlinearity`).

    backward: dz_t = (dL/dh_t) ⊙ act'(h_t), act' = 1 - h² for tanh and [h > 0] for relu (as torch),
    dL/dh_{t-1} = dz_t W_hh + (the output's gradient at t-1)."""

    kind = "rnn"
    gates = 1
    order = (0,)

    def _steps(self, xp, whh_t, training):
        _, t, n, u = xp.shape
        _, keep_h, mode = self._slots(t, training)
        xp, whh_t = xp[0], whh_t[0]
        h = self.buffer(mode + "h", (keep_h, n, u))
        act = np.tanh if self.spec.get("activation") == "tanh" else _relu
        act(xp[0], out=h[0])
        for s in range(1, t):
            hs = h[s % keep_h]
            np.dot(h[(s - 1) % keep_h], whh_t, out=hs)
            np.add(hs, xp[s], out=hs)
            act(hs, out=hs)
        return h, (h,)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xa, h = self._saved()
        t = len(h)
        d = self.buffer("act_grad", h.shape)
        if self.spec.get("activation") == "tanh":
            np.multiply(h, h, out=d)
            np.subtract(1, d, out=d)
        else:
            np.sign(h, out=d)  # h >= 0: 1 where h > 0, else 0
        dz = self.buffer("dz", h.shape)
        for s in range(t - 1, -1, -1):
            if s < t - 1:
                self._back_through_hh(dz[s + 1], dz[s])
            self._incoming(dy, s, t, dz[s])
            np.multiply(dz[s], d[s], out=dz[s])
        self._hidden_grads(dz, h, bias=False)
        dx = self._input_grads(dz, xa, need_dx)
        self.grads["bias_hh_l0"][...] = self.grads["bias_ih_l0"]
        return dx


def _relu(z, out):
    return np.maximum(z, 0, out=out)


class LSTM(_Recurrent):
    """Gates i, f, g, o (torch's order) = σ, σ, tanh, σ of W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t). The steps keep the gates as i, o, f, g.

    backward: with dh the gradient reaching h_t and dc = dh·o(1 - tanh²c_t) + dc_{t+1}·f_{t+1},
    the gate gradients are dz_i = dc·g·i(1-i), dz_f = dc·c_{t-1}·f(1-f), dz_g = dc·i(1-g²),
    dz_o = dh·tanh(c_t)·o(1-o); dL/dh_{t-1} = dz_t W_hh + (the output's gradient at t-1). A
    training forward makes these factors at each step, while its values are in cache, from the
    products it has made: g·i(1-i) = (1-i)·ig, c_{t-1}·f(1-f) = (1-f)·fc, i(1-g²) = i - ig·g,
    tanh(c)·o(1-o) = (1-o)·h and o(1 - tanh²c) = o - h·tanh(c); it keeps them and f, not the gates."""

    kind = "lstm"
    gates = 4
    order = (0, 3, 1, 2)
    sigmoids = 3

    def _steps(self, xp, whh_t, training):
        _, t, n, u = xp.shape
        keep, keep_h, mode = self._slots(t, training)
        a = self.buffer(mode + "gates", (keep, 4, n, u))  # i, o, f, g; in training then [factors of i, o], f, [of g]
        h = self.buffer(mode + "h", (keep_h, n, u))
        ig_buffer, fc, tc, c = self.buffer(mode + "work", (4, n, u))  # i·g, f·c_{t-1}, tanh(c_t), c_t
        pf = dc_dh = None
        if training:
            pf = self.buffer("factor_f", (t, n, u))  # dz_f / dc
            dc_dh = self.buffer("dc_dh", (t, n, u))
        for s in range(t):
            at, hs = a[s % keep], h[s % keep_h]
            if s:
                np.matmul(h[(s - 1) % keep_h], whh_t, out=at)
                np.add(at, xp[:, s], out=at)
                np.tanh(at, out=at)
            else:
                np.tanh(xp[:, 0], out=at)
            np.multiply(at[:3], 0.5, out=at[:3])
            np.add(at[:3], 0.5, out=at[:3])
            i, o, f, g = at
            if s:
                ig = np.multiply(i, g, out=ig_buffer)
                np.multiply(f, c, out=fc)
                np.add(ig, fc, out=c)
            else:
                ig = np.multiply(i, g, out=c)  # c_0 = i·g; the ig buffer from the next step on
            np.tanh(c, out=tc)
            np.multiply(o, tc, out=hs)
            if not training:
                continue
            np.multiply(hs, tc, out=dc_dh[s])
            np.subtract(o, dc_dh[s], out=dc_dh[s])
            if s:
                np.subtract(1, f, out=pf[s])
                np.multiply(pf[s], fc, out=pf[s])
            else:
                pf[0] = 0  # c_{-1} = 0
            np.multiply(ig, g, out=g)
            np.subtract(i, g, out=g)
            np.subtract(1, at[:2], out=at[:2])
            np.multiply(i, ig, out=i)
            np.multiply(o, hs, out=o)
        return h, (a, pf, dc_dh, h)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xa, a, pf, dc_dh, h = self._saved()
        t, _, n, u = a.shape
        pi, po, f, pg = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        dz = self.buffer("dz", (t, n, 4 * u))  # torch's gate order
        dz4 = dz.reshape(t, n, 4, u)
        dh, dc, dcf = self.buffer("back_work", (3, n, u))
        for s in range(t - 1, -1, -1):
            if s < t - 1:
                self._back_through_hh(dz[s + 1], dh)
            self._incoming(dy, s, t, dh)
            np.multiply(dh, dc_dh[s], out=dc)
            if s < t - 1:
                np.add(dc, dcf, out=dc)
            np.multiply(dc, pi[s], out=dz4[s, :, 0])
            np.multiply(dc, pf[s], out=dz4[s, :, 1])
            np.multiply(dc, pg[s], out=dz4[s, :, 2])
            np.multiply(dh, po[s], out=dz4[s, :, 3])
            if s:
                np.multiply(dc, f[s], out=dcf)
        self._hidden_grads(dz, h, bias=False)
        dx = self._input_grads(dz, xa, need_dx)
        self.grads["bias_hh_l0"][...] = self.grads["bias_ih_l0"]
        return dx


class GRU(_Recurrent):
    """Gates r, z = σ(W_i· x_t + b_i· + W_h· h_{t-1} + b_h·); n = tanh(W_in x_t + b_in + r (W_hn h_{t-1}
    + b_hn)) (torch's reset after the product); h_t = (1 - z) n + z h_{t-1}, evaluated as torch
    does, n + z (h_{t-1} - n).

    backward: with dh the gradient reaching h_t, dn = dh(1-z)(1-n²), dz_z = dh(h_{t-1}-n) z(1-z),
    dz_r = dn·hn·r(1-r) (hn = W_hn h_{t-1} + b_hn); the input side's n gradient is dn, the hidden
    side's dn·r; dL/dh_{t-1} = dz_hidden W_hh + dh·z + (the output's gradient at t-1)."""

    kind = "gru"
    gates = 3
    order = (0, 1, 2)
    sigmoids = 2

    def _input_bias(self):
        b = self.params["bias_ih_l0"].copy()
        b[:2 * self.units] += self.params["bias_hh_l0"][:2 * self.units]
        return b

    def _steps(self, xp, whh_t, training):
        _, t, n, u = xp.shape
        keep, keep_h, mode = self._slots(t, training)
        a = self.buffer(mode + "gates", (keep, 3, n, u))
        hn = self.buffer(mode + "hn", (keep, n, u))
        h = self.buffer(mode + "h", (keep_h, n, u))
        gh = self.buffer(mode + "gh", (3, n, u))
        b_hn = self.buffer(mode + "b_hn", (n, u))  # b_hn on every row: a plain add, not a broadcast, per step
        b_hn[...] = self.params["bias_hh_l0"][2 * u:]
        for s in range(t):
            k, hs = s % keep, h[s % keep_h]
            rz = a[k, :2]
            r, z, nn = a[k]
            if s:
                hp = h[(s - 1) % keep_h]
                np.matmul(hp, whh_t, out=gh)
                np.add(xp[:2, s], gh[:2], out=rz)
                np.tanh(rz, out=rz)
                np.add(gh[2], b_hn, out=hn[k])
            else:
                np.tanh(xp[:2, 0], out=rz)
                hn[k] = b_hn
            np.multiply(rz, 0.5, out=rz)
            np.add(rz, 0.5, out=rz)
            np.multiply(r, hn[k], out=nn)
            np.add(nn, xp[2, s], out=nn)
            np.tanh(nn, out=nn)
            if s:
                np.subtract(hp, nn, out=hs)
                np.multiply(hs, z, out=hs)
                np.add(hs, nn, out=hs)
            else:
                np.multiply(z, nn, out=hs)
                np.subtract(nn, hs, out=hs)
        return h, (a, hn, h)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xa, a, hn, h = self._saved()
        t, _, n, u = a.shape
        r, z, nn = a[:, 0], a[:, 1], a[:, 2]
        # factors [r, z, n hidden side, n input side]: the gate gradients are dh times these
        p = self.buffer("factors", (t, 4, n, u))
        pr, pz, pnr, pn = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
        omz = np.subtract(1, z, out=pnr)  # 1 - z, for now
        np.multiply(nn, nn, out=pn)
        np.subtract(1, pn, out=pn)
        np.multiply(pn, omz, out=pn)  # (1-z)(1-n²)
        np.multiply(z, omz, out=pz)  # z(1-z)
        np.negative(nn[0], out=pr[0])  # h_{t-1} - n_t, in pr for now; h_{-1} = 0
        np.subtract(h[:-1], nn[1:], out=pr[1:])
        np.multiply(pz, pr, out=pz)
        np.multiply(pn, r, out=pnr)
        np.subtract(1, r, out=pr)
        np.multiply(pr, r, out=pr)
        np.multiply(pr, hn, out=pr)
        np.multiply(pr, pn, out=pr)

        dz = self.buffer("dz", (t, n, 3 * u))  # hidden side first; its n block becomes the input side's
        dz3 = dz.reshape(t, n, 3, u)
        dh = self.buffer("dh", (t, n, u))
        zdh = self.buffer("z_dh", (n, u))
        for s in range(t - 1, -1, -1):
            if s < t - 1:
                self._back_through_hh(dz[s + 1], dh[s])
                np.multiply(dh[s + 1], z[s + 1], out=zdh)
                np.add(dh[s], zdh, out=dh[s])
            self._incoming(dy, s, t, dh[s])
            for j in range(3):  # r, z, n (hidden side)
                np.multiply(dh[s], p[s, j], out=dz3[s, :, j])
        self._hidden_grads(dz, h, bias=True)
        np.multiply(dh, pn, out=dz3[:, :, 2])
        return self._input_grads(dz, xa, need_dx)


RECURRENT_LAYERS: dict[str, type[Layer]] = {cls.kind: cls for cls in (RNN, LSTM, GRU)}
