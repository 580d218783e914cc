"""The gru layer: the gated recurrent unit, through time and back."""

from __future__ import annotations

import numpy as np

from harness.scratch.layers.recurrent import Recurrent


class GRU(Recurrent):
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
