"""ONNX, the standard file format for a trained network: export and import.

Export writes one Gemm per layer (W stored as torch's (out, in), transB = 1) and the
native ONNX operator of each activation, with a dynamic batch dimension, opset 21 and
IR version 10 (what onnxruntime 1.31 reads), and the experiment in `metadata_props`.

Import reads what it exports, and any plain MLP as exporters write it: Gemm, or MatMul
followed by Add (weights as initializers, Constant nodes or Transposes of them), the
activations, Identity nodes, and torch's thresholded Softplus (Softplus, Greater, Where).
Anything else is refused with the name of the node.

onnx is imported inside the functions: the engine itself never needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelFileError
from harness.spec import ActivationSpec, NetworkSpec, network_from_dict, network_to_dict

if TYPE_CHECKING:
    from harness.scratch.network import Network

OPSET = 21
IR_VERSION = 10
INPUT, OUTPUT = "input", "output"

# our activation -> (ONNX op, {our parameter: ONNX attribute}); identity adds no node
ONNX_OPS: dict[str, tuple[str, dict[str, str]]] = {
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"slope": "alpha"}), "elu": ("Elu", {"alpha": "alpha"}),
    "gelu": ("Gelu", {}), "softplus": ("Softplus", {}), "softmax": ("Softmax", {}),
}
FROM_ONNX = {op: name for name, (op, _) in ONNX_OPS.items()}
ONNX_DEFAULTS = {"LeakyRelu": {"alpha": 0.01}, "Elu": {"alpha": 1.0}}


def export(net: Network, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write `net` as an ONNX model; `metadata` lands in metadata_props beside the network spec."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.DOUBLE if net.dtype == np.float64 else TensorProto.FLOAT
    params = net.parameters()
    nodes, inits = [], []
    current = INPUT
    for i, act in enumerate(net.spec.activations):
        w, b = f"layers.{i}.weight", f"layers.{i}.bias"
        inits += [numpy_helper.from_array(params[w], w), numpy_helper.from_array(params[b], b)]
        z = f"layers.{i}.z"
        nodes.append(helper.make_node("Gemm", [current, w, b], [z], name=f"layers.{i}", transB=1))
        current = z
        if act.name != "identity":
            op, attrs = ONNX_OPS[act.name]
            a = f"layers.{i}.a"
            kwargs = {onnx_name: float(act.kwargs()[ours]) for ours, onnx_name in attrs.items()}
            if op == "Softmax":
                kwargs["axis"] = -1
            if op == "Gelu":
                kwargs["approximate"] = "none"
            nodes.append(helper.make_node(op, [current], [a], name=f"acts.{i}", **kwargs))
            current = a
    nodes.append(helper.make_node("Identity", [current], [OUTPUT], name="output"))
    graph = helper.make_graph(
        nodes, "harness_mlp",
        [helper.make_tensor_value_info(INPUT, elem, ["batch", net.spec.inputs])],
        [helper.make_tensor_value_info(OUTPUT, elem, ["batch", net.spec.outputs])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="nn-harness")
    props = {"network": json.dumps(network_to_dict(net.spec)), "dtype": str(net.dtype), **(metadata or {})}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def read_model(path: str | Path) -> Any:
    """The ONNX ModelProto at `path`, or one clear error for a missing, damaged or non-ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends for anything that is not ONNX
        raise ModelFileError(f"{path}: not a readable ONNX model ({type(e).__name__}); truncated, damaged, "
                             "or another format") from None
    if not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path}: not an ONNX model with a graph (no nodes or no inputs)")
    return model


def metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def load(path: str | Path) -> Network:
    """A scratch `Network` from an ONNX MLP (see the module docstring for what is read)."""
    from onnx import numpy_helper

    from harness.scratch.network import Network

    model = read_model(path)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # torch writes some weights as Constant nodes
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelFileError(f"{path}: expected one graph input, found {inputs}")
    layers: list[list[Any]] = []  # [weight (out, in), bias or None, activation spec or None]
    current = inputs[0]
    softplus: dict[str, str] = {}  # torch's thresholded softplus: Where(Greater(z, 20), z, Softplus(z))
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        if node.op_type == "Greater" and softplus and node.input[0] == softplus["z"]:
            softplus["greater"] = node.output[0]
            continue
        if (node.op_type == "Where" and softplus.get("greater") == node.input[0]
                and list(node.input[1:]) == [softplus["z"], current]):
            current = node.output[0]
            softplus.clear()
            continue
        data_in = [x for x in node.input if x not in consts]
        if data_in != [current]:
            if node.op_type == "Transpose" and not data_in:
                consts[node.output[0]] = np.transpose(consts[node.input[0]], _perm(node, consts[node.input[0]]))
                continue
            raise ModelFileError(f"{path}: node {node.name or node.op_type!r} ({node.op_type}) is not part of a "
                                 "plain chain of layers")
        current = node.output[0]
        op = node.op_type
        if op == "Gemm":
            attrs = _attrs(node)
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise ModelFileError(f"{path}: Gemm {node.name!r} with transA, alpha or beta is not supported")
            w = consts[node.input[1]]
            w = w if attrs.get("transB", 0) else w.T
            b = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            layers.append([w, b, None])
        elif op == "MatMul":
            layers.append([consts[node.input[1]].T, None, None])
        elif op == "Add" and layers and layers[-1][1] is None and layers[-1][2] is None:
            layers[-1][1] = consts[next(x for x in node.input if x in consts)]
        elif op in FROM_ONNX and layers and layers[-1][2] is None:
            layers[-1][2] = _activation(node)
            if op == "Softplus":
                softplus["z"] = node.input[0]
        elif op == "Identity":
            continue
        else:
            raise ModelFileError(f"{path}: unsupported node {node.name or op!r} (op {op}); a harness model is a "
                                 "chain of Gemm or MatMul+Add and the activations "
                                 f"{', '.join(sorted(FROM_ONNX))}")
    if not layers:
        raise ModelFileError(f"{path}: no Gemm or MatMul layer found")
    spec = _spec(layers, metadata(model), path)
    params = {}
    for i, (w, b, _) in enumerate(layers):
        params[f"layers.{i}.weight"] = w
        params[f"layers.{i}.bias"] = b if b is not None else np.zeros(w.shape[0], dtype=w.dtype)
    try:
        return Network(spec, params, dtype=layers[0][0].dtype)
    except ValueError as e:
        raise ModelFileError(f"{path}: {e}") from None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _perm(node: Any, array: np.ndarray) -> tuple[int, ...]:
    perm = _attrs(node).get("perm")
    return tuple(perm) if perm else tuple(reversed(range(array.ndim)))


def _activation(node: Any) -> ActivationSpec:
    name = FROM_ONNX[node.op_type]
    attrs = _attrs(node)
    if node.op_type == "Gelu" and attrs.get("approximate", b"none") not in (b"none", "none"):
        raise ModelFileError(f"Gelu {node.name!r} uses the tanh approximation; only the exact form is supported")
    if node.op_type == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
        raise ModelFileError(f"Softmax {node.name!r} over axis {attrs['axis']} is not over the outputs")
    # ONNX stores float attributes in single precision: read back the shortest decimal that is
    # that float32 (0.2, not 0.20000000298), the value the exporter was given.
    params = {ours: float(np.format_float_positional(np.float32(attrs.get(theirs, ONNX_DEFAULTS[node.op_type][theirs])),
                                                     unique=True))
              for ours, theirs in ONNX_OPS[name][1].items()}
    return ActivationSpec(name, tuple(sorted(params.items())))


def _spec(layers: list[list[Any]], meta: dict[str, str], path: Path) -> NetworkSpec:
    """The saved spec when the file carries one (initializer name and all), else one read off the graph."""
    acts = [act or ActivationSpec("identity") for _, _, act in layers]
    hidden = [{"units": int(w.shape[0]), "activation": {"name": a.name, **a.kwargs()}}
              for (w, _, _), a in zip(layers[:-1], acts[:-1], strict=True)]
    raw = {"inputs": int(layers[0][0].shape[1]), "outputs": int(layers[-1][0].shape[0]), "hidden": hidden,
           "output_activation": {"name": acts[-1].name, **acts[-1].kwargs()}}
    if "network" in meta:
        saved = json.loads(meta["network"])
        raw["init"] = saved.get("init", "xavier_uniform")
    return network_from_dict(raw, source=str(path))
