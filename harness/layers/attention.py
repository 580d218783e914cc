"""The attention kind: multi-head self-attention over a sequence, as torch's nn.MultiheadAttention."""

from __future__ import annotations

from harness.layers.base import Key, Kind, Shape, ShapeError


class Attention(Kind):
    """Multi-head self-attention over a sequence [time, features] → [time, features], as
    torch.nn.MultiheadAttention(features, heads, batch_first=True) called as mha(x, x, x) (with
    `causal`, attn_mask -inf above the diagonal: a step attends to itself and the steps before it):
    q, k, v = x W_inᵀ + b_in split in three, each split in `heads` heads of features / heads;
    per head softmax(q kᵀ / √(features / heads)) v; the heads side by side, then W_outᵀ + b_out.

    Parameters by torch's names: `in_proj_weight` (3 features, features), `in_proj_bias` (3
    features,), `out_proj.weight` (features, features), `out_proj.bias` (features,); drawn as torch
    draws them whatever the network's initializer: in_proj_weight by xavier_uniform, out_proj.weight
    by nn.Linear's U(±1/√features), both biases zero."""

    name = "attention"
    keys = {"heads": Key("int"), "causal": Key("bool", False)}

    @classmethod
    def features(cls, s, in_shape: Shape) -> int:
        if len(in_shape) != 2:
            raise ShapeError(f"attention takes sequences [time, features], but its input has shape {list(in_shape)}")
        d, heads = in_shape[1], s.get("heads")
        if d % heads:
            raise ShapeError(f"heads = {heads} must divide its {d} features (each head takes features / heads)")
        return d

    @classmethod
    def out_shape(cls, s, in_shape):
        cls.features(s, in_shape)
        return tuple(in_shape)

    @classmethod
    def param_shapes(cls, s, in_shape):
        d = cls.features(s, in_shape)
        return {"in_proj_weight": (3 * d, d), "in_proj_bias": (3 * d,), "out_proj.weight": (d, d),
                "out_proj.bias": (d,)}

    @classmethod
    def fans(cls, s, in_shape):
        d = cls.features(s, in_shape)
        return d, 3 * d

    @classmethod
    def initial_parameters(cls, s, in_shape, rng, draw, laws):
        import numpy as np

        d = cls.features(s, in_shape)
        w_in, _ = laws["xavier_uniform"](rng, d, 3 * d, (3 * d, d))
        w_out, _ = laws["torch_default"](rng, d, d, (d, d))  # nn.Linear's law; the bias it draws, torch zeroes
        return {"in_proj_weight": w_in, "in_proj_bias": np.zeros(3 * d), "out_proj.weight": w_out,
                "out_proj.bias": np.zeros(d)}

    @classmethod
    def flops(cls, s, in_shape):
        t, d = max(in_shape[0], 1), cls.features(s, in_shape)  # an open time length counts one step
        # the projections in (3 d²) and out (d²) per step, then q kᵀ and p v over every pair of steps
        return 2 * t * 4 * d * d + 2 * 2 * t * t * d

    @classmethod
    def time_axis(cls, s):
        return "keep"

    @classmethod
    def describe_settings(cls, s):
        return [f"h{s.get('heads')}", *(["causal"] if s.get("causal") else [])]
