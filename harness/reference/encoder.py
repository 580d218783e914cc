"""Pre-norm transformer encoder blocks found in a network's spec, and nn.TransformerEncoderLayer for each.

A file writes a pre-norm encoder block as seven layers wired as a graph (README: layernorm ->
attention -> add(the block's input, the attention) -> layernorm -> linear (gelu or relu) -> linear ->
add(the first add, the second linear)); this is what nn.TransformerEncoderLayer(norm_first=True)
computes (tests/layers/test_attention.py). `encoder_blocks` finds each such block, checked on the
wiring: the block's inner outputs read by nothing outside it, no activation but the first linear's,
one eps for both norms. `encoder_layer` builds the one module a PyTorch user writes in its place,
loaded with the twin's modules' tensors (`norm1`, `self_attn`, `norm2`, `linear1`, `linear2`), so that
plain PyTorch (harness.reference.plain) trains the block as torch's own encoder layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness.layers import NO_SOURCE
from harness.spec import NetworkSpec

PATTERN = ("layernorm", "attention", "add", "layernorm", "linear", "linear", "add")
SIZE = len(PATTERN)
ACTIVATIONS = ("gelu", "relu")  # the first linear's: what TransformerEncoderLayer's `activation` names
# the block's layers (offset from its first) -> TransformerEncoderLayer's modules
MODULES = {0: "norm1", 1: "self_attn", 3: "norm2", 4: "linear1", 5: "linear2"}


@dataclass(frozen=True)
class EncoderBlock:
    """Layers `first` .. `first + 6` of the spec, taking the output of `source` (NO_SOURCE: the input)."""

    first: int
    source: int
    features: int  # d_model
    heads: int
    hidden: int  # dim_feedforward
    activation: str
    eps: float
    causal: bool

    @property
    def last(self) -> int:
        return self.first + SIZE - 1


def encoder_blocks(network: NetworkSpec) -> list[EncoderBlock]:
    """Every pre-norm encoder block of the network, in order; [] for a chain or a network with none."""
    if network.is_chain:
        return []
    layers, sources = network.all_layers, network.wiring.sources
    consumers = network.wiring.consumers()
    found: list[EncoderBlock] = []
    i = 0
    while i + SIZE <= len(layers):
        block = _block_at(network, i, layers, sources, consumers)
        if block:
            found.append(block)
            i += SIZE
        else:
            i += 1
    return found


def _block_at(network: NetworkSpec, i: int, layers, sources, consumers) -> EncoderBlock | None:
    window = layers[i:i + SIZE]
    if tuple(layer.type for layer in window) != PATTERN:
        return None
    src = sources[i]
    if len(src) != 1:
        return None
    s = src[0]
    inner = {  # each layer of the block: the sources it must take, as offsets from i (None: the block's input)
        0: (None,), 1: (0,), 2: (None, 1), 3: (2,), 4: (3,), 5: (4,), 6: (2, 5)}
    for k, want in inner.items():
        expected = sorted(s if w is None else i + w for w in want)
        if sorted(sources[i + k]) != expected:
            return None
    readers = {0: [1], 1: [2], 2: [3, 6], 3: [4], 4: [5], 5: [6]}  # nothing outside the block reads them
    if any(sorted(consumers[i + k]) != [i + r for r in want] for k, want in readers.items()):
        return None
    ffn = window[4].activation
    if ffn.name not in ACTIVATIONS or ffn.params:
        return None
    if any(layer.activation.name != "identity" for k, layer in enumerate(window) if k != 4):
        return None
    if window[0].get("eps") != window[3].get("eps"):
        return None
    features = network.shapes[i][-1]
    return EncoderBlock(first=i, source=s, features=features,
                        heads=window[1].get("heads"), hidden=window[4].get("units"), activation=ffn.name,
                        eps=window[0].get("eps"), causal=bool(window[1].get("causal")))


class CausalEncoderLayer(nn.TransformerEncoderLayer):
    """torch's encoder layer called as a user calls it on a causal sequence: a mask of -inf above the
    diagonal for each call's length, and `is_causal=True`."""

    def forward(self, src: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # type: ignore[override]
        t = src.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf"), dtype=src.dtype, device=src.device), diagonal=1)
        return super().forward(src, src_mask=mask, is_causal=True)


def encoder_layer(block: EncoderBlock, twins: Sequence[nn.Module], dtype: torch.dtype) -> nn.TransformerEncoderLayer:
    """nn.TransformerEncoderLayer(norm_first=True, batch_first=True, dropout=0) for `block`, its tensors
    copied from the twin's modules of the block's seven layers (`twins`, in order)."""
    cls = CausalEncoderLayer if block.causal else nn.TransformerEncoderLayer
    layer = cls(block.features, block.heads, dim_feedforward=block.hidden, dropout=0.0,
                activation=block.activation, layer_norm_eps=block.eps, batch_first=True, norm_first=True,
                dtype=dtype)
    with torch.no_grad():
        for k, name in MODULES.items():
            getattr(layer, name).load_state_dict(twins[k].state_dict())
    return layer


def rewired(sources: Sequence[tuple[int, ...]], blocks: Sequence[EncoderBlock]) -> tuple[list[int],
                                                                                        list[tuple[int, ...]]]:
    """The layers kept when each block becomes one module (a block's place taken by its last layer's
    index), and each kept layer's sources renumbered among the kept ones (a block's: its input)."""
    inside = {j for b in blocks for j in range(b.first, b.last)}
    kept = [j for j in range(len(sources)) if j not in inside]
    new = {old: n for n, old in enumerate(kept)}
    new[NO_SOURCE] = NO_SOURCE
    first = {b.last: b for b in blocks}
    wired = [(new[first[j].source],) if j in first else tuple(new[s] for s in sources[j]) for j in kept]
    return kept, wired
