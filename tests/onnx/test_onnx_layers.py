"""ONNX for every layer kind: our export checked by onnxruntime, the round trip back to a scratch
network, torch.onnx.export's own files (both exporters) read and evaluated, and what is refused."""

import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import cli, spec
from harness.data import load as load_data
from harness.data import mnist
from harness.errors import ModelFileError
from harness.onnx.runtime import predict_onnx
from harness.scratch import Network
from tests.cli.test_cli import ROOT, harness

# one network per kind (and LeNet with all of them): strides, padding, non-square and overlapping windows
NETS = {
    "conv2d": {"input_shape": [2, 9, 8], "outputs": 3, "output_activation": "softmax", "layers": [
        {"type": "conv2d", "filters": 4, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0], "activation": "tanh"},
        {"type": "conv2d", "filters": 3, "kernel": 1, "activation": "relu"}, {"type": "flatten"}]},
    "maxpool2d": {"input_shape": [2, 9, 8], "outputs": 3, "layers": [
        {"type": "maxpool2d", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "maxpool2d", "kernel": [2, 3], "stride": [1, 2], "padding": [1, 1]}, {"type": "flatten"}]},
    "avgpool2d": {"input_shape": [2, 9, 8], "outputs": 3, "layers": [
        {"type": "avgpool2d", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "avgpool2d", "kernel": [2, 3], "stride": [1, 2], "padding": [1, 1]}, {"type": "flatten"}]},
    "flatten+linear": {"input_shape": [3, 4, 5], "outputs": 2, "layers": [
        {"type": "flatten"}, {"type": "linear", "units": 6, "activation": "sigmoid"}]},
}
LENET = {"input_shape": [1, 28, 28], "outputs": 10, "output_activation": "softmax", "layers": [
    {"type": "conv2d", "filters": 6, "kernel": 5, "padding": 2, "activation": "relu"},
    {"type": "maxpool2d", "kernel": 2}, {"type": "conv2d", "filters": 16, "kernel": 5, "activation": "relu"},
    {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "units": 120, "activation": "relu"}]}
NETS["lenet"] = LENET
NO_FLOAT64 = {"Conv", "AveragePool"}  # onnxruntime 1.31's CPU provider has float kernels only for these


def net_of(name, dtype, seed=0):
    return Network(spec.network_from_dict(NETS[name]), seed=seed, dtype=dtype)


def flat_rows(net, n=17, seed=1):
    """Samples as datasets give them: flat rows, which the model's own shape must be restored from."""
    return np.random.default_rng(seed).normal(size=(n, net.spec.inputs)).astype(net.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETS))
def test_onnxruntime_runs_our_export_as_predict_does(tmp_path, name, dtype):
    net = net_of(name, dtype)
    path = net.save(tmp_path / f"{name}.onnx")
    x = flat_rows(net)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    if dtype == "float64" and ops & NO_FLOAT64:
        with pytest.raises(ModelFileError, match=r"NOT_IMPLEMENTED .*(Conv|AveragePool)"):
            predict_onnx(path, x)
        pytest.skip(f"onnxruntime has no float64 {' or '.join(sorted(ops & NO_FLOAT64))} kernel: this network is "
                    "compared in float32 and read back bit for bit in float64 (the round-trip test)")
    theirs = predict_onnx(path, x)
    assert theirs.dtype == net.dtype and theirs.shape == (len(x), net.spec.outputs)
    np.testing.assert_allclose(theirs, net.predict(x), rtol=0, atol=2e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETS))
def test_export_then_from_onnx_gives_back_the_same_network(tmp_path, name, dtype):
    net = net_of(name, dtype, seed=3)
    path = net.save(tmp_path / f"{name}.onnx")
    back = Network.from_onnx(path)
    assert back.spec == net.spec and back.dtype == net.dtype
    assert back.parameters().keys() == net.parameters().keys()
    assert all(back.parameters()[k].tobytes() == v.tobytes() for k, v in net.parameters().items())
    x = flat_rows(net)
    assert back.predict(x).tobytes() == net.predict(x).tobytes()


def test_the_exported_file_writes_each_kind_as_torch_means_it(tmp_path):
    net = net_of("lenet", "float32")
    model = onnx.load(str(net.save(tmp_path / "lenet.onnx")))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and model.opset_import[0].version == 21
    graph = model.graph
    assert [n.op_type for n in graph.node] == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "AveragePool", "Flatten",
                                               "Gemm", "Relu", "Gemm", "Softmax", "Identity"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, 28, 28]
    assert [t.name for t in graph.initializer] == [f"layers.{i}.{p}" for i in (0, 2, 5, 6) for p in ("weight", "bias")]
    attrs = {n.op_type: {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in graph.node}
    conv = {n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in graph.node}["layers.0"]
    assert conv == {"kernel_shape": [5, 5], "strides": [1, 1], "pads": [2, 2, 2, 2], "dilations": [1, 1], "group": 1}
    assert attrs["AveragePool"]["count_include_pad"] == 1  # torch's default; ONNX's is 0
    assert attrs["MaxPool"] == {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0]}
    assert attrs["Flatten"] == {"axis": 1} and attrs["Gemm"] == {"transB": 1}


# ---------------------------------------------------------------------------- torch.onnx.export's files


def lenet_module(view: bool):
    """LeNet as torch users write it: nn.Flatten, or `x.view(x.size(0), -1)` (which the legacy exporter
    writes with a dynamic batch as Shape, Gather, Unsqueeze, Concat and Reshape)."""
    import torch
    from torch import nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2 = nn.Linear(400, 120), nn.Linear(120, 10)
            self.flatten = nn.Flatten()

        def forward(self, x):
            x = nn.functional.avg_pool2d(torch.relu(self.conv2(nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2))),
                                         2)
            x = x.view(x.size(0), -1) if view else self.flatten(x)
            return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)

    return LeNet()


def digits():
    """MNIST from the cache when it is there; otherwise IDX files of random digits of MNIST's shapes,
    so that everything but the accuracy figure itself is still checked."""
    if mnist.cache_path().exists():
        return spec.DataSpec(dataset="mnist", train_size=6000), "MNIST"
    return None, "random digits (MNIST is not in the cache: `harness data fetch mnist`)"


def write_idx_folder(folder, rng):
    import struct

    folder.mkdir()
    for name, shape in (("train-images-idx3-ubyte", (600, 28, 28)), ("train-labels-idx1-ubyte", (600,)),
                        ("t10k-images-idx3-ubyte", (1000, 28, 28)), ("t10k-labels-idx1-ubyte", (1000,))):
        data = rng.integers(0, 10 if "labels" in name else 256, size=shape, dtype=np.uint8)
        header = bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
        (folder / name).write_bytes(header + data.tobytes())
    return folder


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    """A LeNet trained for one short epoch with torch, exported four ways: each exporter with its
    defaults (a fixed batch of 1; dynamo keeps the weights in an external .data file beside the
    model), and each with a dynamic batch."""
    import torch

    folder = tmp_path_factory.mktemp("torch_onnx")
    data_spec, source = digits()
    if data_spec is None:
        data_spec = spec.DataSpec(dataset="mnist", path=str(write_idx_folder(folder / "idx", np.random.default_rng(0))))
    d = load_data(data_spec, seed=0, dtype="float32")
    torch.manual_seed(0)
    model = lenet_module(view=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.from_numpy(d.x_train.reshape(-1, 1, 28, 28)), torch.from_numpy(d.y_train)
    for idx in torch.randperm(len(x)).split(50):
        opt.zero_grad()
        torch.nn.functional.nll_loss(torch.log(model(x[idx]) + 1e-12), y[idx]).backward()
        opt.step()
    model.eval()
    viewing = lenet_module(view=True)
    viewing.load_state_dict(model.state_dict())
    viewing.eval()
    one, two = torch.zeros(1, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    files = {"legacy": folder / "legacy.onnx", "dynamo": folder / "dynamo.onnx",
             "legacy, dynamic batch, view": folder / "legacy_view.onnx", "dynamo, dynamic batch": folder / "dyn.onnx"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (one,), str(files["legacy"]), dynamo=False)
        torch.onnx.export(model, (one,), str(files["dynamo"]))
        torch.onnx.export(viewing, (two,), str(files["legacy, dynamic batch, view"]), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
        torch.onnx.export(model, (two,), str(files["dynamo, dynamic batch"]), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("n")},))
    with torch.no_grad():
        expected = model(torch.from_numpy(d.x_test.reshape(-1, 1, 28, 28))).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    return files, d, expected, state, data_spec, source


@pytest.mark.parametrize("exporter", ["legacy", "dynamo", "legacy, dynamic batch, view", "dynamo, dynamic batch"])
def test_a_lenet_from_torch_onnx_export_predicts_what_torch_does(torch_files, exporter):
    files, d, expected, state, _, _ = torch_files
    path = files[exporter]
    if exporter == "dynamo":
        assert path.with_name("dynamo.onnx.data").exists()  # torch 2.13's default: weights outside the model
    net = Network.from_onnx(path)
    assert net.spec == spec.network_from_dict(LENET) and net.dtype == np.float32
    ours = {"conv1": 0, "conv2": 2, "fc1": 5, "fc2": 6}
    for key, value in state.items():
        module, name = key.split(".")
        assert net.parameters()[f"layers.{ours[module]}.{name}"].tobytes() == value.tobytes(), key
    pred = net.predict(d.x_test)  # flat rows, as the dataset gives them
    assert np.max(np.abs(pred - expected)) <= 1e-5
    assert (pred.argmax(1) == expected.argmax(1)).mean() >= 0.999  # a near-tie may flip in float32
    n = 300  # onnxruntime on the file too (a fixed batch of 1 runs sample by sample)
    assert np.max(np.abs(predict_onnx(path, d.x_test[:n]) - expected[:n])) <= 1e-5


def test_the_torch_twins_own_export_of_a_cnn_reads_back(tmp_path):
    """The torch engine exports with dynamo (names `mlp.layers.i.weight`, nn.Flatten as Reshape); with
    xavier initialisation every bias is zero and torch 2.13 leaves them out of Conv and Gemm."""
    from harness.engines import engine_class
    from harness.init import initial_parameters

    s = spec.from_dict({"data": {"dataset": "xor"}, "network": NETS["conv2d"], "training": {"loss": "cross_entropy"}})
    params = initial_parameters(s.network, seed=0, dtype="float32")
    twin = engine_class("torch")(s.network, s.training, params)
    back = Network.from_onnx(twin.export_onnx(tmp_path / "twin.onnx"))
    assert back.spec == s.network
    assert all(back.parameters()[k].tobytes() == v.tobytes() for k, v in params.items())
    x = flat_rows(back)
    np.testing.assert_allclose(back.predict(x), twin.predict(x.reshape(len(x), *s.network.input_shape)), atol=1e-6)


def check_evaluate_of_legacy_export(torch_files, tmp_path, least: float, why: str) -> None:
    """`harness evaluate` on torch's legacy export (a fixed batch of 1) reproduces torch's accuracy."""
    files, d, expected, _, data_spec, source = torch_files
    accuracy = float((expected.argmax(1) == d.y_test).mean())
    if data_spec.path is None:
        args = ["--data", "mnist"]
    else:  # the random digits: an experiment file pointing at their folder
        experiment = tmp_path / "digits.toml"
        text = (ROOT / "experiments" / "mnist.toml").read_text()
        experiment.write_text(text.replace('dataset = "mnist"', f'dataset = "mnist"\npath = "{data_spec.path}"', 1))
        args = ["--experiment", str(experiment)]
    out = harness("evaluate", str(files["legacy"]), *args)
    assert out.returncode == 0, out.stderr
    found = re.search(r"test accuracy (\d\.\d{4}) on ([\d,]+) samples of mnist", out.stdout)
    assert found, out.stdout
    assert int(found[2].replace(",", "")) == len(d.y_test)
    assert float(found[1]) == pytest.approx(accuracy, abs=2e-4), source  # a near-tie may flip between runtimes
    assert "fixed batch of 1" in out.stdout
    if source == "MNIST":
        assert accuracy >= least, why


def test_harness_evaluate_reproduces_torchs_accuracy_from_a_legacy_export(torch_files, tmp_path):
    check_evaluate_of_legacy_export(torch_files, tmp_path, 0.85,
                                    "one short epoch of LeNet on 6,000 digits reaches about 90%")


# ---------------------------------------------------------------------------- what is read, what is refused


def model_file(tmp_path, nodes, inits=(), input_shape=("n", 2, 6, 6), outputs=("y",), name="m"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f"
                                                                  else np.int64), k) for k, v in inits])
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), str(path))
    return path


def test_a_hand_written_graph_with_a_separate_bias_add_and_a_reshape_by_zero(tmp_path):
    """Conv without a bias then Add (1, F, 1, 1), AveragePool leaving out padding it does not have,
    Reshape to [0, -1], MatMul + Add: what other exporters write is read as our layers."""
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=(1, 3, 1, 1))
    w2, b2 = rng.normal(size=(12, 4)), rng.normal(size=4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "b"], ["z"]), helper.make_node("Relu", ["z"], ["a"]),
             helper.make_node("AveragePool", ["a"], ["p"], kernel_shape=[3, 3], strides=[3, 3], count_include_pad=0),
             helper.make_node("Reshape", ["p", "shape"], ["f"]), helper.make_node("MatMul", ["f", "w2"], ["h"]),
             helper.make_node("Add", ["h", "b2"], ["y"])]
    path = model_file(tmp_path, nodes, [("w", w), ("b", b), ("shape", [0, -1]), ("w2", w2), ("b2", b2)])
    net = Network.from_onnx(path)
    assert net.spec.describe() == "[2, 6, 6] -> conv2d 3 k3 p1 relu -> avgpool2d k3 -> flatten -> 4"
    x = rng.normal(size=(5, 72)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x), predict_onnx(path, x), rtol=1e-5, atol=1e-6)


W = ("w", np.ones((2, 2, 3, 3)))
REFUSED = [  # (case, nodes, initializers, pattern)
    ("grouped conv", [helper.make_node("Conv", ["x", "w1"], ["y"], name="bad", group=2)],
     [("w1", np.ones((2, 1, 3, 3)))],
     r"node 'bad' \(op Conv\): group = 2 \(a grouped convolution\) is not supported"),
    ("dilated conv", [helper.make_node("Conv", ["x", "w"], ["y"], name="bad", dilations=[2, 2])], [W],
     r"node 'bad' \(op Conv\): dilations \[2, 2\] are not supported"),
    ("auto_pad", [helper.make_node("Conv", ["x", "w"], ["y"], name="bad", auto_pad="SAME_UPPER")], [W],
     r"node 'bad' \(op Conv\): auto_pad = SAME_UPPER; only explicit pads"),
    ("asymmetric pads", [helper.make_node("Conv", ["x", "w"], ["y"], name="bad", pads=[0, 0, 1, 1])], [W],
     r"node 'bad' \(op Conv\): asymmetric pads \[0, 0, 1, 1\]"),
    ("ceil_mode", [helper.make_node("MaxPool", ["x"], ["y"], name="bad", kernel_shape=[2, 2], ceil_mode=1)], [],
     r"node 'bad' \(op MaxPool\): ceil_mode = 1"),
    ("dilated pool", [helper.make_node("MaxPool", ["x"], ["y"], name="bad", kernel_shape=[2, 2], dilations=[2, 2])], [],
     r"node 'bad' \(op MaxPool\): dilations \[2, 2\]"),
    ("MaxPool indices used", [helper.make_node("MaxPool", ["x"], ["y", "i"], name="bad", kernel_shape=[2, 2]),
                              helper.make_node("Cast", ["i"], ["j"], to=TensorProto.FLOAT)], [],
     r"node 'bad' \(op MaxPool\): its second output, the indices of the maxima, is used"),
    ("AveragePool without the padding", [helper.make_node("AveragePool", ["x"], ["y"], name="bad", kernel_shape=[3, 3],
                                                          pads=[1, 1, 1, 1])], [],
     r"node 'bad' \(op AveragePool\): count_include_pad = 0 with pads .* a different function"),
    ("Reshape that is no flatten", [helper.make_node("Reshape", ["x", "s"], ["y"], name="bad")], [("s", [-1, 6, 6])],
     r"node 'bad' \(op Reshape\): a Reshape of \[batch, 2, 6, 6\] to \[-1, 6, 6\]: it holds 36 values a sample, "
     r"the input 72"),
    ("activation after a pool", [helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[2, 2]),
                                 helper.make_node("Relu", ["p"], ["y"], name="bad")], [],
     r"activation 'bad' \(op Relu\) follows 'p' \(op AveragePool\), a avgpool2d layer"),
    ("a branch joined by a Mul", [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                  helper.make_node("Mul", ["c", "x"], ["y"], name="bad")], [W],
     r"node 'bad' \(op Mul\) reads 2 tensors of the network \(c, x\); only Add, Concat may join"),
    ("an unknown op", [helper.make_node("LRN", ["x"], ["y"], name="bad", size=3)], [],
     r"unsupported node 'bad' \(op LRN\); a harness model is a chain of the layers Gemm, MatMul, Conv"),
]


@pytest.mark.parametrize("case,nodes,inits,pattern", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_is_not_supported_is_refused_naming_the_node(tmp_path, case, nodes, inits, pattern):
    path = model_file(tmp_path, nodes, inits)
    with pytest.raises(ModelFileError, match=pattern) as e:
        Network.from_onnx(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_data_that_does_not_fit_the_models_sample_shape_gets_one_line(tmp_path, capsys):
    net = Network(spec.network_from_dict({"input_shape": [3, 32, 32], "outputs": 2, "layers": [
        {"type": "maxpool2d", "kernel": 4}, {"type": "flatten"}]}), seed=0)
    path = net.save(tmp_path / "rgb.onnx")
    with pytest.raises(ModelFileError, match=r"^the model takes samples of shape \[3, 32, 32\] \(3,072 values\), "
                                             r"the data has 784 features$"):
        predict_onnx(path, np.zeros((4, 784), dtype=np.float32))
    assert predict_onnx(path, np.zeros((4, 3072))).shape == (4, 2)  # flat rows of the right size are reshaped
    for model in (path, net.save(tmp_path / "rgb.npz")):
        code = cli.main(["evaluate", str(model), "--data", "xor"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert re.search(r"rgb\.(onnx|npz): the model takes samples of shape \[3, 32, 32\] \(3,072 values\), the data "
                         r"has 2 features \(dataset 'xor'\)", err), err


def test_a_dynamo_export_copied_without_its_data_file_gets_one_line(torch_files, tmp_path):
    import shutil

    alone = shutil.copy(torch_files[0]["dynamo"], tmp_path / "alone.onnx")
    with pytest.raises(ModelFileError, match=r"alone.onnx: its weights are stored outside it and cannot be read .* "
                                             r"keep the two together, or export with external_data=False"):
        Network.from_onnx(alone)
