"""The dropout kind: its engine-neutral mask (deterministic in (seed, index, step), dropping a
fraction p, keeping the expectation), the scratch layer and the torch module drawing the same
masks step after step, the identity when evaluating, the key's range, and ONNX: nothing written,
a Dropout node read, torch's exports of an nn.Dropout model read as the network without it."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from harness import spec
from harness.errors import ModelFileError, SpecError
from harness.layers import LayerSpec
from harness.layers.dropout import mask
from harness.onnx.runtime import predict_onnx
from harness.reference.layers.dropout import MaskedDropout
from harness.reference.layers.dropout import module as torch_module
from harness.reference.plain import PlainTorch
from harness.scratch import Network
from harness.scratch.layers import Dropout


def layer(p: float) -> LayerSpec:
    return LayerSpec("dropout", (("p", p),))


def both(p: float, shape: tuple[int, ...], seed: int = 0, index: int = 0) -> tuple[Dropout, MaskedDropout]:
    ours = Dropout(layer(p), shape, np.float64)
    theirs = torch_module(layer(p), shape, torch.float64)
    for side in (ours, theirs):
        side.set_seed(seed, index)
    return ours, theirs


def test_the_mask_is_a_function_of_seed_index_and_step_alone():
    first = mask(5, 2, 3, (40, 7), 0.4)
    assert np.array_equal(first, mask(5, 2, 3, (40, 7), 0.4))
    for other in ((6, 2, 3), (5, 3, 3), (5, 2, 4)):
        assert not np.array_equal(first, mask(*other, (40, 7), 0.4)), other
    assert first.dtype == np.float64 and set(np.unique(first)) == {0.0, 1 / 0.6}


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_drops_a_fraction_p_and_keeps_the_expectation(p):
    n = 400_000
    m = mask(1, 0, 0, (n // 100, 10, 10), p)
    sd = np.sqrt(n * p * (1 - p))  # of the binomial count of dropped values
    assert abs(np.count_nonzero(m == 0) - n * p) < 5 * sd
    assert abs(m.mean() - 1) < 5 * sd / (n * (1 - p))  # the kept count, scaled by 1 / (n (1 - p))


def test_p_zero_is_the_identity_in_training_on_both_engines():
    x = np.random.default_rng(0).normal(size=(6, 3, 4, 5))
    ours, theirs = both(0.0, (3, 4, 5))
    assert np.array_equal(ours.forward(x, training=True), x)
    assert np.array_equal(theirs.train()(torch.from_numpy(x)).numpy(), x)


def test_evaluation_is_the_identity_on_both_engines_and_draws_no_mask():
    x = np.random.default_rng(0).normal(size=(6, 5, 4))
    ours, theirs = both(0.5, (5, 4))
    assert np.array_equal(ours.forward(x, training=False), x)
    assert np.array_equal(theirs.eval()(torch.from_numpy(x)).numpy(), x)
    assert ours.step == theirs.step == 0


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4)], ids=["flat", "sequence", "image"])
def test_scratch_and_torch_apply_the_same_masks_over_consecutive_steps(shape):
    ours, theirs = both(0.35, shape, seed=11, index=4)
    rng = np.random.default_rng(2)
    outputs = []
    for step in range(3):
        x, dy = rng.normal(size=(9, *shape)), rng.normal(size=(9, *shape))
        xt = torch.tensor(x, requires_grad=True)
        y_theirs = theirs.train()(xt)
        (dx_theirs,) = torch.autograd.grad(y_theirs, xt, torch.from_numpy(dy))
        y_ours = ours.forward(x, training=True)
        np.testing.assert_allclose(y_ours, y_theirs.detach().numpy(), rtol=0, atol=1e-12, err_msg=f"step {step}")
        np.testing.assert_allclose(ours.backward(dy), dx_theirs.numpy(), rtol=0, atol=1e-12, err_msg=f"step {step}")
        assert np.array_equal(y_ours, x * mask(11, 4, step, x.shape, 0.35))
        outputs.append(y_ours == 0)
    assert ours.step == theirs.step == 3
    assert not np.array_equal(outputs[0], outputs[1])  # a new mask each step


def test_set_seed_starts_the_masks_again():
    x = np.ones((4, 6))
    ours, _ = both(0.5, (6,), seed=3, index=1)
    first = ours.forward(x).copy()
    ours.forward(x)
    ours.set_seed(3, 1)
    assert np.array_equal(ours.forward(x), first)


def test_float32_applies_the_mask_in_float32():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    ours = Dropout(layer(0.3), (4,), np.float32)
    theirs = torch_module(layer(0.3), (4,), torch.float32).train()
    y = ours.forward(x)
    assert y.dtype == np.float32
    assert np.array_equal(y, theirs(torch.from_numpy(x)).numpy())


def experiment(p, shape=(4,)):
    return {"data": {"dataset": "xor"}, "training": {"loss": "mse"},
            "network": {"input_shape": list(shape), "layers": [{"type": "dropout", "p": p}], "outputs": 2}}


@pytest.mark.parametrize("p", [1, 1.0, -0.1, 1.5])
def test_p_outside_zero_to_one_is_refused_in_one_line(p):
    with pytest.raises(SpecError) as refused:
        spec.from_dict(experiment(p))
    assert str(refused.value) == f"spec: network.layers.0.p = {float(p)!r}: must be a number at least 0 and below 1"


def test_p_defaults_to_torchs_and_takes_zero():
    s = spec.from_dict(experiment(0))
    assert s.network.layers[0].get("p") == 0.0
    raw = experiment(0)
    del raw["network"]["layers"][0]["p"]
    assert spec.from_dict(raw).network.layers[0].get("p") == 0.5
    assert spec.from_dict(experiment(0.25, (3, 5))).network.shapes == [(3, 5), (3, 5), (3, 2)]


def test_the_plain_pytorch_peer_uses_nn_dropout():
    s = spec.from_dict(experiment(0.3))
    net = Network(s.network, seed=0, dtype="float32")
    plain = PlainTorch(s.network, s.training, net.parameters())
    kinds = [type(m) for m in plain.model]
    assert torch.nn.Dropout in kinds and MaskedDropout not in kinds


# -- ONNX


def test_export_writes_no_node_and_reads_back_as_the_network_without_it(tmp_path):
    s = spec.network_from_dict({"input_shape": [4], "outputs": 2, "layers": [
        {"type": "linear", "units": 5, "activation": "relu"}, {"type": "dropout", "p": 0.2}]})
    net = Network(s, seed=0, dtype="float64")
    path = net.save(tmp_path / "m.onnx")
    assert [n.op_type for n in onnx.load(str(path)).graph.node] == ["Gemm", "Relu", "Gemm", "Identity"]
    back = Network.from_onnx(path)
    assert [layer.type for layer in back.spec.layers] == ["linear"]
    x = np.random.default_rng(0).normal(size=(8, 4))
    assert np.array_equal(back.predict(x), net.predict(x))


def test_a_recurrent_layers_own_init_survives_a_dropout_before_it_through_onnx(tmp_path):
    s = spec.network_from_dict({"input_shape": [5, 2], "outputs": 2, "layers": [
        {"type": "dropout"}, {"type": "gru", "units": 3, "init": "xavier_uniform"}]})
    back = Network.from_onnx(Network(s, seed=0, dtype="float64").save(tmp_path / "m.onnx"))
    assert back.spec.layers == s.layers[1:]


def dropout_file(path, inputs: list[str], consts: dict[str, np.ndarray], opset: int = 13, **attrs) -> None:
    """Gemm, Relu, a Dropout node on `inputs` (its data "r", then the constants `consts`), Gemm."""
    inits = [numpy_helper.from_array(np.eye(3, 4, dtype=np.float32), "w1"),
             numpy_helper.from_array(np.ones((2, 3), np.float32), "w2"),
             numpy_helper.from_array(np.zeros(3, np.float32), "b1"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b2"),
             *(numpy_helper.from_array(v, k) for k, v in consts.items())]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Dropout", ["r", *inputs], ["d"], name="drop", **attrs),
             helper.make_node("Gemm", ["d", "w2", "b2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), str(path))


@pytest.mark.parametrize(("inputs", "consts", "opset", "attrs", "p"), [
    ([], {}, 13, {}, 0.5),
    (["ratio"], {"ratio": np.array(0.3, np.float32)}, 13, {}, 0.3),
    (["ratio", "mode"], {"ratio": np.array(0.1), "mode": np.array(False)}, 13, {}, 0.1),
    ([], {}, 10, {"ratio": 0.2}, 0.2),
], ids=["default", "ratio", "ratio and training_mode false", "opset 10 attribute"])
def test_a_dropout_node_in_inference_mode_reads_as_a_dropout_layer_of_its_ratio(tmp_path, inputs, consts, opset,
                                                                                  attrs, p):
    dropout_file(tmp_path / "m.onnx", inputs, consts, opset, **attrs)
    net = Network.from_onnx(tmp_path / "m.onnx")
    assert [(layer.type, dict(layer.settings)) for layer in net.spec.layers] == [
        ("linear", {"units": 3}), ("dropout", {"p": p})]
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    assert np.max(np.abs(predict_onnx(tmp_path / "m.onnx", x) - net.predict(x))) <= 1e-6


@pytest.mark.parametrize(("consts", "line"), [
    ({"ratio": np.array(0.5, np.float32), "mode": np.array(True)}, "training_mode = true"),
    ({"ratio": np.array(1.0, np.float32), "mode": np.array(False)}, "its ratio 1 is outside"),
])
def test_a_dropout_node_that_is_not_an_inference_dropout_is_refused_naming_it(tmp_path, consts, line):
    dropout_file(tmp_path / "m.onnx", list(consts), consts)
    with pytest.raises(ModelFileError, match=rf"node 'drop' \(op Dropout\): {line}"):
        Network.from_onnx(tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 3)).eval()
    folder = tmp_path_factory.mktemp("torch_onnx_dropout")
    files = {"legacy": folder / "legacy.onnx", "dynamo": folder / "dynamo.onnx"}
    two = torch.zeros(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (two,), str(files["legacy"]), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "n"}})
        torch.onnx.export(model, (two,), str(files["dynamo"]), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("n")},))
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    return files, x, expected


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_torchs_export_of_an_mlp_with_nn_dropout_reads_as_the_mlp_without_it(torch_files, exporter):
    files, x, expected = torch_files
    assert "Dropout" not in {n.op_type for n in onnx.load(str(files[exporter])).graph.node}
    net = Network.from_onnx(files[exporter])
    assert net.spec.describe() == "4 -> 6 relu -> 3"
    assert np.max(np.abs(net.predict(x) - expected)) <= 1e-5
