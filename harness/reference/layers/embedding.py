"""The embedding kind in torch: nn.Embedding, reading the ids that travel in the network's float dtype as int64."""

from __future__ import annotations

import torch
from torch import nn

from harness.layers import LayerSpec
from harness.layers.embedding import token_ids


class Embedding(nn.Embedding):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if torch.compiler.is_exporting():  # a graph of ops: the file's reader checks its own ids
            return super().forward(x.long())
        ids = token_ids(x.numpy(), self.num_embeddings)  # a DataError naming a bad id, not an IndexError
        return super().forward(torch.from_numpy(ids))


def module(s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    return Embedding(s.get("vocab"), s.get("dim"), dtype=dtype)
