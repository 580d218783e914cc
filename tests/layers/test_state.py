"""Non-trained state beside the parameters, proved with a kind of this test's own (simpler
than batchnorm's): `probe` passes its input through and, in training mode only, keeps a running
mean of it in a buffer `running_mean`, as batch normalisation keeps its statistics. It is
registered for each test into the layer table, the scratch layers and the torch modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness import layers as table
from harness.engines import engine_class, epoch_batches
from harness.init import initial_parameters
from harness.layers import Kind, LayerSpec
from harness.reference.layers import LAYER_MODULES
from harness.scratch import Network, losses
from harness.scratch.layers import LAYERS, Layer
from harness.spec import ActivationSpec, NetworkSpec, OptimizerSpec, TrainingSpec
from tests.parity import compare

MOMENTUM = 0.25
START = 0.5  # the running mean's initial value: not zeros, so that a test sees it was taken from the table


class Probe(Kind):
    name = "probe"

    @classmethod
    def out_shape(cls, s, in_shape):
        return in_shape

    @classmethod
    def state_shapes(cls, s, in_shape):
        return {"running_mean": in_shape}

    @classmethod
    def initial_state(cls, s, in_shape):
        return {"running_mean": np.full(in_shape, START)}


class ProbeLayer(Layer):
    kind = "probe"

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if training:
            mean = self.state["running_mean"]
            mean *= 1 - MOMENTUM
            mean += MOMENTUM * x.mean(axis=0)
        return x

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy if need_dx else None


class ProbeModule(nn.Module):
    def __init__(self, s: LayerSpec, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(shape, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - MOMENTUM).add_(MOMENTUM * x.mean(0))
        return x


@pytest.fixture(autouse=True)
def probe(monkeypatch):
    monkeypatch.setitem(table.KINDS, "probe", Probe)
    monkeypatch.setitem(LAYERS, "probe", ProbeLayer)
    monkeypatch.setitem(LAYER_MODULES, "probe", ProbeModule)


NETWORK = NetworkSpec(input_shape=(3,), outputs=2, output_activation=ActivationSpec("softmax"),
                      layers=(table.linear(4, ActivationSpec("tanh")), LayerSpec("probe")))
TRAINING = TrainingSpec(loss="cross_entropy", optimizer=OptimizerSpec("adam", (("learning_rate", 0.05),)),
                        dtype="float64")


def data(n: int = 40):
    rng = np.random.default_rng(4)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, n)


def engines():
    params = initial_parameters(NETWORK, seed=2, dtype="float64")
    return [engine_class(name)(NETWORK, TRAINING, params) for name in ("scratch", "torch")]


def test_initial_parameters_carry_the_state_in_torch_state_dict_order():
    params = initial_parameters(NETWORK, seed=2, dtype="float64")
    _, reference = engines()
    assert list(params) == list(reference.model.state_dict())
    assert params["layers.1.running_mean"].tolist() == [START] * 4


def test_both_engines_state_agrees_after_20_training_steps():
    scratch, reference = engines()
    x, y = data()
    for epoch in range(5):  # 4 batches of 10: 20 steps
        batches = epoch_batches(len(x), 10, 0, epoch)
        compare(f"epoch {epoch} loss", scratch.train_epoch(x, y, batches), reference.train_epoch(x, y, batches), 1e-12)
    ours, theirs = scratch.state(), reference.state()
    assert set(ours) == set(theirs) == {"layers.1.running_mean"}
    compare("running_mean after 20 steps", ours["layers.1.running_mean"], theirs["layers.1.running_mean"], 1e-12)
    assert np.abs(ours["layers.1.running_mean"] - START).min() > 1e-3  # it moved
    for k, v in scratch.parameters().items():
        compare(f"{k} after 20 steps", v, reference.parameters()[k], 1e-12)
    assert set(scratch.parameters()) == set(reference.parameters()) == {f"layers.{i}.{n}" for i in (0, 2)
                                                                        for n in ("weight", "bias")}


def test_the_optimizers_leave_the_state_untouched():
    net = Network(NETWORK, seed=2, dtype="float64")
    x, y = data(8)
    loss = losses.get("cross_entropy")
    net.forward(x)
    net.backward(loss.targets(y, 2, "float64"), loss)
    state, params = net.state(), net.parameters()
    for name in ("sgd", "adam", "adamw"):
        opt = net.make_optimizer(name, learning_rate=0.1)
        assert opt.params["all"].size == sum(v.size for v in params.values())  # the state is not in it
        opt.step({"all": np.ones_like(opt.params["all"])})
    assert all(np.array_equal(v, net.state()[k]) for k, v in state.items())
    assert all(not np.array_equal(v, net.parameters()[k]) for k, v in params.items())


def test_evaluation_mode_does_not_update_the_state():
    x, y = data()
    for engine in engines():
        before = engine.state()
        engine.predict(x)
        engine.evaluate(x, y, "accuracy")
        assert all(np.array_equal(v, engine.state()[k]) for k, v in before.items()), engine.name
        engine.gradients(x, y)  # training mode, as a step computes them: the statistics move
        assert not np.array_equal(before["layers.1.running_mean"], engine.state()["layers.1.running_mean"])


def test_a_checkpoint_carries_the_state(tmp_path):
    net = Network(NETWORK, seed=2, dtype="float64")
    x, y = data()
    net.fit(x, y, loss="cross_entropy", optimizer="sgd", learning_rate=0.1, epochs=2, batch_size=8)
    saved = net.state_dict()
    assert list(saved) == ["layers.0.weight", "layers.0.bias", "layers.1.running_mean", "layers.2.weight",
                           "layers.2.bias"]
    again = Network(NETWORK, saved, dtype="float64")
    assert again.state()["layers.1.running_mean"].tobytes() == net.state()["layers.1.running_mean"].tobytes()
    assert again.predict(x).tobytes() == net.predict(x).tobytes()
    loaded = Network.load(net.save(tmp_path / "probe.npz"))  # the .npz checkpoint keeps it too
    assert loaded.state()["layers.1.running_mean"].tobytes() == net.state()["layers.1.running_mean"].tobytes()
    fresh = Network(NETWORK, net.parameters(), dtype="float64")  # state left out: its initial values
    assert fresh.state()["layers.1.running_mean"].tolist() == [START] * 4
    with pytest.raises(ValueError, match=r"missing none, unexpected \['layers.1.running_var'\]"):
        Network(NETWORK, {**saved, "layers.1.running_var": np.zeros(4)}, dtype="float64")
    with pytest.raises(ValueError, match=r"state layers.1.running_mean has shape \(3,\)"):
        Network(NETWORK, {**saved, "layers.1.running_mean": np.zeros(3)}, dtype="float64")
