"""The activations in ONNX: each one's native operator, written after its layer and read back."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import ActivationSpec, LayerSpec
from harness.onnx.interface import Refused, text

# our activation -> (ONNX op, {our parameter: ONNX attribute}); identity adds no node
ONNX_OPS: dict[str, tuple[str, dict[str, str]]] = {
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"slope": "alpha"}), "elu": ("Elu", {"alpha": "alpha"}),
    "gelu": ("Gelu", {}), "softplus": ("Softplus", {}), "softmax": ("Softmax", {}),
}
FROM_ONNX: dict[str, str] = {op: name for name, (op, _) in ONNX_OPS.items()}  # ONNX op -> our activation
ONNX_DEFAULTS = {"LeakyRelu": {"alpha": 0.01}, "Elu": {"alpha": 1.0}}


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    """The node of layer i's activation on `x` (none for identity, or a kind that takes none)."""
    act = layer.activation
    if not layer.kind.activation or act.name == "identity":
        return x
    op, attrs = ONNX_OPS[act.name]
    kwargs: dict[str, Any] = {onnx_name: float(act.kwargs()[ours]) for ours, onnx_name in attrs.items()}
    if op == "Softmax":
        kwargs["axis"] = -1
    if op == "Gelu":
        kwargs["approximate"] = "none"
    return g.node(op, [x], f"layers.{i}.a", f"acts.{i}", **kwargs)


def read(node: Any, attrs: dict[str, Any]) -> ActivationSpec:
    """The activation an activation node applies, its parameters as the exporter was given them."""
    name = FROM_ONNX[node.op_type]
    if node.op_type == "Gelu" and text(attrs.get("approximate", "none")) != "none":
        raise Refused(f"Gelu {node.name!r} uses the tanh approximation; only the exact form is supported")
    if node.op_type == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
        raise Refused(f"Softmax {node.name!r} over axis {attrs['axis']} is not over the outputs")
    # ONNX stores float attributes in single precision: read back the shortest decimal that is
    # that float32 (0.2, not 0.20000000298), the value the exporter was given.
    params = {ours: float(np.format_float_positional(np.float32(attrs.get(theirs, ONNX_DEFAULTS[node.op_type][theirs])),
                                                     unique=True))
              for ours, theirs in ONNX_OPS[name][1].items()}
    return ActivationSpec(name, tuple(sorted(params.items())))
