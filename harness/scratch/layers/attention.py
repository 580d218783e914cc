"""Multi-head self-attention over a sequence, its backward beside it."""

from __future__ import annotations

import math

import numpy as np

from harness.scratch.layers.base import Layer


class Attention(Layer):
    """y = concat_h(softmax(q_h k_hᵀ / √dh + mask) v_h) W_outᵀ + b_out over x [N, T, D], with
    [q | k | v] = x W_inᵀ + b_in and each of q, k, v split in H heads of dh = D / H features, as
    torch's nn.MultiheadAttention(D, H, batch_first=True) called as mha(x, x, x); the mask is -inf
    above the diagonal when `causal` (a step sees itself and the steps before it), else 0. The heads
    run as batched products over [N, H, T, dh]; the softmax subtracts each row's largest score.

    backward takes dL/dy: dW_out = dyᵀ o and db_out = Σ dy (o the heads side by side); do = dy W_out;
    per head dv = pᵀ do, dp = do vᵀ, ds = p ⊙ (dp - Σ_row dp ⊙ p) / √dh (zero where masked, as p is),
    dq = ds k, dk = dsᵀ q; then dW_in = d[q | k | v]ᵀ x, db_in = Σ d[q | k | v], dx = d[q | k | v] W_in.
    """

    kind = "attention"

    def __init__(self, spec, in_shape, dtype) -> None:
        super().__init__(spec, in_shape, dtype)
        self.heads = spec.get("heads")
        self.scale = 1 / math.sqrt(in_shape[1] // self.heads)

    def _split(self, qkv: np.ndarray) -> np.ndarray:
        """[N, T, 3D] as [3, N, H, T, dh]: q, k and v, each head's steps as rows."""
        n, t, three_d = qkv.shape
        return qkv.reshape(n, t, 3, self.heads, three_d // (3 * self.heads)).transpose(2, 0, 3, 1, 4)

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        n, t, d = x.shape
        mode = "" if training else "_eval"
        w_in, w_out = self.params["in_proj_weight"], self.params["out_proj.weight"]
        qkv = np.dot(x.reshape(-1, d), w_in.T, out=self.buffer("qkv" + mode, (n * t, 3 * d)))
        qkv += self.params["in_proj_bias"]
        q, k, v = self._split(qkv.reshape(n, t, 3 * d))
        s = np.matmul(q, k.transpose(0, 1, 3, 2), out=self.buffer("p" + mode, (n, self.heads, t, t)))
        s *= self.scale
        if self.spec.get("causal"):
            s[:, :, np.triu(np.ones((t, t), dtype=bool), 1)] = -np.inf  # the steps after each one
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s, out=s)
        p /= p.sum(axis=-1, keepdims=True)
        heads = np.matmul(p, v, out=self.buffer("heads" + mode, (n, self.heads, t, d // self.heads)))
        o = self.buffer("o" + mode, (n, t, self.heads, d // self.heads))
        np.copyto(o, heads.transpose(0, 2, 1, 3))
        o = o.reshape(n * t, d)
        y = np.dot(o, w_out.T, out=self.buffer("y" + mode, (n * t, d)))
        y += self.params["out_proj.bias"]
        if training:
            self._x, self._q, self._k, self._v, self._p, self._o = x, q, k, v, p, o
        return y.reshape(n, t, d)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        n, t, d = dy.shape
        h, dh = self.heads, d // self.heads
        rows = dy.reshape(-1, d)
        np.dot(rows.T, self._o, out=self.grads["out_proj.weight"])
        self.grads["out_proj.bias"][...] = rows.sum(axis=0)
        do = np.dot(rows, self.params["out_proj.weight"], out=self.buffer("do", (n * t, d)))
        do = do.reshape(n, t, h, dh).transpose(0, 2, 1, 3)  # [N, H, T, dh]
        p, q, k, v = self._p, self._q, self._k, self._v
        dqkv = self.buffer("dqkv", (n * t, 3 * d))
        dq, dk, dv = self._split(dqkv.reshape(n, t, 3 * d))  # views: each head's gradient lands in place
        dv[...] = np.matmul(p.transpose(0, 1, 3, 2), do)
        ds = np.matmul(do, v.transpose(0, 1, 3, 2), out=self.buffer("ds", (n, h, t, t)))
        ds -= np.einsum("nhij,nhij->nhi", ds, p)[..., None]
        ds *= p
        ds *= self.scale
        dq[...] = np.matmul(ds, k)
        dk[...] = np.matmul(ds.transpose(0, 1, 3, 2), q)
        x = self._x.reshape(-1, d)
        np.dot(dqkv.T, x, out=self.grads["in_proj_weight"])
        self.grads["in_proj_bias"][...] = dqkv.sum(axis=0)
        if not need_dx:
            return None
        dx = np.dot(dqkv, self.params["in_proj_weight"], out=self.buffer("dx", (n * t, d)))
        return dx.reshape(n, t, d)
