"""Reading an ONNX file: the model, its metadata, and the network it holds (spec, tensors, dtype).

`read_network` walks the graph from its input to its output (walk.py). What it reads:
- layers, by the readers of harness/onnx/layers/ (ONNX op -> layer kind and reader): Gemm, MatMul
  (+ an Add that is its bias; on every step of a sequence too), Conv, MaxPool, AveragePool, Flatten,
  GlobalAveragePool or a ReduceMean over height and width (then what flattens it to [batch, C]),
  Dropout in inference mode (our export writes none: the saved spec's dropout layers are skipped),
  Reshape where it flattens each sample (to [batch, -1], [-1, features], [0, -1], or the file's
  fixed batch), and RNN, LSTM and GRU with the layout ops around them, LayerNormalization over the
  last axis, and our attention: a node of the local function nn_harness.SelfAttention (or
  CausalSelfAttention) whose model holds exactly the function our export writes;
- a Reshape that keeps each sample's shape (torch's `x.reshape(-1, 28, 28)` of data already so),
  and one in front of the first layer that gives the input the shape that layer reads (flat rows
  into steps of features, or the time and feature axes split or merged): the network's
  `input_shape` is then the Reshape's (reshape.py);
- the activations of `ONNX_OPS` right after a layer that takes one, and torch's thresholded
  Softplus (Softplus, Greater, Where);
- graphs: an Add or a Concat of layers' outputs (or of one and the input) is an add or concat
  layer (a chain of Adds one add); a layer taking another output than the one before it gets
  `from`, naming its sources as the saved experiment does where it is wired the same, else "l3"
  for layer 3 (graph.py);
- around them: initializers, Constant and Identity nodes, and the small integer programs
  exporters write for a Reshape's target (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice,
  Cast, Transpose, Mul, Reshape), evaluated with the batch size and an open time length as
  symbols, and the Expand or ConstantOfShape of one value over a shape that depends on the batch
  that makes a recurrent layer's zero initial state (folding.py).
Refused, one `ModelFileError` naming the node: any other op (torch's own export of attention, MatMul
and Softmax over [time, batch, features], among them), a join by another op, a branch inside
a layer (a node reading its output without the bias or activation another node folds in), grouped
or dilated convolutions, pools with ceil_mode or dilations, a MaxPool whose indices are used,
an AveragePool that leaves the padding out of the mean (count_include_pad = 0 with pads),
asymmetric pads, auto_pad other than NOTSET, and a graph that does not end in a linear layer taking
the layer before it.

The spec comes back in the general form (`input_shape` from the graph input's dims, a fixed
batch allowed, a time length left open as 0), tensors by our names (`layers.i.weight`, i
counting `spec.all_layers`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.catalog import INITIALIZERS
from harness.errors import ModelFileError, usable_path
from harness.layers import IDENTITY, KINDS, ActivationSpec, setting_to_plain
from harness.onnx import external, graph
from harness.onnx.interface import Refused, axes_text, describe
from harness.onnx.layers import FUNCTIONS
from harness.onnx.walk import Walk
from harness.spec import NetworkSpec, network_from_dict
from harness.spec.tables import read_json


def read_model(path: str | Path) -> Any:
    """The ONNX ModelProto at `path`, or one clear error for a missing, damaged or non-ONNX file, or one
    that names a file outside its folder (external.py: its tensors' data stay where they are)."""
    import onnx

    path = Path(path)
    usable_path(path, "model file", ModelFileError)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends for anything that is not ONNX
        raise ModelFileError(f"{path}: not a readable ONNX model ({type(e).__name__}); truncated, damaged, "
                             "or another format") from None
    if not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path}: not an ONNX model with a graph (no nodes or no inputs)")
    try:
        external.check(model, path.absolute().parent)
    except Refused as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model


def metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def read_network(path: str | Path) -> tuple[NetworkSpec, dict[str, np.ndarray], np.dtype]:
    """The spec, tensors (by our names) and dtype of the ONNX model at `path`."""
    path = Path(path)
    model = read_model(path)
    try:
        external.inline(model, path.absolute().parent)
        _check_functions(model)
        walk = Walk(model.graph)
        for node in model.graph.node:
            walk.step(node)
        layers = walk.layers
        if not layers:
            raise Refused("no layer found (no Gemm, MatMul or Conv)")
        _check_end(walk, [o.name for o in model.graph.output])
        dtype = np.result_type(*(p for layer in layers for p in layer.params.values() if p is not None))
        if dtype not in (np.float32, np.float64):
            raise Refused(f"its parameters are {dtype}; a harness network is float32 or float64")
    except Refused as e:
        raise ModelFileError(f"{path}: {e}") from None
    out = layers[-1]
    raw: dict[str, Any] = {
        "input_shape": list(walk.input_shape), "outputs": out.settings["units"],
        "layers": [{"type": layer.type, **{k: setting_to_plain(v) for k, v in layer.settings.items()},
                    **({"activation": _plain(layer.activation)} if KINDS[layer.type].activation else {})}
                   for layer in layers[:-1]],
        "output_activation": _plain(out.activation)}
    meta = metadata(model)
    try:  # the saved spec says the initializers; a damaged one is left out, the graph says all the rest
        saved = read_json(meta["network"]) if "network" in meta else {}
    except ValueError:
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    if saved.get("init") in INITIALIZERS:
        raw["init"] = saved["init"]
    theirs_all = [t for t in (saved.get("layers") if isinstance(saved.get("layers"), list) else [])
                  if not (isinstance(t, dict) and t.get("type") in KINDS and KINDS[t["type"]].inference_identity)]
    graph.name(raw["layers"], [layer.sources for layer in layers[:-1]], theirs_all)
    for ours, theirs in zip(raw["layers"], theirs_all, strict=False):  # a recurrent layer's own
        choices = KINDS[ours["type"]].keys.get("init")
        if (choices and isinstance(theirs, dict) and theirs.get("type") == ours["type"]
                and theirs.get("init") in choices.choices):
            ours["init"] = theirs["init"]
    spec = network_from_dict(raw, source=str(path))
    tensors = {}
    for i, layer in enumerate(layers):
        for name, value in layer.params.items():
            if value is None:  # no bias in the file: a zero bias
                value = np.zeros(layer.params["weight"].shape[0], dtype=dtype)
            tensors[f"layers.{i}.{name}"] = value
    return spec, tensors, dtype


def _check_functions(model: Any) -> None:
    """Every node calling a local function we write (self-attention) finds in the model exactly the
    function we write: onnxruntime runs the model's, `from_onnx` reads the node as our layer."""
    defined = {(f.domain, f.name): f for f in model.functions}
    for node in model.graph.node:
        check = FUNCTIONS.get((node.domain, node.op_type))
        if check is None:
            continue
        function = defined.get((node.domain, node.op_type))
        why = f"the model defines no function {node.domain}.{node.op_type}" if function is None else check(function)
        if why:
            raise Refused(f"node {describe(node)}: {why}")


def _check_end(walk: Walk, outputs: list[str]) -> None:
    """The graph's one output is the last layer's (a linear one) as it stands, taking the layer before it,
    and every other layer's output goes to a later layer."""
    layers = walk.layers
    if layers[-1].type != "linear":
        raise Refused(f"unsupported node {layers[-1].node} at the end of the graph: a harness network ends "
                      "with a linear output layer (Gemm, or MatMul and Add)")
    end = walk.points.get(outputs[0]) if len(outputs) == 1 else None
    if end is not None and end.labels is not None:
        raise Refused(f"the graph ends on a tensor of axes {axes_text(end.labels)}, not batch first")
    if end is None or end.source != len(layers) - 1 or end.stage != len(walk.folds[-1]):
        raise Refused(f"the graph's outputs {outputs} are not the output of its last layer ({layers[-1].node})")
    unused = next((layer for layer, taker in zip(layers[:-1], walk.taken, strict=False) if taker is None), None)
    if unused is not None:
        raise Refused(f"the output of {unused.node} goes to no later layer; a harness network uses every layer's")
    if layers[-1].sources != (len(layers) - 2,):
        raise Refused(f"its output layer {layers[-1].node} does not take the output of the layer before it")


def _plain(act: ActivationSpec | None) -> dict[str, Any]:
    act = act or IDENTITY
    return {"name": act.name, **act.kwargs()}
