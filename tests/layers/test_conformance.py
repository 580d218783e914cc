"""Every kind of the layer table, complete on every side: one example network per kind, run through
the scratch engine against the torch twin (forward and every gradient, then parameters and state
after 20 training steps, in float64 to 1e-10), out to ONNX, through onnxruntime where it has the
kernels, and back with `Network.from_onnx` (as the network at inference: a kind that is the
identity there, dropout, is no node of the file). A kind registered in the table alone fails
here with one line naming each side it lacks."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime
import pytest

from harness import spec
from harness.layers import KINDS, ShapeError
from harness.reference.layers import LAYER_MODULES
from harness.scratch import Network, losses
from harness.scratch.layers import LAYERS
from tests.parity import both_engines, check_gradients, check_trajectory, compare


def onnx_sides() -> tuple[Collection[str], Collection[str]]:
    """The kinds ONNX can write and the kinds it can read: the one place that knows where those
    registries live."""
    from harness import onnx

    return set(onnx.WRITERS), {kind for kinds in onnx.IMPORTERS.values() for kind in kinds}


def missing_sides(kind: str) -> str | None:
    """None when `kind` has every side, else one line naming each side it lacks."""
    writers, readers = onnx_sides()
    lacks = [side for side, present in (
        (f"no scratch layer (harness/scratch/layers/{kind}.py)", kind in LAYERS),
        (f"no torch module (harness/reference/layers/{kind}.py)", kind in LAYER_MODULES),
        ("no ONNX writer", kind in writers),
        ("no ONNX reader", kind in readers)) if not present]
    return f"kind {kind!r} is in the layer table but has {', '.join(lacks)}" if lacks else None


def check_every_kind_has_every_side() -> None:
    lines = [line for kind in KINDS if (line := missing_sides(kind))]
    assert not lines, "\n".join(lines)


@dataclass(frozen=True)
class Example:
    """A small network around one layer of the kind: its input shape, its layers (the kind's among
    them, a weighted layer before it where it has none, so that its backward runs too), a batch."""

    input_shape: tuple[int, ...]
    layers: tuple[dict[str, Any], ...]
    batch: int = 12


IMAGE = (2, 7, 6)
PRE_IMAGE = {"type": "conv2d", "filters": 2, "kernel": 1, "activation": "tanh"}
PRE_SEQUENCE = {"type": "linear", "units": 3, "activation": "tanh"}
EXAMPLES: dict[str, Example] = {
    "linear": Example((5,), ({"type": "linear", "units": 4, "activation": "tanh"},)),
    "conv2d": Example(IMAGE, ({"type": "conv2d", "filters": 3, "kernel": [3, 2], "stride": [2, 1],
                               "padding": [1, 0], "activation": "tanh"}, {"type": "flatten"})),
    "maxpool2d": Example(IMAGE, (PRE_IMAGE, {"type": "maxpool2d", "kernel": [2, 3], "stride": [1, 2],
                                             "padding": [1, 1]}, {"type": "flatten"})),
    "avgpool2d": Example(IMAGE, (PRE_IMAGE, {"type": "avgpool2d", "kernel": 3, "stride": 2, "padding": 1},
                                 {"type": "flatten"})),
    "flatten": Example(IMAGE, (PRE_IMAGE, {"type": "flatten"})),
    "globalavgpool2d": Example(IMAGE, (PRE_IMAGE, {"type": "globalavgpool2d"})),
    "rnn": Example((5, 2), (PRE_SEQUENCE, {"type": "rnn", "units": 4, "activation": "relu",
                                           "return_sequences": True})),
    "lstm": Example((5, 2), (PRE_SEQUENCE, {"type": "lstm", "units": 4})),
    "gru": Example((5, 2), (PRE_SEQUENCE, {"type": "gru", "units": 4, "return_sequences": True})),
    "batchnorm": Example(IMAGE, (PRE_IMAGE, {"type": "batchnorm", "momentum": 0.3, "activation": "relu"},
                                 {"type": "flatten"})),
    "batchnorm flat": Example((5,), ({"type": "linear", "units": 4, "activation": "tanh"},
                                     {"type": "batchnorm", "eps": 2 ** -10, "affine": False})),
    "add": Example(IMAGE, ({**PRE_IMAGE, "name": "a"}, {"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1,
                                                      "name": "b"},
                           {"type": "add", "from": ["a", "b", "input"], "activation": "relu"}, {"type": "flatten"})),
    "concat": Example(IMAGE, ({**PRE_IMAGE, "name": "a"}, {"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1,
                                                         "name": "b"},
                              {"type": "concat", "from": ["input", "a", "b"], "activation": "tanh"},
                              {"type": "flatten"})),
    "concat flat": Example((5,), ({"type": "linear", "units": 4, "activation": "tanh", "name": "a"},
                                  {"type": "linear", "units": 3, "name": "b"}, {"type": "concat", "from": ["b", "a"]})),
    "concat sequence": Example((5, 2), ({**PRE_SEQUENCE, "name": "a"},
                                        {"type": "gru", "units": 4, "return_sequences": True, "name": "b"},
                                        {"type": "concat", "from": ["a", "b"], "activation": "relu"})),
    "dropout": Example((5,), ({"type": "linear", "units": 4, "activation": "tanh"}, {"type": "dropout", "p": 0.3})),
    "dropout image": Example(IMAGE, (PRE_IMAGE, {"type": "dropout"}, {"type": "flatten"})),
    "attention": Example((5, 2), ({"type": "linear", "units": 8, "activation": "tanh"},
                                  {"type": "attention", "heads": 2})),
    "attention causal": Example((5, 2), ({"type": "linear", "units": 8, "activation": "tanh"},
                                         {"type": "attention", "heads": 4, "causal": True})),
    "attention one step": Example((1, 3), ({"type": "linear", "units": 6, "activation": "tanh"},
                                           {"type": "attention", "heads": 3, "causal": True})),
    "layernorm": Example((5,), ({"type": "linear", "units": 4, "activation": "tanh"}, {"type": "layernorm"})),
    "layernorm sequence": Example((5, 2), (PRE_SEQUENCE, {"type": "layernorm", "eps": 2 ** -10})),
    "dropout sequence": Example((5, 2), (PRE_SEQUENCE, {"type": "dropout", "p": 0.2}, {"type": "gru", "units": 4})),
    "embedding": Example((6,), ({"type": "embedding", "vocab": 7, "dim": 3}, PRE_SEQUENCE)),
    "embedding repeated": Example((9,), ({"type": "embedding", "vocab": 2, "dim": 4},)),  # every id many times
    "positional": Example((5, 2), (PRE_SEQUENCE, {"type": "positional", "max_len": 8})),
    "positional embedded": Example((6,), ({"type": "embedding", "vocab": 5, "dim": 4},
                                          {"type": "positional", "max_len": 6}, PRE_SEQUENCE)),
    "tokens": Example(IMAGE, ({"type": "conv2d", "filters": 3, "kernel": 2, "stride": 2, "activation": "tanh"},
                              {"type": "tokens"}, PRE_SEQUENCE)),
    "seqpool": Example((5, 2), (PRE_SEQUENCE, {"type": "seqpool"})),
    "seqpool first": Example((5, 2), (PRE_SEQUENCE, {"type": "seqpool", "mode": "first"})),
    "seqpool last": Example((6,), ({"type": "embedding", "vocab": 5, "dim": 4}, PRE_SEQUENCE,
                                   {"type": "seqpool", "mode": "last"})),
}  # a name's first word is the kind; a second names one more example of it


def experiment(name: str) -> spec.ExperimentSpec:
    e = EXAMPLES[name]
    return spec.from_dict({
        "data": {"dataset": "xor"},
        "network": {"input_shape": list(e.input_shape), "layers": list(e.layers), "outputs": 3,
                    "output_activation": "tanh"},
        "training": {"loss": "mse", "dtype": "float64", "optimizer": {"name": "adam", "learning_rate": 0.02}},
    })


def batch(s: spec.ExperimentSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs (token ids in the float dtype for a network that starts with an embedding) and targets."""
    rng = np.random.default_rng(seed)
    first = s.network.all_layers[0]
    x = (rng.integers(0, first.get("vocab"), size=(n, *s.network.input_shape)).astype(np.float64)
         if first.kind.takes_ids else rng.normal(size=(n, *s.network.input_shape)))
    y = rng.normal(size=(n, *s.network.shapes[-1])) * 0.5
    return x, losses.get("mse").targets(y, s.network.outputs, "float64")


def test_the_examples_are_the_kinds_of_the_table():
    assert {name.split()[0] for name in EXAMPLES} == set(KINDS)
    for name in EXAMPLES:
        kind = name.split()[0]
        assert [layer.type for layer in experiment(name).network.layers].count(kind) >= 1, name


def test_each_kind_does_to_the_time_axis_what_it_says():
    for kind, cls in KINDS.items():
        layer = next(layer for layer in experiment(kind).network.layers if layer.type == kind)
        says = cls.time_axis(layer)
        given = ((5, 4), (5, 4)) if cls.merges else (5, 4)  # a kind that merges is given a shape per input
        if says == "none":
            with pytest.raises(ShapeError):
                cls.out_shape(layer, given)
            continue
        out = cls.out_shape(layer, given)
        assert {"each": len(out) == 2 and out[0] == 5, "keep": len(out) == 2 and out[0] == 5,
                "drop": len(out) == 1, "pool": out == (4,), "merge": out == (20,)}[says], (kind, says, out)


def test_every_kind_has_every_side():
    check_every_kind_has_every_side()


def test_a_kind_only_in_the_table_fails_with_one_line_naming_each_missing_side(monkeypatch):
    monkeypatch.setitem(KINDS, "fake", KINDS["flatten"])
    line = ("kind 'fake' is in the layer table but has no scratch layer (harness/scratch/layers/fake.py), "
            "no torch module (harness/reference/layers/fake.py), no ONNX writer, no ONNX reader")
    assert missing_sides("fake") == line
    with pytest.raises(AssertionError) as failed:
        check_every_kind_has_every_side()
    assert str(failed.value).splitlines()[0] == line
    monkeypatch.setitem(LAYERS, "fake", LAYERS["flatten"])
    assert missing_sides("fake") == ("kind 'fake' is in the layer table but has no torch module "
                                     "(harness/reference/layers/fake.py), no ONNX writer, no ONNX reader")


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_scratch_and_torch_agree_on_forward_and_every_gradient(kind):
    s = experiment(kind)
    x, y = batch(s, EXAMPLES[kind].batch)
    check_gradients(s, 0, x, y, atol=1e-10, grad_atol=1e-10)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_parameters_and_state_agree_after_20_training_steps(kind):
    s = experiment(kind)
    x, y = batch(s, 20, seed=1)
    check_trajectory(s, 0, x, y, steps=20, batch=5, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_evaluation_mode_agrees_after_training_steps(kind):
    s = experiment(kind)
    scratch, reference = both_engines(s, 0)
    x, y = batch(s, 20, seed=3)
    for engine in (scratch, reference):
        engine.train_epoch(x, y, [np.arange(0, 10), np.arange(10, 20)])
    compare(f"{kind}: predict after training", scratch.predict(x), reference.predict(x), 1e-10)


def exported(kind: str, where) -> tuple[Any, Any, np.ndarray]:
    """The example's scratch engine a few steps away from its initial values, its ONNX file, a batch."""
    s = experiment(kind)
    scratch, _ = both_engines(s, 3)
    x, y = batch(s, 20, seed=2)
    scratch.train_epoch(x, y, [np.arange(0, 10), np.arange(10, 20)])
    return scratch, scratch.export_onnx(where / f"{kind}.onnx"), x


def at_inference(net: Network) -> tuple[spec.NetworkSpec, dict[str, np.ndarray]]:
    """The network an ONNX file holds of `net`: without the layers that are the identity at
    inference (`Kind.inference_identity`: dropout), its tensors renamed by the layers that remain."""
    kept = [i for i, layer in enumerate(net.spec.all_layers) if not layer.kind.inference_identity]
    s = dataclasses.replace(net.spec, layers=tuple(net.spec.all_layers[i] for i in kept[:-1]))
    new = {f"layers.{i}.": f"layers.{j}." for j, i in enumerate(kept)}
    tensors = {}
    for name, value in net.state_dict().items():
        prefix = name[:name.index(".", len("layers.")) + 1]
        tensors[new[prefix] + name[len(prefix):]] = value
    return s, tensors


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_onnx_export_reads_back_with_from_onnx_as_the_same_network(tmp_path, kind):
    scratch, path, x = exported(kind, tmp_path)
    back = Network.from_onnx(path)
    expected, saved = at_inference(scratch.net)
    assert back.spec.describe() == expected.describe()
    read = back.state_dict()
    assert list(read) == list(saved)
    for k, v in saved.items():
        compare(f"{kind}: {k} read back", read[k], v, 0)
    compare(f"{kind}: from_onnx predict", back.predict(x), scratch.predict(x), 0)


NO_FLOAT64 = ("NOT_IMPLEMENTED", "does not support double")  # how onnxruntime says it has no float64 kernel


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_onnxruntime_runs_the_export_as_predict_does(tmp_path, kind, dtype):
    scratch, path, x = exported(kind, tmp_path)
    net = scratch.net
    if dtype == "float32":
        net = Network(net.spec, net.state_dict(), dtype=dtype)
        path, x = net.save(tmp_path / f"{kind}32.onnx"), x.astype(dtype)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        given = session.get_inputs()[0]
        theirs = session.run(None, {given.name: x.astype(np.int64) if given.type == "tensor(int64)" else x})[0]
    except Exception as e:
        if dtype == "float64" and any(words in str(e) for words in NO_FLOAT64):
            pytest.skip(f"onnxruntime has no float64 kernel for an op of the {kind} example (compared in "
                        f"float32): {str(e).splitlines()[0]}")
        raise
    assert theirs.dtype == net.dtype
    compare(f"{kind}: onnxruntime in {dtype}", theirs, net.predict(x), 1e-12 if dtype == "float64" else 2e-6)
