"""ONNX, the standard file format for a trained network: the shared vocabulary and export.

Export writes one node per layer, by a handler per layer kind (`EXPORTERS`): linear as Gemm
(W stored as torch's (out, in), transB = 1; on every step of a sequence, MatMul by its
Transpose and Add), conv2d as Conv, maxpool2d as MaxPool, avgpool2d as AveragePool counting
the padding (torch's default, not ONNX's), flatten as Flatten, rnn, lstm and gru as RNN, LSTM
and GRU between Transposes (harness/scratch/onnx_recurrent.py); then the native ONNX operator
of each activation. The input is [batch, *input_shape] with a dynamic batch (and a dynamic
"time" where the time length is open), the file opset 21 and IR version 10 (what onnxruntime
1.31 reads), parameters named `layers.i.weight` / `layers.i.bias` (i counting
`spec.all_layers`; a recurrent layer's `layers.i.W`, `.R`, `.B`), and the experiment in
`metadata_props`.

Import (`load`, `IMPORTERS`) lives in harness/scratch/onnx_import.py: one reader per ONNX
operator that makes a layer. onnx is imported inside the functions: the engine never needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.layers import LayerSpec, Shape
from harness.scratch import onnx_recurrent
from harness.scratch.onnx_import import IMPORTERS, load, metadata, read_model
from harness.spec import network_to_dict

if TYPE_CHECKING:
    from harness.scratch.network import Network

__all__ = ["EXPORTERS", "IMPORTERS", "IR_VERSION", "ONNX_OPS", "OPSET", "export", "load", "metadata", "read_model"]

OPSET = 21
IR_VERSION = 10
INPUT, OUTPUT = "input", "output"

# our activation -> (ONNX op, {our parameter: ONNX attribute}); identity adds no node
ONNX_OPS: dict[str, tuple[str, dict[str, str]]] = {
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"slope": "alpha"}), "elu": ("Elu", {"alpha": "alpha"}),
    "gelu": ("Gelu", {}), "softplus": ("Softplus", {}), "softmax": ("Softmax", {}),
}


class _Graph:
    """The nodes and initializers of a model being written, from a network's parameters and the
    input shape of each layer (`shapes[i]`, per sample)."""

    def __init__(self, params: dict[str, np.ndarray], shapes: list[Shape]) -> None:
        self.params, self.shapes, self.nodes, self.inits = params, shapes, [], []

    def param(self, name: str) -> str:
        return self.tensor(name, self.params[name])

    def tensor(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | list[str], name: str, **attrs: Any) -> str:
        """Add a node; its output's name (the first, given several: "" leaves an optional one out)."""
        from onnx import helper

        outputs = [output] if isinstance(output, str) else output
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]


Exporter = Callable[[_Graph, int, LayerSpec, str], str]  # (graph, layer index, layer, input) -> output


def _linear(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
    if len(g.shapes[i]) == 2:  # every step of a sequence (N, T, F): Gemm takes matrices only, MatMul broadcasts
        w_t = g.node("Transpose", [g.param(f"layers.{i}.weight")], f"layers.{i}.weight_t", f"layers.{i}.transpose",
                     perm=[1, 0])
        xw = g.node("MatMul", [x, w_t], f"layers.{i}.xw", f"layers.{i}")
        return g.node("Add", [xw, g.param(f"layers.{i}.bias")], f"layers.{i}.z", f"layers.{i}.bias")
    return g.node("Gemm", [x, g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")], f"layers.{i}.z",
                  f"layers.{i}", transB=1)


def _window(layer: LayerSpec) -> dict[str, list[int]]:
    """kernel_shape, strides and pads as ONNX writes them: pads [top, left, bottom, right]."""
    ph, pw = layer.get("padding")
    return {"kernel_shape": list(layer.get("kernel")), "strides": list(layer.get("stride")),
            "pads": [ph, pw, ph, pw]}


def _conv2d(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("Conv", [x, g.param(f"layers.{i}.weight"), g.param(f"layers.{i}.bias")], f"layers.{i}.z",
                  f"layers.{i}", **_window(layer), dilations=[1, 1], group=1)


def _maxpool2d(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("MaxPool", [x], f"layers.{i}.z", f"layers.{i}", **_window(layer))


def _avgpool2d(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
    # padding counts as zeros in the mean, as in torch.nn.AvgPool2d (ONNX's default is 0)
    return g.node("AveragePool", [x], f"layers.{i}.z", f"layers.{i}", **_window(layer), count_include_pad=1)


def _flatten(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
    return g.node("Flatten", [x], f"layers.{i}.z", f"layers.{i}", axis=1)


# layer kind -> its exporter: exactly the kinds of harness.layers.KINDS (tests/test_registries.py)
EXPORTERS: dict[str, Exporter] = {"linear": _linear, "conv2d": _conv2d, "maxpool2d": _maxpool2d,
                                  "avgpool2d": _avgpool2d, "flatten": _flatten, **onnx_recurrent.EXPORTERS}


def _activation(g: _Graph, i: int, layer: LayerSpec, x: str) -> str:
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


def _dims(shape: Shape) -> list[int | str]:
    """A tensor's dims in the file: a dynamic batch, and a dynamic time where its length is open (0)."""
    return ["batch", *(d or "time" for d in shape)]


def export(net: Network, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write `net` as an ONNX model; `metadata` lands in metadata_props beside the network spec."""
    import onnx
    from onnx import TensorProto, helper

    elem = TensorProto.DOUBLE if net.dtype == np.float64 else TensorProto.FLOAT
    g = _Graph(net.parameters(), net.spec.shapes)
    current = INPUT
    for i, layer in enumerate(net.spec.all_layers):
        current = _activation(g, i, layer, EXPORTERS[layer.type](g, i, layer, current))
    g.node("Identity", [current], OUTPUT, "output")
    graph = helper.make_graph(
        g.nodes, "harness_network",
        [helper.make_tensor_value_info(INPUT, elem, _dims(net.spec.input_shape))],
        [helper.make_tensor_value_info(OUTPUT, elem, _dims(net.spec.shapes[-1]))],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="nn-harness")
    props = {"network": json.dumps(network_to_dict(net.spec)), "dtype": str(net.dtype), **(metadata or {})}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path
