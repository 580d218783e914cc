"""ONNX, the standard file format for a trained network, both ways, engine-neutral: a network is
its spec, its tensors by name (torch's `layers.i.weight`) and its dtype, never an engine's object.

- export.py: `export(spec, tensors, dtype, path, metadata)`, the graph writer;
- read.py: `read_model`, `metadata`, `read_network(path) -> (spec, tensors, dtype)`;
- external.py: tensors kept in other files, read from the model's own folder only;
- walk.py: the graph walk (the chain from input to output), readers plugged in by ONNX op;
- folding.py: constants and shape programs; fusions.py: bias, activation and Softplus fusion;
- activations.py: each activation's ONNX operator (`ONNX_OPS`);
- layers/: one module per layer kind, its writer and its reader(s) (`WRITERS`, `READERS`);
- runtime.py: running a file with onnxruntime (`harness evaluate` is harness/run/evaluate.py).
onnx and onnxruntime are imported inside the functions that use them.
"""

from harness.onnx.activations import ONNX_OPS
from harness.onnx.export import IR_VERSION, OPSET, export
from harness.onnx.layers import IMPORTERS, READERS, WRITERS
from harness.onnx.read import metadata, read_model, read_network

__all__ = ["IMPORTERS", "IR_VERSION", "ONNX_OPS", "OPSET", "READERS", "WRITERS", "export", "metadata", "read_model",
           "read_network"]
