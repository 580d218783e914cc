"""The rnn layer: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), through time and back."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.recurrent import Recurrent


class RNN(Recurrent):
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
