import numpy as np
import onnx
import pytest

from harness import spec
from harness.engines import engine_class
from harness.errors import ModelFileError
from harness.onnx.runtime import predict_onnx
from harness.run.evaluate import evaluate
from harness.run.prepare import prepare
from harness.scratch import Network
from tests.cli.test_cli import ROOT, harness

ALL_ACTIVATIONS = ('[{units=12, activation="gelu"}, {units=10, activation={name="leaky_relu", slope=0.2}},'
                   ' {units=9, activation={name="elu", alpha=0.7}}, {units=8, activation="softplus"},'
                   ' {units=8, activation="sigmoid"}, {units=8, activation="tanh"}, {units=8, activation="relu"},'
                   ' {units=8, activation="identity"}]')


def trained(name, overrides=(), engines=("scratch", "torch"), experiment="mnist"):
    s = spec.load(ROOT / "experiments" / f"{experiment}.toml", list(overrides))
    inputs = prepare(s, 0)
    out = {}
    for engine in engines:
        e = engine_class(engine)(s.network, s.training, inputs.initial)
        e.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(0))
        out[engine] = e
    return s, inputs, out


@pytest.fixture(scope="module")
def mnist_models(mnist_ready, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    s, inputs, engines = trained("mnist", ["data.train_size=3000"])
    files = {name: e.export_onnx(folder / f"{name}.onnx", {"engine": name, "experiment": s.to_json()})
             for name, e in engines.items()}
    return s, inputs, engines, files


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_onnxruntime_reproduces_each_engine_on_the_mnist_test_set(mnist_models, engine):
    s, inputs, engines, files = mnist_models
    ours = engines[engine].predict(inputs.x_test)
    theirs = predict_onnx(files[engine], inputs.x_test)
    assert theirs.shape == (10000, 10) and theirs.dtype == np.float32
    assert np.max(np.abs(theirs - ours)) <= 1e-5
    assert (theirs.argmax(axis=1) == ours.argmax(axis=1)).all()


@pytest.mark.slow
def test_scratch_onnx_scratch_is_bitwise(mnist_models):
    _, _, engines, files = mnist_models
    back = Network.load(files["scratch"])
    for k, v in engines["scratch"].parameters().items():
        assert back.parameters()[k].tobytes() == v.tobytes()


@pytest.mark.slow
def test_torch_onnx_scratch_predicts_what_torch_predicts(mnist_models):
    _, inputs, engines, files = mnist_models
    back = Network.from_onnx(files["torch"])
    assert back.spec.sizes == [784, 128, 64, 10]
    assert np.max(np.abs(back.predict(inputs.x_test) - engines["torch"].predict(inputs.x_test))) <= 1e-5


@pytest.mark.slow
def test_evaluate_tests_a_file_with_its_saved_experiment(mnist_models):
    s, inputs, engines, files = mnist_models
    for engine, path in files.items():
        result = evaluate(path)
        expected = engines[engine].evaluate(inputs.x_test, inputs.y_test, "accuracy")["accuracy"]
        assert result.dataset == "mnist" and result.samples == 10000 and result.engine == engine
        assert result.value == pytest.approx(expected, abs=2e-4)  # a near-tie may flip between runtimes


def test_the_file_is_opset_21_ir_10_checked_and_carries_the_experiment(tmp_path):
    s, _, engines = trained("xor", experiment="xor")
    for name, e in engines.items():
        path = e.export_onnx(tmp_path / f"{name}.onnx", {"engine": name, "experiment": s.to_json()})
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert model.ir_version == 10 and model.opset_import[0].version == 21
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["engine"] == name and spec.from_dict(__import__("json").loads(meta["experiment"])) == s
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_value == 2  # dynamic batch


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_activation_survives_export_and_import(tmp_path, dtype):
    s, inputs, engines = trained("addition", ["network.hidden=" + ALL_ACTIVATIONS, f"training.dtype={dtype}",
                                              "training.optimizer.learning_rate=0.01"], experiment="addition")
    tol = 1e-9 if dtype == "float64" else 1e-5
    for name, e in engines.items():
        path = e.export_onnx(tmp_path / f"{name}.onnx")
        ours = e.predict(inputs.x_test)
        if dtype == "float32":  # onnxruntime has float64 kernels for only some of these (see the next test)
            assert np.max(np.abs(predict_onnx(path, inputs.x_test) - ours)) <= tol, name
        back = Network.from_onnx(path)
        assert [a.name for a in back.spec.activations] == [a.name for a in s.network.activations]
        assert back.spec.hidden[1].activation.kwargs() == {"slope": 0.2}
        assert back.spec.hidden[2].activation.kwargs() == {"alpha": pytest.approx(0.7)}
        assert np.max(np.abs(back.predict(inputs.x_test) - ours)) <= tol, name


def test_onnxruntime_lacks_float64_leaky_relu_and_says_so(tmp_path):
    net = Network(spec.network_from_dict({"inputs": 2, "outputs": 1, "output_activation": "sigmoid",
                                          "hidden": [{"units": 3, "activation": "leaky_relu"}]}), dtype="float64")
    path = net.save(tmp_path / "leaky64.onnx")
    with pytest.raises(ModelFileError, match=r"onnxruntime cannot load it .*NOT_IMPLEMENTED.*LeakyRelu"):
        predict_onnx(path, np.zeros((1, 2)))
    assert Network.load(path).spec == net.spec  # the file itself is valid ONNX


def test_save_and_load_choose_onnx_by_suffix(tmp_path):
    net = Network(spec.network_from_dict({"inputs": 3, "outputs": 2, "output_activation": "softmax",
                                          "hidden": [{"units": 4, "activation": "relu"}]}), seed=1)
    path = net.save(tmp_path / "net.onnx")
    assert onnx.load(str(path)).graph.node[0].op_type == "Gemm"
    back = Network.load(path)
    assert back.spec == net.spec
    assert all(back.parameters()[k].tobytes() == v.tobytes() for k, v in net.parameters().items())


def test_a_matmul_add_graph_as_other_exporters_write_it(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, b1, w2 = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32), \
        rng.normal(size=(2, 5)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["z"]),
             helper.make_node("Relu", ["z"], ["a"]), helper.make_node("Transpose", ["w2t"], ["w2"]),
             helper.make_node("MatMul", ["a", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
                               numpy_helper.from_array(w2, "w2t")])
    path = tmp_path / "matmul.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), str(path))
    net = Network.from_onnx(path)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x), np.maximum(x @ w1 + b1, 0) @ w2.T, rtol=1e-5)
    np.testing.assert_allclose(net.predict(x), predict_onnx(path, x), rtol=1e-5)


def test_an_unsupported_node_is_named(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), str(path))
    with pytest.raises(ModelFileError, match=r"unsupported node 'conv1' \(op Conv\)"):
        Network.from_onnx(path)


def test_damaged_and_foreign_files_give_one_clear_error(tmp_path):
    net = Network(spec.network_from_dict({"inputs": 2, "outputs": 1, "output_activation": "sigmoid"}), seed=0)
    good = net.save(tmp_path / "good.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.onnx").write_text("this is not a model\n")
    (tmp_path / "empty.onnx").write_bytes(b"")
    for name in ("truncated", "text", "empty"):
        with pytest.raises(ModelFileError, match=rf"{name}.onnx: not (a readable ONNX model|an ONNX model)"):
            Network.from_onnx(tmp_path / f"{name}.onnx")
        with pytest.raises(ModelFileError):
            predict_onnx(tmp_path / f"{name}.onnx", np.zeros((1, 2)))
    with pytest.raises(ModelFileError, match="model file not found"):
        Network.from_onnx(tmp_path / "absent.onnx")


def test_a_model_whose_input_width_differs_from_the_data(tmp_path):
    net = Network(spec.network_from_dict({"inputs": 2, "outputs": 1, "output_activation": "sigmoid"}), seed=0)
    path = net.save(tmp_path / "two.onnx")
    with pytest.raises(ModelFileError, match="the model takes 2 inputs per sample, the data has 784"):
        predict_onnx(path, np.zeros((3, 784), dtype=np.float32))
    out = harness("evaluate", str(path), "--data", "addition")
    assert out.returncode == 0 and "test rounded_accuracy" in out.stdout
    out = harness("evaluate", str(path))
    assert out.returncode == 2 and "carries no experiment" in out.stderr and "Traceback" not in out.stderr
