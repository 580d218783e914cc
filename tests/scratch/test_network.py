import numpy as np
import pytest

from harness import spec
from harness.errors import ModelFileError
from harness.scratch import Network, losses
from tests.gradcheck import numeric_grad, relative_error

HIDDEN_ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus"]
OUTPUT_LOSS = [("identity", "mse"), ("tanh", "mse"), ("softmax", "mse"), ("sigmoid", "bce"),
               ("softmax", "cross_entropy")]


def network_spec(inputs, hidden, outputs, output_activation, init="xavier_uniform"):
    return spec.network_from_dict({
        "inputs": inputs, "outputs": outputs, "output_activation": output_activation, "init": init,
        "hidden": [{"units": u, "activation": a} for u, a in hidden]})


def targets(rng, loss, n, outputs):
    if loss == "cross_entropy":
        return rng.integers(0, outputs, n)
    if loss == "bce":
        return rng.integers(0, 2, (n, outputs)).astype(float)
    return rng.normal(size=(n, outputs))


CASES = [(depth, out, loss) for depth in range(4) for out, loss in OUTPUT_LOSS]


@pytest.mark.parametrize("depth,output_activation,loss_name", CASES)
def test_parameter_gradients_match_finite_differences(depth, output_activation, loss_name):
    rng = np.random.default_rng(depth * 10 + len(loss_name))
    hidden = [(int(rng.integers(2, 6)), HIDDEN_ACTS[int(rng.integers(len(HIDDEN_ACTS)))]) for _ in range(depth)]
    outputs = 3
    net = Network(network_spec(4, hidden, outputs, output_activation), seed=depth, dtype="float64")
    x = rng.normal(size=(7, 4))
    y = targets(rng, loss_name, 7, outputs)
    loss = losses.get(loss_name)
    y = net._targets(y, loss)

    net.forward(x)
    value = net.backward(y, loss)
    assert value == pytest.approx(loss.value(net.predict(x), y), rel=1e-12)
    grads = net.gradients()
    for name, p in net._params.items():
        numeric = numeric_grad(lambda: loss.value(net.predict(x), y), p)
        assert relative_error(grads[name], numeric) <= 1e-6, f"{name} of {hidden} -> {output_activation}/{loss_name}"


def test_parameters_have_torch_state_dict_names_and_layouts():
    net = Network(network_spec(3, [(5, "relu"), (4, "tanh")], 2, "softmax"), seed=1)
    shapes = {k: v.shape for k, v in net.parameters().items()}
    assert shapes == {"layers.0.weight": (5, 3), "layers.0.bias": (5,), "layers.1.weight": (4, 5),
                      "layers.1.bias": (4,), "layers.2.weight": (2, 4), "layers.2.bias": (2,)}
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in net.parameters().values())


def test_initializers_draw_from_their_laws():
    big = network_spec(400, [], 300, "identity", init="xavier_uniform")
    w = Network(big, seed=0, dtype="float64").parameters()["layers.0.weight"]
    bound = np.sqrt(6 / 700)
    assert w.min() >= -bound and w.max() <= bound
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    he = Network(network_spec(400, [], 300, "identity", init="he_normal"), seed=0, dtype="float64")
    assert he.parameters()["layers.0.weight"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    u = Network(network_spec(2, [], 1, "sigmoid", init="uniform01"), seed=0, dtype="float64").parameters()
    assert all(0 <= v.min() and v.max() < 1 for v in u.values())
    assert u["layers.0.bias"][0] != 0


def test_float32_and_float64_start_from_the_same_draw():
    s = network_spec(3, [(4, "relu")], 2, "identity")
    p32 = Network(s, seed=5, dtype="float32").parameters()
    p64 = Network(s, seed=5, dtype="float64").parameters()
    for k in p32:
        np.testing.assert_array_equal(p32[k], p64[k].astype(np.float32))


def xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    return x, np.array([[0.0], [1.0], [1.0], [0.0]])


def test_fit_learns_xor_and_evaluate_reports_it():
    x, y = xor()
    net = Network(network_spec(2, [(4, "tanh")], 1, "sigmoid"), seed=0, dtype="float64")
    history = net.fit(x, y, loss="bce", optimizer="sgd", learning_rate=0.5, epochs=1500, batch_size=4)
    assert history[-1] < 0.05 < history[0]
    result = net.evaluate(x, y, "accuracy", loss="bce")
    assert result["accuracy"] == 1.0
    assert result["loss"] == pytest.approx(history[-1], rel=0.05)


def test_training_is_bitwise_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
    s = network_spec(5, [(8, "relu"), (6, "gelu")], 3, "softmax")
    runs = []
    for _ in range(2):
        net = Network(s, seed=3, dtype="float32")
        losses_ = net.fit(x, y, loss="cross_entropy", optimizer="adam", learning_rate=0.01,
                          epochs=3, batch_size=16, seed=9)
        runs.append((losses_, net.parameters()))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        assert runs[0][1][k].tobytes() == runs[1][1][k].tobytes()


def test_float32_training_stays_float32():
    rng = np.random.default_rng(0)
    net = Network(network_spec(3, [(4, "elu")], 2, "softmax"), seed=0, dtype="float32")
    net.fit(rng.normal(size=(20, 3)), rng.integers(0, 2, 20), loss="cross_entropy", optimizer="sgd",
            learning_rate=0.1, momentum=0.9, epochs=2, batch_size=8)
    assert all(v.dtype == np.float32 for v in net.parameters().values())
    assert net.predict(np.zeros((1, 3))).dtype == np.float32


def test_save_and_load_round_trip_is_bitwise(tmp_path):
    net = Network(network_spec(3, [(4, "leaky_relu")], 2, "softmax"), seed=2, dtype="float64")
    net.fit(np.eye(3), np.array([0, 1, 1]), loss="cross_entropy", learning_rate=0.3, epochs=5, batch_size=2)
    path = net.save(tmp_path / "net.npz")
    back = Network.load(path)
    assert back.spec == net.spec and back.dtype == net.dtype
    for k, v in net.parameters().items():
        assert back.parameters()[k].tobytes() == v.tobytes()


def test_load_refuses_pickles_and_damaged_files(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="pickled Python objects"):
        Network.load(pickled)
    net = Network(network_spec(2, [], 1, "sigmoid"), seed=0)
    good = net.save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated"):
        Network.load(truncated)
    with pytest.raises(ModelFileError, match="not found"):
        Network.load(tmp_path / "absent.npz")


def test_load_refuses_parameters_that_do_not_fit_the_spec(tmp_path):
    net = Network(network_spec(2, [(3, "relu")], 1, "sigmoid"), seed=0)
    path = net.save(tmp_path / "net.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["layers.0.weight"] = np.zeros((4, 2), dtype=np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match=r"layers.0.weight has shape \(4, 2\).*needs \(3, 2\)"):
        Network.load(tmp_path / "bad.npz")


def test_wrong_input_width_is_refused():
    net = Network(network_spec(3, [], 1, "sigmoid"), seed=0)
    with pytest.raises(ValueError, match=r"takes 3 inputs per sample, the data has shape \(2, 4\)"):
        net.predict(np.zeros((2, 4)))
