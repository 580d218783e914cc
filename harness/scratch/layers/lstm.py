"""The lstm layer: long short-term memory, through time and back."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.recurrent import Recurrent


class LSTM(Recurrent):
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
