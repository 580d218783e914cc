"""Graphs on both engines: random networks with skips and merges over linear, convolutional, pooling,
normalisation and dropout layers (both engines drawing the same masks), scratch against the torch
twin in float64 (forward and every gradient to 1e-9, 200 training steps to 1e-8), and the mistakes
a graph can hold, each refused in one line at load."""

from __future__ import annotations

import numpy as np
import pytest

from harness import spec
from harness.errors import SpecError
from harness.scratch import losses
from tests.parity import check_gradients, check_trajectory

ACTIVATIONS = ("identity", "tanh", "relu")


def random_graph(seed: int) -> dict:
    """A `[network]` table: layers wired at random, every output used. Images keep their height and width
    (padded convolutions, stride-1 pooling) so that any two outputs can be concatenated; flat rows
    any way. Each layer names the outputs it takes, most often one of the last three."""
    rng = np.random.default_rng(seed)
    image = bool(seed % 2)
    shape = {"input": (2, 5, 5) if image else (5,)}
    unused, layers = ["input"], []

    def pick(k: int = 1) -> list[str]:
        names = list(shape)
        recent = names[-3:]
        return [str(rng.choice(recent if rng.random() < 0.7 else names)) for _ in range(k)]

    for i in range(int(rng.integers(4, 9))):
        name, act = f"l{i}", str(rng.choice(ACTIVATIONS))
        op = rng.choice(["weights", "weights", "norm", "pool", "add", "concat", "dropout"])
        if op == "add":
            first = pick()[0]
            same = [n for n in shape if shape[n] == shape[first]]
            sources = [first, str(rng.choice(same))]
            layer, out = {"type": "add", "activation": act}, shape[first]
        elif op == "concat":
            sources = pick(int(rng.integers(2, 4)))
            width = sum(shape[n][0] for n in sources)
            layer, out = {"type": "concat", "activation": act}, ((width, 5, 5) if image else (width,))
        else:
            sources = pick()
            src = shape[sources[0]]
            if op == "weights" and image:
                k = int(rng.choice([1, 3]))
                filters = int(rng.integers(1, 4))
                layer, out = {"type": "conv2d", "filters": filters, "kernel": k, "padding": k // 2,
                              "activation": act}, (filters, 5, 5)
            elif op == "weights":
                units = int(rng.integers(2, 6))
                layer, out = {"type": "linear", "units": units, "activation": act}, (units,)
            elif op == "dropout":
                layer, out = {"type": "dropout", "p": round(float(rng.uniform(0.1, 0.6)), 2)}, src
            elif op == "norm":
                layer, out = {"type": "batchnorm", "momentum": 0.3, "activation": act}, src
            elif image:
                layer, out = {"type": str(rng.choice(["maxpool2d", "avgpool2d"])), "kernel": 3, "stride": 1,
                              "padding": 1}, src
            else:
                layer, out = {"type": "linear", "units": 3, "activation": act}, (3,)
        layers.append({**layer, "name": name, "from": sources})
        unused = [n for n in unused if n not in sources] + [name]
        shape[name] = out
    if len(unused) > 1 or unused == ["input"]:  # every output must reach the head
        layers.append({"type": "concat", "from": unused if len(unused) > 1 else [*unused, *unused],
                       "name": "last"})
    if image:
        layers.append({"type": str(rng.choice(["globalavgpool2d", "flatten"]))})
    return {"input_shape": list(shape["input"]), "layers": layers, "outputs": 3, "output_activation": "tanh"}


def experiment(network: dict, optimizer: str = "adam") -> spec.ExperimentSpec:
    return spec.from_dict({
        "data": {"dataset": "xor"}, "network": network,
        "training": {"loss": "mse", "dtype": "float64", "optimizer": {"name": optimizer, "learning_rate": 0.01}}})


def batch(s: spec.ExperimentSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *s.network.input_shape))
    return x, losses.get("mse").targets(rng.normal(size=(n, 3)) * 0.5, 3, "float64")


def test_the_random_graphs_branch_and_merge():
    specs = [experiment(random_graph(seed)).network for seed in range(40)]
    assert sum(not s.is_chain for s in specs) >= 35
    kinds = {layer.type for s in specs for layer in s.layers}
    assert {"add", "concat", "linear", "conv2d", "batchnorm", "maxpool2d", "avgpool2d", "dropout"} <= kinds
    assert sum(any(len(set(src)) > 1 for src in s.wiring.sources) for s in specs) >= 30  # real merges


@pytest.mark.parametrize("seed", range(40))
def test_a_random_graph_agrees_on_forward_and_every_gradient(seed):
    s = experiment(random_graph(seed))
    x, y = batch(s, 8, seed)
    check_gradients(s, seed, x, y, atol=1e-9, grad_atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 6])
def test_a_random_graph_agrees_after_200_training_steps(seed):
    s = experiment(random_graph(seed), optimizer="sgd")
    x, y = batch(s, 40, seed)
    check_trajectory(s, seed, x, y, steps=200, batch=10, atol=1e-8)


def test_a_residual_block_sums_the_gradients_of_its_two_paths():
    """The skip's gradient reaches the stem twice (through the block and around it): with the block
    removed from the sum, the stem's gradient changes; both engines agree either way."""
    block = [{"type": "linear", "units": 4, "activation": "tanh", "name": "stem"},
             {"type": "linear", "units": 4, "activation": "relu"},
             {"type": "linear", "units": 4, "name": "b"},
             {"type": "add", "from": ["stem", "b"], "activation": "tanh"}]
    s = experiment({"input_shape": [5], "layers": block, "outputs": 3})
    x, y = batch(s, 6)
    check_gradients(s, 0, x, y, atol=1e-12, grad_atol=1e-12)
    from tests.parity import both_engines
    with_skip = both_engines(s, 0)[0].gradients(x, y)[1]["layers.0.weight"]
    alone = experiment({"input_shape": [5], "layers": block[:3], "outputs": 3})
    assert not np.allclose(both_engines(alone, 0)[0].gradients(x, y)[1]["layers.0.weight"], with_skip)


BASE = [{"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1, "name": "a"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1, "name": "b"},
        {"type": "add", "from": ["a", "b"]},
        {"type": "flatten"}]


@pytest.mark.parametrize("change, says", [
    ({2: {"from": ["a", "c"]}}, "network.layers.2 (add): from names 'c', which no earlier layer is called; "
                                "earlier names: 'input', 'a', 'b'"),
    ({0: {"from": "b"}}, "network.layers.0 (conv2d, 'a'): from names 'b', layer 1, which does not come before it"),
    ({1: {"name": "a"}}, "network.layers.1 (conv2d, 'a'): name = 'a' is already layer 0's name"),
    ({2: {"from": ["a", "input"]}}, "network.layers.2 (add) on 'a' [4, 6, 6], input [1, 6, 6]: add needs inputs "
                                    "of one shape, given [4, 6, 6], [1, 6, 6]"),
    ({2: {"from": "a"}}, "network.layers.2 (add): add takes two or more inputs: name them in from = [...]"),
    ({1: {"from": ["a", "input"]}}, "network.layers.1 (conv2d, 'b'): conv2d takes one input, from names 2"),
    ({2: {"from": ["a", "a"]}}, "network.layers.1 (conv2d, 'b'): its output [4, 6, 6] goes to no layer: the next "
                                "one (add) takes from = ['a', 'a']; name this layer in a from, or remove it"),
    ({0: {"name": "input"}}, "network.layers.0.name = 'input': must be 1 to 64 letters"),
    ({2: {"from": []}}, "network.layers.2.from = []: must name at least one earlier layer"),
    ({2: {"from": [1, 2]}}, "network.layers.2.from.0"),
])
def test_a_graph_that_cannot_be_wired_is_one_line_naming_the_layer(change, says):
    layers = [dict(layer) for layer in BASE]
    for i, keys in change.items():
        layers[i].update(keys)
    with pytest.raises(SpecError) as e:
        experiment({"input_shape": [1, 6, 6], "layers": layers, "outputs": 3})
    assert says in str(e.value)
    assert "\n" not in str(e.value)


def test_a_graph_round_trips_through_its_plain_form_and_a_chain_is_unchanged():
    s = experiment(random_graph(3)).network
    again = experiment(spec.network_to_dict(s)).network
    assert again == s
    chain = experiment({"input_shape": [5], "layers": [{"type": "linear", "units": 4}], "outputs": 3}).network
    assert chain.is_chain and "from" not in spec.network_to_dict(chain)["hidden"][0]


def test_a_graph_network_saves_and_loads_with_its_wiring(tmp_path):
    from harness.scratch import Network

    s = experiment(random_graph(5)).network
    net = Network(s, seed=2, dtype="float64")
    x, _ = batch(experiment(random_graph(5)), 4)
    back = Network.load(net.save(tmp_path / "graph.npz"))
    assert back.spec == s and not back.spec.is_chain
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


ISSUE_EXAMPLE = """
[data]
dataset = "mnist"

[network]
input_shape = [1, 28, 28]
layers = [
  { type = "conv2d", filters = 16, kernel = 3, padding = 1 },
  { type = "batchnorm", activation = "relu", name = "a" },
  { type = "conv2d", filters = 16, kernel = 3, padding = 1 },
  { type = "batchnorm", activation = "relu" },
  { type = "conv2d", filters = 16, kernel = 3, padding = 1 },
  { type = "batchnorm", name = "b" },
  { type = "add", from = ["a", "b"], activation = "relu" },
  { type = "globalavgpool2d" },
  { type = "dropout", p = 0.1 },
]
outputs = 10
output_activation = "softmax"

[training]
loss = "cross_entropy"
dtype = "float64"
optimizer = { name = "sgd", learning_rate = 0.1, momentum = 0.9 }
"""


def test_the_issue_example_trains_alike_on_both_engines_dropout_included(tmp_path):
    """The syntax of #27, as written there: a residual block with batchnorm and dropout, 30 steps on
    random images in float64; losses, parameters and running statistics agree to 1e-8."""
    path = tmp_path / "resnet.toml"
    path.write_text(ISSUE_EXAMPLE)
    s = spec.load(path)
    assert [layer.type for layer in s.network.layers].count("dropout") == 1
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 1, 28, 28)) * 0.5, rng.integers(0, 10, 30)
    check_trajectory(s, 4, x, y, steps=30, batch=10, atol=1e-8)
