"""Graphs in ONNX (#27): our export of a network with skips and joins reads back as the same network;
torch.onnx.export's files (both exporters) of a small ResNet (conv-bn-relu blocks, an identity and a
1x1-projection skip, adaptive average pooling, a linear head; the legacy exporter folds batchnorm into
the convolutions unless told not to) and of an MLP with batchnorm and dropout read, and agree with torch
and onnxruntime; `harness evaluate` on such a file; and what is still refused, in one line naming the node."""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import helper

from harness import spec
from harness.data import load as load_data
from harness.errors import ModelFileError
from harness.onnx.runtime import predict_onnx
from harness.scratch import Network
from tests.cli.test_cli import ROOT, harness
from tests.onnx.test_onnx_layers import model_file, write_idx_folder

RESIDUAL = {"input_shape": [4, 6, 5], "outputs": 3, "output_activation": "softmax", "layers": [
    {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm", "activation": "relu", "name": "a"},
    {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm", "activation": "relu"},
    {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
    {"type": "batchnorm", "name": "b"},
    {"type": "add", "from": ["a", "b", "input"], "activation": "relu", "name": "sum"},
    {"type": "conv2d", "filters": 2, "kernel": 1, "from": "a", "name": "side"},
    {"type": "concat", "from": ["sum", "side"]},
    {"type": "globalavgpool2d"}]}


def residual_net() -> Network:
    """RESIDUAL with random weights and running statistics away from their initial zeros and ones."""
    s = spec.network_from_dict(RESIDUAL)
    rng = np.random.default_rng(0)
    tensors = Network(s, seed=0, dtype="float32").state_dict()
    for name in tensors:
        if name.endswith(("running_mean", "bias")):
            tensors[name] = rng.normal(0, 0.3, tensors[name].shape).astype(np.float32)
        elif name.endswith("running_var"):
            tensors[name] = rng.uniform(0.5, 1.5, tensors[name].shape).astype(np.float32)
    return Network(s, tensors, dtype="float32")


def test_our_export_of_a_residual_graph_reads_back_as_the_same_network(tmp_path):
    net = residual_net()
    path = net.save(tmp_path / "residual.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Add") == 2 and ops.count("Concat") == 1  # a join of three inputs: two Adds
    back = Network.from_onnx(path)
    assert back.spec == net.spec
    saved, read = net.state_dict(), back.state_dict()
    assert list(read) == list(saved)
    assert all(read[k].tobytes() == v.tobytes() for k, v in saved.items())
    x = np.random.default_rng(1).normal(size=(9, net.spec.inputs)).astype(np.float32)
    assert np.array_equal(back.predict(x), net.predict(x))
    assert np.max(np.abs(predict_onnx(path, x) - net.predict(x))) <= 1e-6


def test_a_graph_without_its_saved_experiment_is_named_where_a_layer_takes_another_than_the_one_before(tmp_path):
    net = residual_net()
    model = onnx.load(str(net.save(tmp_path / "residual.onnx")))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    back = Network.from_onnx(tmp_path / "bare.onnx")
    sources = net.spec.wiring.sources
    assert back.spec.wiring.sources == sources
    for i, layer in enumerate(back.spec.layers):
        takes = sources[i] != (i - 1,)
        assert layer.inputs == (tuple("input" if j == -1 else f"l{j}" for j in sources[i]) if takes else ()), i
        named = any(i in src for j, src in enumerate(sources) if sources[j] != (j - 1,))
        assert layer.name == (f"l{i}" if named else ""), i
    x = np.random.default_rng(1).normal(size=(9, net.spec.inputs)).astype(np.float32)
    assert np.array_equal(back.predict(x), net.predict(x))


def test_the_torch_twins_own_export_of_a_graph_reads_back_and_predicts_the_same(tmp_path):
    """The torch engine exports with dynamo: its sums of three (a chain of Adds), its torch.cat (Concat),
    its batchnorm at the initial statistics folded into the convolutions before it."""
    from harness.engines import engine_class
    from harness.init import initial_parameters

    s = spec.from_dict({"data": {"dataset": "xor"}, "network": RESIDUAL, "training": {"loss": "mse"}})
    twin = engine_class("torch")(s.network, s.training, initial_parameters(s.network, seed=0, dtype="float32"))
    back = Network.from_onnx(twin.export_onnx(tmp_path / "twin.onnx"))
    kinds = [layer.type for layer in back.spec.layers]
    assert kinds.count("add") == 1 and kinds.count("concat") == 1
    assert [len(src) for src in back.spec.wiring.sources if len(src) > 1] == [3, 2]
    x = np.random.default_rng(1).normal(size=(9, *s.network.input_shape)).astype(np.float32)
    assert np.max(np.abs(back.predict(x) - twin.predict(x))) <= 1e-5


def resnet_module(size: int, classes: int):
    """A small ResNet in eval mode, weights and batchnorm statistics random: a conv-bn-relu stem, a
    block with an identity skip, one with a 1x1-convolution projection skip (with its own batchnorm),
    nn.AdaptiveAvgPool2d(1), flatten, a linear head."""
    import torch
    from torch import nn

    def conv_bn(cin: int, cout: int, k: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.one, self.two = conv_bn(cin, cout, 3), conv_bn(cout, cout, 3)
            self.skip = nn.Identity() if cin == cout else conv_bn(cin, cout, 1)

        def forward(self, x):
            return torch.relu(self.two(torch.relu(self.one(x))) + self.skip(x))

    torch.manual_seed(0)
    model = nn.Sequential(conv_bn(1, 4, 3), nn.ReLU(), Block(4, 4), Block(4, 6), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, classes))
    return randomized(model, size)


def mlp_module():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return randomized(nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3)))


def randomized(model, size: int = 0):
    """`model` in eval mode with its batchnorm statistics and affine maps away from their initial values."""
    import torch

    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.normal_(0, 0.3, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.normal_(1, 0.2, generator=g)
            m.bias.data.normal_(0, 0.2, generator=g)
    model.size = size
    return model.eval()


EXPORTS = {  # name -> torch.onnx.export's keywords besides the model and example
    "legacy": {"dynamo": False, "input_names": ["x"], "dynamic_axes": {"x": {0: "n"}}},
    "legacy, batchnorm unfolded": {"dynamo": False, "do_constant_folding": False},
    "dynamo": {"dynamo": True, "external_data": False},
}


def export(model, shape: tuple[int, ...], path, exporter: str):
    import torch

    keywords = dict(EXPORTS[exporter])
    if exporter == "dynamo":
        keywords["dynamic_shapes"] = ({0: torch.export.Dim("n")},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, *shape),), str(path), **keywords)
    return path


MODELS = {"resnet": (lambda: resnet_module(8, 3), (1, 8, 8)), "mlp": (mlp_module, (5,))}


@pytest.mark.parametrize("exporter", EXPORTS)
@pytest.mark.parametrize("name", MODELS)
def test_torchs_export_of_a_resnet_and_an_mlp_with_batchnorm_reads_and_agrees(tmp_path, name, exporter):
    import torch

    make, shape = MODELS[name]
    model = make()
    path = export(model, shape, tmp_path / f"{name}.onnx", exporter)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Dropout" not in ops  # eval mode: nothing, which the dropout kind would read as a layer
    net = Network.from_onnx(path)
    kinds = [layer.type for layer in net.spec.layers]
    assert kinds.count("batchnorm") == ops.count("BatchNormalization")
    if name == "resnet":
        assert kinds.count("add") == 2 and kinds.count("conv2d") == 6 and kinds[-1] == "globalavgpool2d"
        projection = [layer for layer in net.spec.layers if layer.type == "conv2d" and layer.inputs]
        assert len(projection) == 1 and projection[0].get("kernel") == (1, 1)
        if "BatchNormalization" not in ops:  # folded into the convolutions: each has a bias now
            convs = [i for i, kind in enumerate(kinds) if kind == "conv2d"]
            assert all(np.any(net.parameters()[f"layers.{i}.bias"] != 0) for i in convs)
    x = np.random.default_rng(2).normal(size=(7, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    pred = net.predict(x)
    assert np.max(np.abs(pred - expected)) <= 1e-5
    assert np.max(np.abs(predict_onnx(path, x) - pred)) <= 1e-5


def test_harness_evaluate_and_the_scratch_engine_reproduce_torchs_accuracy_from_a_resnet_export(tmp_path):
    """`harness evaluate` runs the file through onnxruntime; the scratch engine reads it as our layers."""
    import torch

    folder = write_idx_folder(tmp_path / "idx", np.random.default_rng(0))
    d = load_data(spec.DataSpec(dataset="mnist", path=str(folder)), seed=0, dtype="float32")
    model = resnet_module(28, 10)
    with torch.no_grad():
        expected = model(torch.from_numpy(d.x_test.reshape(-1, 1, 28, 28))).numpy()
    accuracy = float((expected.argmax(1) == d.y_test).mean())
    path = export(model, (1, 28, 28), tmp_path / "resnet.onnx", "legacy")
    experiment = tmp_path / "digits.toml"
    text = (ROOT / "experiments" / "mnist.toml").read_text()
    experiment.write_text(text.replace('dataset = "mnist"', f'dataset = "mnist"\npath = "{folder}"', 1))
    out = harness("evaluate", str(path), "--experiment", str(experiment))
    assert out.returncode == 0, out.stderr
    found = re.search(r"test accuracy (\d\.\d{4}) on ([\d,]+) samples of mnist", out.stdout)
    assert found, out.stdout
    assert int(found[2].replace(",", "")) == len(d.y_test)
    assert float(found[1]) == pytest.approx(accuracy, abs=1.5e-3)  # a near-tie may flip between runtimes
    ours = Network.from_onnx(path).predict(d.x_test)
    assert float((ours.argmax(1) == d.y_test).mean()) == pytest.approx(accuracy, abs=1.5e-3)


W = ("w", np.ones((2, 2, 3, 3)))
CONV = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
REFUSED = [  # (case, nodes, initializers, pattern)
    ("a branch inside a layer", [CONV, helper.make_node("Relu", ["c"], ["r"]),
                                 helper.make_node("Add", ["r", "c"], ["y"], name="bad")], [W],
     r"node 'bad' \(op Add\) reads 'c', the output of 'c' \(op Conv\) without 'r' \(op Relu\) that another node "
     r"folds into it \(a branch inside a layer\)"),
    ("an activation after the output was taken", [CONV, helper.make_node("Add", ["c", "x"], ["s"]),
                                                  helper.make_node("Relu", ["c"], ["y"], name="bad")], [W],
     r"node 'bad' \(op Relu\) folds into 'c' \(op Conv\), whose output 's' \(op Add\) takes without it"),
    ("a join along the wrong axis", [CONV, helper.make_node("Concat", ["c", "x"], ["y"], name="bad", axis=2)], [W],
     r"node 'bad' \(op Concat\): it joins \[batch, 2, 6, 6\] along axis 2; only a join along the channels of "
     r"images \(axis 1\) is supported"),
    ("an add that broadcasts", [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
                                helper.make_node("Add", ["c", "x"], ["y"], name="bad")],
     [("w1", np.ones((1, 2, 3, 3)))],
     r"node 'bad' \(op Add\) on input \[1, 6, 6\] \+ \[2, 6, 6\]: add needs inputs of one shape"),
    ("a layer whose output nothing takes", [CONV, helper.make_node("Conv", ["x", "w"], ["d"], name="bad"),
                                            helper.make_node("Flatten", ["c"], ["f"]),
                                            helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)],
     [W, ("fc", np.ones((3, 72)))], r"the output of 'bad' \(op Conv\) goes to no later layer"),
    ("a join by another op", [CONV, helper.make_node("Sub", ["c", "x"], ["y"], name="bad")], [W],
     r"node 'bad' \(op Sub\) reads 2 tensors of the network \(c, x\); only Add, Concat may join"),
]


@pytest.mark.parametrize("case,nodes,inits,pattern", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_graph_that_cannot_be_read_is_refused_in_one_line_naming_the_node(tmp_path, case, nodes, inits, pattern):
    path = model_file(tmp_path, nodes, inits)
    with pytest.raises(ModelFileError, match=pattern) as e:
        Network.from_onnx(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
