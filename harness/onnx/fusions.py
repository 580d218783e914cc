"""The nodes the walk folds into the layer whose output they read (`Chain.owner`): a bias Add after a
layer read without a bias, an activation after a layer that takes one, and torch's thresholded
Softplus pattern."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.onnx import activations
from harness.onnx.interface import Chain, Refused, describe


def bias(chain: Chain, node: Any) -> bool:
    """An Add right after a layer without a bias, of one value per output channel (along the
    layer's `channel_axis`: the last axis of a linear layer's output, the first of a
    convolution's): its bias. Whether it was one (and is now the layer's)."""
    last = chain.owner if chain.fresh else None
    if last is None or last.params.get("bias", 0) is not None:
        return False
    other = next((x for x in node.input if x in chain.consts), None)
    b = None if other is None else chain.consts[other]
    shape = chain.shape
    channel = last.channel_axis % len(shape)
    n = shape[channel]
    if b is None or b.dtype == object or b.size != n:
        return False
    per_channel = np.broadcast_to(b.reshape([n if j == channel else 1 for j in range(len(shape))]), shape)
    try:
        if not np.array_equal(np.broadcast_to(b, (1, *shape))[0], per_channel):
            return False
    except ValueError:
        return False
    last.params["bias"] = b.reshape(n)
    return True


def is_activation(op: str) -> bool:
    return op in activations.FROM_ONNX


def activation(chain: Chain, node: Any, a: dict[str, Any]) -> None:
    """The activation node `node` becomes the activation of the layer right before it."""
    if chain.owner is None:
        raise Refused(f"activation {describe(node)} comes before any layer")
    last = chain.owner
    if not last.spec().kind.activation:
        raise Refused(f"activation {describe(node)} follows {last.node}, a {last.type} layer; a harness "
                      "network applies activations right after a linear or conv2d layer only")
    if not chain.fresh:
        raise Refused(f"activation {describe(node)} follows another activation of the same layer")
    last.activation = activations.read(node, a)
    chain.fresh = False


class Softplus:
    """torch's thresholded softplus: Where(Greater(z, 20), z, Softplus(z)) reads as softplus.
    One per walk: `read(node)` after a Softplus node is read, `step` on every node after it."""

    def __init__(self) -> None:
        self.z: str | None = None
        self.out: str | None = None
        self.greater: str | None = None

    def read(self, node: Any) -> None:
        self.z, self.out = node.input[0], node.output[0]

    def step(self, node: Any) -> tuple[bool, str | None]:
        """Whether `node` is part of the pattern, and the Softplus output that its output stands
        for (None: it makes no tensor of the network)."""
        if node.op_type == "Greater" and self.z is not None and node.input[0] == self.z:
            self.greater = node.output[0]
            return True, None
        if (node.op_type == "Where" and self.greater is not None and self.greater == node.input[0]
                and list(node.input[1:]) == [self.z, self.out]):
            self.z = self.greater = None
            return True, self.out
        return False, None
