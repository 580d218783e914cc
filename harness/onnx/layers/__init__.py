"""ONNX for each layer kind, one module per kind named after it: its writer and its reader(s).

`WRITERS` (kind -> writer), `READERS` (ONNX op -> (kind, reader)), `MERGERS` (the same for
an op joining several tensors of the network) and `OPERANDS` (the same for an op of a tensor of the
network and a constant that is no bias: positional's Add) are what export and the graph walk use;
a new kind adds its module and its lines here. Shared code of a family lives in a module of its own:
window.py (conv2d and the pools), recurrent.py (rnn, lstm, gru: the gate orders and the layout ops
around a recurrent node, `LAYOUTS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.onnx.interface import Layout, MergeReader, Reader, Writer
from harness.onnx.layers import (
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
    recurrent,
    rnn,
    seqpool,
    tokens,
)

# layer kind -> its writer: exactly the kinds of harness.layers.KINDS (tests/layers/test_registries.py)
WRITERS: dict[str, Writer] = {
    "linear": linear.write, "conv2d": conv2d.write, "maxpool2d": maxpool2d.write, "avgpool2d": avgpool2d.write,
    "flatten": flatten.write, "rnn": rnn.write, "lstm": lstm.write, "gru": gru.write,
    "batchnorm": batchnorm.write, "globalavgpool2d": globalavgpool2d.write, "add": add.write, "concat": concat.write,
    "dropout": dropout.write, "layernorm": layernorm.write, "attention": attention.write,
    "embedding": embedding.write, "positional": positional.write, "tokens": tokens.write, "seqpool": seqpool.write,
}

# ONNX op -> (the layer kind it reads, its reader), in the order errors list them
READERS: dict[str, tuple[str, Reader]] = {
    **{op: ("linear", read) for op, read in linear.READERS.items()},
    **{op: ("conv2d", read) for op, read in conv2d.READERS.items()},
    **{op: ("maxpool2d", read) for op, read in maxpool2d.READERS.items()},
    **{op: ("avgpool2d", read) for op, read in avgpool2d.READERS.items()},
    **{op: ("flatten", read) for op, read in flatten.READERS.items()},
    **{op: ("rnn", read) for op, read in rnn.READERS.items()},
    **{op: ("lstm", read) for op, read in lstm.READERS.items()},
    **{op: ("gru", read) for op, read in gru.READERS.items()},
    **{op: ("batchnorm", read) for op, read in batchnorm.READERS.items()},
    **{op: ("globalavgpool2d", read) for op, read in globalavgpool2d.READERS.items()},
    **{op: ("dropout", read) for op, read in dropout.READERS.items()},
    **{op: ("layernorm", read) for op, read in layernorm.READERS.items()},
    **{op: ("attention", read) for op, read in attention.READERS.items()},
    **{op: ("embedding", read) for op, read in embedding.READERS.items()},
    **{op: ("tokens", read) for op, read in tokens.READERS.items()},
    **{op: ("seqpool", read) for op, read in seqpool.READERS.items()},
}
# ONNX op joining several tensors of the network -> (the layer kind it reads, its reader)
MERGERS: dict[str, tuple[str, MergeReader]] = {
    **{op: ("add", read) for op, read in add.MERGERS.items()},
    **{op: ("concat", read) for op, read in concat.MERGERS.items()},
}
# (domain, name) of a local function a writer puts in the model -> the check that a model's is that one
FUNCTIONS: dict[tuple[str, str], Callable[[Any], str | None]] = {**attention.FUNCTIONS}
# ONNX op of a tensor of the network and a constant that is no bias -> (the layer kind it reads, its reader)
OPERANDS: dict[str, tuple[str, Reader]] = {
    **{op: ("positional", read) for op, read in positional.OPERANDS.items()},
}
# ONNX op -> every layer kind it may be read as (Add: an add, or positional's rows; a bias Add is no layer;
# ReduceMean: a global average pool of an image, or the mean of a sequence, which that reader hands to seqpool)
_READ = [*((op, kind) for op, (kind, _) in [*READERS.items(), *MERGERS.items(), *OPERANDS.items()]),
         ("ReduceMean", "seqpool")]
IMPORTERS: dict[str, tuple[str, ...]] = {op: tuple(k for o, k in _READ if o == op) for op, _ in _READ}

# the ops whose readers take a flat input of open width (its weight says it)
OPEN_WIDTH: frozenset[str] = frozenset(linear.OPEN_WIDTH)

# the layout ops that carry a tensor whose axes are not batch first, around the nodes that take one
LAYOUTS: tuple[Layout, ...] = (recurrent.layout(frozenset({*rnn.READERS, *lstm.READERS, *gru.READERS})),)
