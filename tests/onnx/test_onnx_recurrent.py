"""ONNX for the recurrent kinds (rnn, lstm, gru): our export checked by onnxruntime, the round trip back to a
scratch network, open time lengths, torch.onnx.export's own files (both exporters) read and evaluated, and
what is refused."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import spec
from harness.data import load as load_data
from harness.errors import ModelFileError
from harness.onnx.runtime import fit_samples, predict_onnx
from harness.scratch import Network
from tests.onnx.test_onnx_layers import check_evaluate_of_legacy_export, digits, write_idx_folder


def last(kind, units=5, **more):
    return {"type": kind, "units": units, **more}


def every_step(kind, units=5, **more):
    return {"type": kind, "units": units, "return_sequences": True, **more}


# every kind, the last step and every step (an output per step), stacked, a linear layer per step
NETS = {
    "rnn tanh": {"input_shape": [6, 4], "outputs": 3, "output_activation": "softmax", "layers": [last("rnn")]},
    "rnn tanh, every step": {"input_shape": [6, 4], "outputs": 3, "layers": [every_step("rnn")]},
    "rnn relu": {"input_shape": [6, 4], "outputs": 3, "layers": [last("rnn", activation="relu")]},
    "rnn relu, every step": {"input_shape": [6, 4], "outputs": 2, "output_activation": "sigmoid",
                             "layers": [every_step("rnn", activation="relu")]},
    "lstm": {"input_shape": [6, 4], "outputs": 3, "output_activation": "softmax", "layers": [last("lstm")]},
    "lstm, every step": {"input_shape": [6, 4], "outputs": 3, "output_activation": "softmax",
                         "layers": [every_step("lstm", init="xavier_uniform")]},
    "gru": {"input_shape": [6, 4], "outputs": 3, "layers": [last("gru", init="he_normal")]},
    "gru, every step": {"input_shape": [6, 4], "outputs": 3, "layers": [every_step("gru")]},
    "gru -> lstm": {"input_shape": [6, 4], "outputs": 3, "output_activation": "softmax", "layers": [
        every_step("gru", 4), last("lstm", 6), {"type": "linear", "units": 5, "activation": "relu"}]},
    "lstm -> linear per step": {"input_shape": [6, 4], "outputs": 2, "layers": [
        every_step("lstm", 4), {"type": "linear", "units": 5, "activation": "tanh"}]},
}
NO_FLOAT64 = ("onnxruntime 1.31's CPU provider has float32 kernels only for RNN, LSTM and GRU (float64: no RNN "
              "kernel; LSTM and GRU 'do not support double yet'): these files are compared in float32 and read back "
              "bit for bit in float64 (the round-trip test)")


def net_of(name, dtype, seed=0, input_shape=None):
    raw = {**NETS[name], **({"input_shape": input_shape} if input_shape else {})}
    s = spec.from_dict({"data": {"dataset": "xor"}, "network": raw, "training": {"loss": "mse", "dtype": dtype}})
    return Network(s.network, seed=seed, dtype=dtype)


def sequences(net, n=9, steps=None, seed=1):
    t = steps or net.spec.input_shape[0]
    return np.random.default_rng(seed).normal(size=(n, t, net.spec.input_shape[1])).astype(net.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETS))
def test_onnxruntime_runs_our_export_as_predict_does(tmp_path, name, dtype):
    net = net_of(name, dtype)
    path = net.save(tmp_path / "net.onnx")
    x = sequences(net)
    if dtype == "float64":
        with pytest.raises(ModelFileError, match=r"NOT_IMPLEMENTED .*RNN|LSTM operator does not support double|"
                                                 r"GRU operator does not support double"):
            predict_onnx(path, x)
        pytest.skip(NO_FLOAT64)
    theirs = predict_onnx(path, x)
    ours = net.predict(x)
    assert theirs.dtype == np.float32 and theirs.shape == ours.shape == (len(x), *net.spec.shapes[-1])
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=2e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETS))
def test_export_then_from_onnx_gives_back_the_same_network(tmp_path, name, dtype):
    net = net_of(name, dtype, seed=3)
    back = Network.from_onnx(net.save(tmp_path / "net.onnx"))
    assert back.spec == net.spec and back.dtype == net.dtype  # each layer's own init too, from the metadata
    assert back.parameters().keys() == net.parameters().keys()
    assert all(back.parameters()[k].tobytes() == v.tobytes() for k, v in net.parameters().items())
    x = sequences(net)
    assert back.predict(x).tobytes() == net.predict(x).tobytes()


def attributes(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_the_exported_file_writes_onnx_gate_orders_and_batch_first_interfaces(tmp_path):
    net = net_of("gru -> lstm", "float32")
    model = onnx.load(str(net.save(tmp_path / "net.onnx")))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and model.opset_import[0].version == 21
    graph = model.graph
    assert [n.op_type for n in graph.node] == ["Transpose", "GRU", "Squeeze", "Transpose", "Transpose", "LSTM",
                                               "Squeeze", "Gemm", "Relu", "Gemm", "Softmax", "Identity"]
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(graph.input[0]) == ["batch", 6, 4] and dims(graph.output[0]) == ["batch", 3]
    nodes = {n.name: n for n in graph.node}
    gru, lstm = nodes["layers.0"], nodes["layers.1"]
    assert attributes(gru) == {"hidden_size": 4, "linear_before_reset": 1} and attributes(lstm) == {"hidden_size": 6}
    assert list(gru.output) == ["layers.0.y"] and list(lstm.output) == ["", "layers.1.y_h"]  # every step; the last
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    p = net.parameters()
    u = 6  # LSTM: ONNX's i, o, f, c are torch's blocks i, o, f, g = 0, 3, 1, 2
    w, b = p["layers.1.weight_ih_l0"], np.concatenate([p["layers.1.bias_ih_l0"], p["layers.1.bias_hh_l0"]])
    assert inits["layers.1.W"].shape == (1, 4 * u, 4) and inits["layers.1.R"].shape == (1, 4 * u, u)
    np.testing.assert_array_equal(inits["layers.1.W"][0], w[np.r_[0:u, 3 * u:4 * u, u:2 * u, 2 * u:3 * u]])
    np.testing.assert_array_equal(inits["layers.1.B"][0, 4 * u:], b[4 * u:][np.r_[0:u, 3 * u:4 * u, u:3 * u]])
    u = 4  # GRU: ONNX's z, r, h are torch's z, r, n = 1, 0, 2
    torch_zrn = np.r_[u:2 * u, 0:u, 2 * u:3 * u]
    np.testing.assert_array_equal(inits["layers.0.R"][0], p["layers.0.weight_hh_l0"][torch_zrn])
    rnn = onnx.load(str(net_of("rnn relu", "float32").save(tmp_path / "rnn.onnx"))).graph.node[1]
    assert attributes(rnn) == {"hidden_size": 5, "activations": [b"Relu"]}


@pytest.mark.parametrize("name", ["lstm -> linear per step", "gru -> lstm", "rnn tanh, every step"])
def test_an_open_time_length_runs_on_any_length(tmp_path, name):
    net = net_of(name, "float32", input_shape=[0, 4])
    path = net.save(tmp_path / "open.onnx")
    graph = onnx.load(str(path)).graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == ["batch", "time", 4]
    out = [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    per_step = len(net.spec.shapes[-1]) == 2
    assert out == (["batch", "time", net.spec.outputs] if per_step else ["batch", net.spec.outputs])
    for steps in (5, 11):
        x = sequences(net, steps=steps)
        np.testing.assert_allclose(predict_onnx(path, x), net.predict(x), rtol=0, atol=2e-6)
    back = Network.from_onnx(path)
    assert back.spec == net.spec and back.spec.input_shape == (0, 4)
    x = sequences(net, steps=11)
    assert back.predict(x).tobytes() == net.predict(x).tobytes()
    # flat rows are read as steps of the model's features (MNIST's 784 as 28 rows of 28 for [0, 28])
    flat = x.reshape(len(x), -1)
    assert fit_samples(flat, (None, 4)).shape == x.shape == fit_samples(flat, (0, 4)).shape


# ---------------------------------------------------------------------------- torch.onnx.export's files


def classifier_module():
    """An LSTM reading MNIST row by row, as torch users write it: its last step to a linear layer, softmax."""
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = nn.LSTM(28, 32, batch_first=True), nn.Linear(32, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return nn.functional.softmax(self.fc(out[:, -1]), dim=1)

    return Classifier()


CLASSIFIER = {"input_shape": [28, 28], "outputs": 10, "output_activation": "softmax",
              "layers": [{"type": "lstm", "units": 32}]}


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    """The classifier trained for one short epoch with torch, exported four ways: each exporter with its
    defaults (a fixed batch of 1; dynamo keeps the weights in an external .data file), the legacy one with
    the batch and the time dynamic, dynamo with the batch dynamic."""
    import torch

    folder = tmp_path_factory.mktemp("torch_onnx_lstm")
    data_spec, source = digits()
    if data_spec is None:
        data_spec = spec.DataSpec(dataset="mnist", path=str(write_idx_folder(folder / "idx", np.random.default_rng(0))))
    d = load_data(data_spec, seed=0, dtype="float32")
    torch.manual_seed(0)
    model = classifier_module()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.from_numpy(d.x_train.reshape(-1, 28, 28)), torch.from_numpy(d.y_train)
    for idx in torch.randperm(len(x)).split(50):
        opt.zero_grad()
        torch.nn.functional.nll_loss(torch.log(model(x[idx]) + 1e-12), y[idx]).backward()
        opt.step()
    model.eval()
    one, two = torch.zeros(1, 28, 28), torch.zeros(2, 28, 28)
    files = {"legacy": folder / "legacy.onnx", "dynamo": folder / "dynamo.onnx",
             "legacy, dynamic batch and time": folder / "legacy_dyn.onnx", "dynamo, dynamic batch": folder / "dyn.onnx"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (one,), str(files["legacy"]), dynamo=False)
        torch.onnx.export(model, (one,), str(files["dynamo"]))
        torch.onnx.export(model, (two,), str(files["legacy, dynamic batch and time"]), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n", 1: "t"}})
        torch.onnx.export(model, (two,), str(files["dynamo, dynamic batch"]), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("n")},))
    with torch.no_grad():
        expected = model(torch.from_numpy(d.x_test.reshape(-1, 28, 28))).numpy()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    return files, d, expected, state, data_spec, source


@pytest.mark.parametrize("exporter", ["legacy", "dynamo", "legacy, dynamic batch and time", "dynamo, dynamic batch"])
def test_an_lstm_classifier_from_torch_onnx_export_predicts_what_torch_does(torch_files, exporter):
    files, d, expected, state, _, _ = torch_files
    path = files[exporter]
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    assert ops.count("LSTM") == 1 and "Gather" in ops  # out[:, -1]: a Gather of the last step
    if exporter == "dynamo":
        assert path.with_name("dynamo.onnx.data").exists()  # torch 2.13's default: weights outside the model
    net = Network.from_onnx(path)
    open_time = "time" in exporter
    assert net.spec == spec.network_from_dict({**CLASSIFIER, "input_shape": [0 if open_time else 28, 28]})
    ours = {"lstm": 0, "fc": 1}
    for key, value in state.items():
        module, name = key.split(".")
        assert net.parameters()[f"layers.{ours[module]}.{name}"].tobytes() == value.tobytes(), key
    pred = net.predict(d.x_test.reshape(-1, 28, 28))
    assert np.max(np.abs(pred - expected)) <= 1e-5
    assert (pred.argmax(1) == expected.argmax(1)).mean() >= 0.999  # a near-tie may flip in float32
    n = 300  # onnxruntime on the file too, from flat rows (a fixed batch of 1 runs sample by sample)
    assert np.max(np.abs(predict_onnx(path, d.x_test[:n]) - expected[:n])) <= 1e-5


def test_harness_evaluate_reproduces_torchs_accuracy_from_a_legacy_export(torch_files, tmp_path):
    check_evaluate_of_legacy_export(torch_files, tmp_path, 0.6,
                                    "one short epoch of the LSTM on 6,000 digits reaches about 75%")


def test_torchs_two_layer_lstm_reads_as_two_stacked_layers(tmp_path):
    """nn.LSTM(num_layers=2) with the output's last step: the legacy exporter writes two LSTM nodes in a chain."""
    import torch
    from torch import nn

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = nn.LSTM(5, 4, num_layers=2, batch_first=True), nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    model = Two().eval()
    x = torch.randn(6, 7, 5)
    path = tmp_path / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n", 1: "t"}})
    net = Network.from_onnx(path)
    assert net.spec.describe() == "[0, 5] -> lstm 4 seq -> lstm 4 -> 3"
    for layer in (0, 1):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            theirs = model.state_dict()[f"lstm.{name}_l{layer}"].numpy()
            assert net.parameters()[f"layers.{layer}.{name}_l0"].tobytes() == theirs.tobytes()
    with torch.no_grad():
        np.testing.assert_allclose(net.predict(x.numpy()), model(x).numpy(), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- hand-written graphs


T, F, U = 4, 3, 2
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def graph_file(tmp_path, op="LSTM", attrs=None, extra=None, outputs=("", "h"), tail=None, transpose=True,
               weights=None, name="m"):
    """x [n, T, F] -> Transpose -> `op` -> Squeeze of Y_h -> Gemm -> "out" (or `tail`, nodes ending in "out");
    `extra` puts {input index: (name, value)} on the recurrent node."""
    rng = np.random.default_rng(0)
    g = GATES[op]
    inits = {"W": rng.normal(size=(1, g * U, F)), "R": rng.normal(size=(1, g * U, U)),
             "B": rng.normal(size=(1, 2 * g * U)), "fc_w": rng.normal(size=(2, U)), "fc_b": rng.normal(size=2),
             "ax0": np.array([0]), "ax1": np.array([1]), **(weights or {})}
    inputs = ["xt" if transpose else "x", "W", "R", "B"]
    for i, (key, value) in sorted((extra or {}).items()):
        inputs += [""] * (i + 1 - len(inputs))
        inputs[i] = key
        inits[key] = value
    nodes = ([helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])] if transpose else []) + [
        helper.make_node(op, inputs, list(outputs), name="rec", hidden_size=U, **(attrs or {}))]
    nodes += tail or [helper.make_node("Squeeze", ["h", "ax0"], ["last"]),
                      helper.make_node("Gemm", ["last", "fc_w", "fc_b"], ["out"], transB=1)]
    tensors = [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f" else np.int64), k)
               for k, v in inits.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", T, F])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], tensors)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), str(path))
    return path


def every_step_tail(*nodes):
    """Y -> Squeeze of the direction -> batch first -> `nodes` (from "seq", ending in "out")."""
    return [helper.make_node("Squeeze", ["y", "ax1"], ["tnu"]),
            helper.make_node("Transpose", ["tnu"], ["seq"], perm=[1, 0, 2]), *nodes]


def test_what_torch_does_not_write_but_means_the_same_is_read(tmp_path):
    """A batch-first node (layout = 1, which onnxruntime does not run), zero peepholes and initial states, no B,
    h_n[-1] as a Gather of the direction axis: each reads as the plain file does."""
    x = np.random.default_rng(1).normal(size=(5, T, F)).astype(np.float32)
    plain = Network.from_onnx(graph_file(tmp_path, name="plain"))
    np.testing.assert_allclose(plain.predict(x), predict_onnx(graph_file(tmp_path, name="plain"), x), atol=1e-6)
    zeros = {5: ("h0", np.zeros((1, 1, U))), 6: ("c0", np.zeros((1, 1, U))), 7: ("p", np.zeros((1, 3 * U)))}
    gather = [helper.make_node("Gather", ["h", "minus_one"], ["last"], axis=0),
              helper.make_node("Gemm", ["last", "fc_w", "fc_b"], ["out"], transB=1)]
    for case, path in {
        "layout 1": graph_file(tmp_path, attrs={"layout": 1}, transpose=False, name="layout1", tail=[  # Y_h [N, 1, U]
            helper.make_node("Squeeze", ["h", "ax1"], ["last"]),
            helper.make_node("Gemm", ["last", "fc_w", "fc_b"], ["out"], transB=1)]),
        "zero states and peepholes": graph_file(tmp_path, extra=zeros, name="zeros"),
        "h_n[-1]": graph_file(tmp_path, tail=gather, weights={"minus_one": np.array(-1)}, name="gather"),
    }.items():
        net = Network.from_onnx(path)
        assert net.spec == plain.spec, case
        assert net.predict(x).tobytes() == plain.predict(x).tobytes(), case
    no_b = Network.from_onnx(graph_file(tmp_path, weights={"B": np.zeros((1, 8 * U))}, name="zero_b"))
    inputs_without_b = graph_file(tmp_path, name="no_b")
    model = onnx.load(str(inputs_without_b))
    model.graph.node[1].input[3] = ""
    onnx.save(model, str(inputs_without_b))
    assert Network.from_onnx(inputs_without_b).predict(x).tobytes() == no_b.predict(x).tobytes()


REFUSED = [  # (case, graph_file keywords, pattern)
    ("bidirectional", {"attrs": {"direction": "bidirectional"}}, r"direction = bidirectional; only forward"),
    ("reverse", {"attrs": {"direction": "reverse"}}, r"direction = reverse"),
    ("clip", {"attrs": {"clip": 3.0}}, r"clip = 3.0 \(the cell inputs clipped\)"),
    ("input_forget", {"attrs": {"input_forget": 1}}, r"input_forget = 1"),
    ("custom activations", {"attrs": {"activations": ["Sigmoid", "Tanh", "Relu"]}},
     r"activations \['sigmoid', 'tanh', 'relu'\]; only torch's \['sigmoid', 'tanh', 'tanh'\]"),
    ("an RNN of sigmoids", {"op": "RNN", "attrs": {"activations": ["Sigmoid"]}},
     r"activations \['sigmoid'\]; an RNN layer takes tanh or relu"),
    ("GRU resetting before the product", {"op": "GRU"}, r"linear_before_reset = 0 applies the reset gate before"),
    ("sequence_lens", {"extra": {4: ("lens", np.array([T, T]))}}, r"a sequence_lens input \(lens: sequences of"),
    ("an initial state", {"extra": {5: ("h0", np.ones((1, 1, U)))}}, r"its initial_h \(h0\) is not zero"),
    ("an initial cell", {"extra": {6: ("c0", np.full((1, 1, U), 0.5))}}, r"its initial_c \(c0\) is not zero"),
    ("peepholes", {"extra": {7: ("p", np.ones((1, 3 * U)))}},
     r"its peephole weights P \(p\) is not zero.*no peepholes"),
    ("the cell state used", {"outputs": ("", "", "c"), "tail": [
        helper.make_node("Squeeze", ["c", "ax0"], ["last"]),
        helper.make_node("Gemm", ["last", "fc_w", "fc_b"], ["out"], transB=1)]}, r"its cell state Y_c is used"),
    ("Y and Y_h both used", {"outputs": ("y", "h"), "tail": [
        helper.make_node("Concat", ["y", "h"], ["both"], axis=0),
        helper.make_node("Squeeze", ["both", "ax1"], ["out"])]},
     r"Y \(every step\) and Y_h \(the last step\) are both"),
    ("no Transpose before it", {"transpose": False},
     r"with layout = 0 it reads X as \[time, batch, features\], but its input is \[batch, time, features\] \(a "
     r"Transpose \[1, 0, 2\] before it is missing\)"),
    ("a step of the middle", {"outputs": ("y",), "weights": {"two": np.array(2)}, "tail": every_step_tail(
        helper.make_node("Gather", ["seq", "two"], ["mid"], axis=1),
        helper.make_node("Gemm", ["mid", "fc_w", "fc_b"], ["out"], transB=1))},
     r"a Gather of index 2 along the time axis .* only the last time step"),
    ("the time axis squeezed", {"outputs": ("y",), "tail": [helper.make_node("Squeeze", ["y", "ax0"], ["out"])]},
     r"it squeezes axes \[0\] of \[time, direction, batch, features\]; only the direction axis"),
    ("a MatMul on the time-major tensor", {"outputs": ("y",), "weights": {"fc_wt": np.ones((U, 2))}, "tail": [
        helper.make_node("Squeeze", ["y", "ax1"], ["tnu"]), helper.make_node("MatMul", ["tnu", "fc_wt"], ["out"])]},
     r"reads a tensor of axes \[time, batch, features\], not batch first; .* nn.RNN unrolled step by step"),
]


@pytest.mark.parametrize("case,kwargs,pattern", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_is_not_supported_is_refused_naming_the_node(tmp_path, case, kwargs, pattern):
    path = graph_file(tmp_path, **kwargs)
    with pytest.raises(ModelFileError, match=pattern) as e:
        Network.from_onnx(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    if "Transpose" not in case and "axis" not in case and "MatMul" not in case and "middle" not in case:
        assert "node 'rec' (op " in str(e.value)


def test_the_torch_twin_declares_an_open_time_in_its_outputs(tmp_path):
    """binary_addition's torch export: the output per step has the input's symbolic time, not the 3 steps
    it was traced on (onnxruntime warned 'Expected shape from model of {-1,3,1}' on every other length)."""
    from harness.engines import engine_class
    from harness.init import initial_parameters

    s = spec.load("experiments/binary_addition.toml")
    engine = engine_class("torch")(s.network, s.training, initial_parameters(s.network, seed=0, dtype="float32"))
    path = engine.export_onnx(tmp_path / "torch.onnx")
    graph = onnx.load(str(path)).graph
    time = graph.input[0].type.tensor_type.shape.dim[1].dim_param
    out = graph.output[0].type.tensor_type.shape.dim
    assert time and out[1].dim_param == time and not out[1].HasField("dim_value")
    traced = [v.name for v in graph.value_info if 3 in [d.dim_value for d in v.type.tensor_type.shape.dim]]
    assert not traced, f"shape hints keep the traced length (onnxruntime infers the output's shape from them): {traced}"
    x = np.random.default_rng(0).integers(0, 2, (5, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(predict_onnx(path, x), engine.predict(x), rtol=0, atol=1e-6)
