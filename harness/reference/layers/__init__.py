"""The torch twin's layers, one module per kind of the layer table (`harness.layers.KINDS`), named
after it, each with `module(spec, input shape, dtype)`; `LAYER_MODULES` maps each kind to it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.layers import LayerSpec
from harness.reference.layers import (
                                     add,
                                     attention,
                                     avgpool2d,
                                     batchnorm,
                                     concat,
                                     conv2d,
                                     dropout,
                                     embedding,
                                     flatten,
                                     globalavgpool2d,
                                     gru,
                                     layernorm,
                                     linear,
                                     lstm,
                                     maxpool2d,
                                     positional,
                                     rnn,
                                     seqpool,
                                     tokens,
)

# layer kind -> its torch module, from the layer's spec, its input shape and the dtype
LAYER_MODULES: dict[str, Callable[[LayerSpec, tuple[int, ...], torch.dtype], nn.Module]] = {
    "linear": linear.module,
    "conv2d": conv2d.module,
    "maxpool2d": maxpool2d.module,
    "avgpool2d": avgpool2d.module,
    "flatten": flatten.module,
    "rnn": rnn.module,
    "lstm": lstm.module,
    "gru": gru.module,
    "batchnorm": batchnorm.module,
    "globalavgpool2d": globalavgpool2d.module,
    "add": add.module,
    "concat": concat.module,
    "dropout": dropout.module,
    "layernorm": layernorm.module,
    "attention": attention.module,
    "embedding": embedding.module,
    "positional": positional.module,
    "tokens": tokens.module,
    "seqpool": seqpool.module,
}
