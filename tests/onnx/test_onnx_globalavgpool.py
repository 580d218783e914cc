"""torch's own ONNX exports of a small CNN that ends in global average pooling (nn.AdaptiveAvgPool2d(1)
and torch.flatten, or x.mean((2, 3))) read as a globalavgpool2d layer, with both exporters: the legacy
one writes GlobalAveragePool then Flatten, dynamo a ReduceMean over height and width then a Reshape."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import spec
from harness.errors import ModelFileError
from harness.onnx.runtime import predict_onnx
from harness.scratch import Network

CNN = {"input_shape": [1, 8, 8], "outputs": 3, "output_activation": "identity",
       "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "activation": "relu"}, {"type": "globalavgpool2d"}]}
EXPORTS = ["legacy", "dynamo", "legacy, dynamic batch", "dynamo, dynamic batch"]


def cnn(pool: str):
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.pool, self.fc = nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            x = torch.flatten(self.pool(x), 1) if pool == "adaptive" else x.mean((2, 3))
            return self.fc(x)

    torch.manual_seed(0)
    return CNN().eval()


@pytest.fixture(scope="module", params=["adaptive", "mean"])
def torch_files(request, tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp(f"torch_onnx_gap_{request.param}")
    model = cnn(request.param)
    one, two = torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 8, 8)
    files = {name: folder / f"{i}.onnx" for i, name in enumerate(EXPORTS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (one,), str(files["legacy"]), dynamo=False)
        torch.onnx.export(model, (one,), str(files["dynamo"]))
        torch.onnx.export(model, (two,), str(files["legacy, dynamic batch"]), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
        torch.onnx.export(model, (two,), str(files["dynamo, dynamic batch"]), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("n")},))
    x = np.random.default_rng(0).normal(size=(7, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    return files, x, expected, {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("exporter", EXPORTS)
def test_torchs_export_of_a_cnn_with_global_average_pooling_reads_and_agrees_with_onnxruntime(torch_files, exporter):
    files, x, expected, state = torch_files
    net = Network.from_onnx(files[exporter])
    assert net.spec == spec.network_from_dict(CNN)
    ours = {"conv": 0, "fc": 2}
    for key, value in state.items():
        module, name = key.split(".")
        assert net.parameters()[f"layers.{ours[module]}.{name}"].tobytes() == value.tobytes(), key
    pred = net.predict(x)
    assert np.max(np.abs(pred - expected)) <= 1e-5
    assert np.max(np.abs(predict_onnx(files[exporter], x) - pred)) <= 1e-5


def pool_then(tail: list, path) -> None:
    """Conv, GlobalAveragePool, then the nodes `tail` (from "p" to "f"), then Gemm."""
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.ones((3, 2), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             *tail, helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [w, fc])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=8), str(path))


def test_a_squeeze_of_height_and_width_after_global_average_pooling_is_its_flatten(tmp_path):
    pool_then([helper.make_node("Squeeze", ["p"], ["f"], axes=[2, 3])], tmp_path / "m.onnx")
    net = Network.from_onnx(tmp_path / "m.onnx")
    assert [layer.type for layer in net.spec.layers] == ["conv2d", "globalavgpool2d"]
    x = np.random.default_rng(1).normal(size=(4, 1, 8, 8)).astype(np.float32)
    assert np.max(np.abs(predict_onnx(tmp_path / "m.onnx", x) - net.predict(x))) <= 1e-5


def test_global_average_pooling_read_unflattened_is_one_line_naming_the_node(tmp_path):
    pool_then([helper.make_node("Relu", ["p"], ["r"]), helper.make_node("Flatten", ["r"], ["f"])], tmp_path / "m.onnx")
    with pytest.raises(ModelFileError, match=r"node 'r' \(op Relu\): it reads the global average pool's "
                                             r"\[batch, 2, 1, 1\] unflattened"):
        Network.from_onnx(tmp_path / "m.onnx")
