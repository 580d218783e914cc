"""Writing a network as an ONNX model: one node per layer, by the writer of its kind
(harness/onnx/layers/, `WRITERS`), then the native ONNX operator of its activation. A layer reads
the output of each layer it takes (`spec.wiring.sources`: the one before it, unless `from` says).

The input is [batch, *input_shape] with a dynamic batch (and a dynamic "time" where the time
length is open), int64 token ids where an embedding reads it (`Kind.takes_ids`), the file opset
21 and IR version 10 (what onnxruntime 1.31 reads), every tensor
a writer names stored as an initializer under that name (torch's `layers.i.weight`, i counting
`spec.all_layers`; a recurrent layer's `layers.i.W`, `.R`, `.B`), the local functions writers
call (attention's nn_harness.SelfAttention) once each with their domains' opset imports, and the
experiment in `metadata_props`. onnx is imported inside the functions: the engines never need it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.layers import NO_SOURCE, Shape
from harness.onnx import activations
from harness.onnx.layers import WRITERS
from harness.spec import NetworkSpec, network_to_dict

OPSET = 21
IR_VERSION = 10
INPUT, OUTPUT = "input", "output"


class Graph:
    """The nodes and initializers of a model being written, from a network's tensors (by name)
    and what each layer is given (`shapes[i]`, per sample; a tuple of shapes for a kind that merges)."""

    def __init__(self, tensors: dict[str, np.ndarray], shapes: list[Any]) -> None:
        self.tensors, self.shapes, self.nodes, self.inits = tensors, shapes, [], []
        self.functions: dict[tuple[str, str], Any] = {}  # (domain, name) -> the model's local function

    def function(self, proto: Any) -> None:
        """A local function the model carries (once, however many nodes call it), its domain imported."""
        self.functions.setdefault((proto.domain, proto.name), proto)

    def param(self, name: str) -> str:
        """The network's tensor `name`, written as an initializer of that name."""
        return self.tensor(name, self.tensors[name])

    def tensor(self, name: str, value: np.ndarray) -> str:
        """An initializer of `value` (a tensor the writer derives, or a constant)."""
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | list[str], name: str, **attrs: Any) -> str:
        """Add a node; its output's name (the first, given several: "" leaves an optional one out)."""
        from onnx import helper

        outputs = [output] if isinstance(output, str) else output
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]


def _dims(shape: Shape) -> list[int | str]:
    """A tensor's dims in the file: a dynamic batch, and a dynamic time where its length is open (0)."""
    return ["batch", *(d or "time" for d in shape)]


def export(spec: NetworkSpec, tensors: dict[str, np.ndarray], dtype: str | np.dtype, path: str | Path,
           metadata: dict[str, str] | None = None) -> Path:
    """Write the network of `spec` with `tensors` (by name) as an ONNX model; `metadata` lands in
    metadata_props beside the network spec and the dtype."""
    import onnx
    from onnx import TensorProto, helper

    dtype = np.dtype(dtype)
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    ids = any(layer.kind.takes_ids for layer in spec.all_layers)  # token ids in: the wiring has it read the input
    g = Graph(tensors, spec.shapes)
    made: list[str] = []  # each layer's output
    for i, (layer, sources) in enumerate(zip(spec.all_layers, spec.wiring.sources, strict=True)):
        xs = [INPUT if j == NO_SOURCE else made[j] for j in sources]
        z = WRITERS[layer.type](g, i, layer, xs if layer.kind.merges else xs[0])
        made.append(activations.write(g, i, layer, z))
    g.node("Identity", [made[-1]], OUTPUT, "output")
    graph = helper.make_graph(
        g.nodes, "harness_network",
        [helper.make_tensor_value_info(INPUT, TensorProto.INT64 if ids else elem, _dims(spec.input_shape))],
        [helper.make_tensor_value_info(OUTPUT, elem, _dims(spec.shapes[-1]))],
        initializer=g.inits)
    domains = sorted({domain for domain, _ in g.functions})
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    *(helper.make_opsetid(d, 1) for d in domains)],
                              ir_version=IR_VERSION, producer_name="nn-harness", functions=list(g.functions.values()))
    props = {"network": json.dumps(network_to_dict(spec)), "dtype": str(dtype), **(metadata or {})}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path
