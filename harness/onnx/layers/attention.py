"""attention in ONNX: one node per layer, `SelfAttention` or `CausalSelfAttention` of the domain
`nn_harness`, an ONNX local function the model carries (written once per model, whatever the number
of layers), its `heads` an attribute and its weights inputs: x, in_proj_weight, in_proj_bias,
out_proj.weight, out_proj.bias. The body is standard ONNX: MatMul and Add for the projections,
Reshape and Transpose into heads, Gather for q, k and v, MatMul by kᵀ, Div by √(features / heads),
for the causal one a mask of -inf above the diagonal (Trilu of a ConstantOfShape over the time
length, so that an open length works) added before Softmax, MatMul by v, the heads back side by side.
Read from such a node whose model holds exactly the function written here (`check_function`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.layers import LayerSpec
from harness.onnx.interface import Chain, Layer, Refused

DOMAIN = "nn_harness"
OPS = {False: "SelfAttention", True: "CausalSelfAttention"}
INPUTS = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")


def write(g: Any, i: int, layer: LayerSpec, x: str) -> str:
    causal = layer.get("causal")
    g.function(function(causal))
    return g.node(OPS[causal], [x, *(g.param(f"layers.{i}.{name}") for name in INPUTS)], f"layers.{i}.z",
                  f"layers.{i}", domain=DOMAIN, heads=layer.get("heads"))


def function(causal: bool) -> Any:
    """The FunctionProto of (causal) self-attention: Y = attention(X, W, B, Wo, Bo), attribute heads."""
    from onnx import AttributeProto, TensorProto, helper

    def const(name: str, **value: Any) -> Any:
        return helper.make_node("Constant", [], [name], **value)

    heads = helper.make_node("Constant", [], ["heads"])
    ref = heads.attribute.add()
    ref.name, ref.ref_attr_name, ref.type = "value_int", "heads", AttributeProto.INT
    n = helper.make_node
    nodes = [
        heads, const("zero", value_ints=[0]), const("split", value_ints=[0, 0, 3]), const("rest", value_ints=[-1]),
        const("q_at", value_int=0), const("k_at", value_int=1), const("v_at", value_int=2),
        const("merged_shape", value_ints=[0, 0, -1]),
        n("Unsqueeze", ["heads", "zero"], ["heads1"]),
        n("Concat", ["split", "heads1", "rest"], ["qkv_shape"], axis=0),
        n("Transpose", ["W"], ["Wt"], perm=[1, 0]),
        n("MatMul", ["X", "Wt"], ["xw"]),
        n("Add", ["xw", "B"], ["qkv"]),
        n("Reshape", ["qkv", "qkv_shape"], ["qkv5"]),  # [N, T, 3, H, dh]
        n("Transpose", ["qkv5"], ["qkv_heads"], perm=[2, 0, 3, 1, 4]),  # [3, N, H, T, dh]
        n("Gather", ["qkv_heads", "q_at"], ["q"], axis=0),
        n("Gather", ["qkv_heads", "k_at"], ["k"], axis=0),
        n("Gather", ["qkv_heads", "v_at"], ["v"], axis=0),
        n("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        n("MatMul", ["q", "kt"], ["qk"]),
        n("Shape", ["q"], ["dh"], start=-1),
        n("CastLike", ["dh", "X"], ["dh_x"]),
        n("Sqrt", ["dh_x"], ["root"]),
        n("Div", ["qk", "root"], ["scores"]),
    ]
    if causal:
        nodes += [
            const("one", value_int=1),
            n("Shape", ["X"], ["time"], start=1, end=2),
            n("Concat", ["time", "time"], ["square"], axis=0),
            n("ConstantOfShape", ["square"], ["full"],
              value=helper.make_tensor("minus_inf", TensorProto.FLOAT, [1], [-np.inf])),
            n("CastLike", ["full", "X"], ["full_x"]),
            n("Trilu", ["full_x", "one"], ["mask"], upper=1),  # -inf above the diagonal, 0 on and below
            n("Add", ["scores", "mask"], ["masked"]),
        ]
    nodes += [
        n("Softmax", ["masked" if causal else "scores"], ["p"], axis=-1),
        n("MatMul", ["p", "v"], ["context"]),  # [N, H, T, dh]
        n("Transpose", ["context"], ["steps"], perm=[0, 2, 1, 3]),  # [N, T, H, dh]
        n("Reshape", ["steps", "merged_shape"], ["merged"]),
        n("Transpose", ["Wo"], ["Wot"], perm=[1, 0]),
        n("MatMul", ["merged", "Wot"], ["out"]),
        n("Add", ["out", "Bo"], ["Y"]),
    ]
    return helper.make_function(DOMAIN, OPS[causal], ["X", "W", "B", "Wo", "Bo"], ["Y"], nodes,
                                [helper.make_opsetid("", 21)], attributes=["heads"],
                                doc_string="multi-head self-attention as torch.nn.MultiheadAttention, batch first")


def check_function(defined: Any) -> str | None:
    """Why the model's function of one of our ops is not the one written here (None: it is)."""
    causal = defined.name == OPS[True]
    if defined != function(causal):
        return f"its function {DOMAIN}.{defined.name} is not the one nn-harness writes"
    return None


def read(node: Any, a: dict[str, Any], chain: Chain, causal: bool) -> Layer:
    if node.domain != DOMAIN:
        raise Refused(f"an op of the domain {node.domain or 'ai.onnx'!r}; only {DOMAIN}'s is read")
    if len(chain.shape) != 2:
        raise Refused(f"it attends over an input of shape {list(chain.shape)}; only sequences [time, features] "
                      "are supported")
    if len(node.input) != 5 or "heads" not in a:
        raise Refused("it needs the inputs x, in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias "
                      "and the attribute heads")
    return Layer("attention", {"heads": int(a["heads"]), "causal": causal},
                 {name: chain.const(node, j) for j, name in enumerate(INPUTS, 1)})


READERS = {OPS[False]: lambda node, a, chain: read(node, a, chain, False),
           OPS[True]: lambda node, a, chain: read(node, a, chain, True)}
FUNCTIONS = {(DOMAIN, op): check_function for op in OPS.values()}
