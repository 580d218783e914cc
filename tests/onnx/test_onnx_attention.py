"""Attention in ONNX: our export as one local-function node per layer (nn_harness.SelfAttention or
CausalSelfAttention), run by onnxruntime on any time length and read back; a function that is not
ours, or none, and torch's own export of attention refused in one line naming the node."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from harness import spec
from harness.engines import engine_class
from harness.errors import ModelFileError
from harness.init import initial_parameters
from harness.scratch import Network
from tests.parity import compare

LAYERS = [{"type": "linear", "units": 8, "activation": "tanh"}, {"type": "layernorm"},
          {"type": "attention", "heads": 2, "causal": True}, {"type": "attention", "heads": 4},
          {"type": "attention", "heads": 2, "causal": True}]


def network(input_shape: list[int], dtype: str = "float64") -> spec.ExperimentSpec:
    return spec.from_dict({"data": {"dataset": "xor"},
                           "network": {"input_shape": input_shape, "layers": LAYERS, "outputs": 3},
                           "training": {"loss": "mse", "dtype": dtype}})


def saved(tmp_path) -> tuple[Network, onnx.ModelProto, str]:
    net = Network(network([0, 3]).network, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    net = Network(net.spec, {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in net.parameters().items()},
                  dtype="float64")
    path = str(net.save(tmp_path / "attention.onnx"))
    return net, onnx.load(path), path


def test_each_attention_layer_is_one_node_of_a_function_the_model_carries_once(tmp_path):
    _, model, _ = saved(tmp_path)
    calls = [(n.domain, n.op_type) for n in model.graph.node if n.domain]
    assert calls == [("nn_harness", "CausalSelfAttention"), ("nn_harness", "SelfAttention"),
                     ("nn_harness", "CausalSelfAttention")]
    assert sorted(f.name for f in model.functions) == ["CausalSelfAttention", "SelfAttention"]
    assert {(o.domain, o.version) for o in model.opset_import} == {("", 21), ("nn_harness", 1)}
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("steps", [1, 4, 9])
def test_onnxruntime_runs_it_on_any_time_length_as_predict_does(tmp_path, steps):
    net, _, path = saved(tmp_path)
    x = np.random.default_rng(steps).normal(size=(5, steps, 3))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    compare(f"onnxruntime on {steps} steps", session.run(None, {"input": x})[0], net.predict(x), 1e-12)
    back = Network.from_onnx(path)
    assert back.spec.describe() == net.spec.describe()
    compare("from_onnx predict", back.predict(x), net.predict(x), 0)


def without_the_function(model: onnx.ModelProto) -> None:
    del model.functions[0]


def with_softmax_over_another_axis(model: onnx.ModelProto) -> None:
    for f in model.functions:
        for node in f.node:
            if node.op_type == "Softmax":
                node.attribute[0].i = 1


@pytest.mark.parametrize(("damage", "why"), [
    (without_the_function, "the model defines no function nn_harness.CausalSelfAttention"),
    (with_softmax_over_another_axis, "its function nn_harness.CausalSelfAttention is not the one nn-harness writes"),
])
def test_a_function_that_is_not_ours_is_refused_naming_the_node(tmp_path, damage, why):
    _, model, _ = saved(tmp_path)
    damage(model)
    path = tmp_path / "damaged.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelFileError) as e:
        Network.from_onnx(path)
    assert str(e.value) == f"{path}: node 'layers.2' (op CausalSelfAttention): {why}"


def test_torchs_own_export_of_multihead_attention_is_refused_in_one_line(tmp_path):
    s = network([5, 3], "float32")
    path = engine_class("torch")(s.network, s.training, initial_parameters(s.network)).export_onnx(tmp_path / "t.onnx")
    with pytest.raises(ModelFileError) as e:
        Network.from_onnx(path)
    message = str(e.value)
    assert "\n" not in message
    assert "(op MatMul) reads a tensor of axes [time, batch, features]" in message
    assert "nn.MultiheadAttention" in message
