"""The attention kind in torch: nn.MultiheadAttention itself, batch first, called as self-attention."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec


class SelfAttention(nn.MultiheadAttention):
    """torch's module (so that its state_dict keeps torch's names: `in_proj_weight`, `out_proj.weight`
    ...) called as mha(x, x, x, need_weights=False), with a float mask of -inf above the diagonal
    when causal, made for each call's time length."""

    def __init__(self, s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        super().__init__(shape[1], s.get("heads"), batch_first=True, dtype=dtype)
        self.causal = s.get("causal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        mask = None
        if self.causal:
            t = x.shape[1]
            mask = torch.triu(torch.full((t, t), float("-inf"), dtype=x.dtype, device=x.device), diagonal=1)
        return super().forward(x, x, x, need_weights=False, attn_mask=mask)[0]


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return SelfAttention(s, shape, dtype)
