import numpy as np
import pytest

from harness import spec
from harness.engines import ENGINE_NAMES, engine_class, epoch_batches, pin_threads
from harness.errors import SpecError
from harness.run.prepare import prepare


def test_the_registry_names_both_engines_and_refuses_others():
    assert set(ENGINE_NAMES) == {"scratch", "torch"}
    assert engine_class("scratch").name == "scratch" and engine_class("torch").name == "torch"
    with pytest.raises(SpecError, match="unknown engine 'jax'; known: scratch, torch"):
        engine_class("jax")


def test_epoch_batches_cover_every_sample_once_in_a_seeded_order():
    batches = epoch_batches(10, 4, seed=3, epoch=2)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = epoch_batches(10, 4, seed=3, epoch=2)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    other_epoch = np.concatenate(epoch_batches(10, 4, seed=3, epoch=3))
    assert (np.concatenate(batches) != other_epoch).any()
    assert np.concatenate(epoch_batches(10, 4, seed=3, epoch=2, shuffle=False)).tolist() == list(range(10))


def test_pin_threads_sets_and_reports_both_pools():
    import torch
    from threadpoolctl import threadpool_limits

    limit, info = pin_threads(1, ("scratch", "torch"))
    assert info["requested"] == 1 and info["torch"] == 1 and torch.get_num_threads() == 1
    assert info.get("numpy_blas", 1) == 1 and isinstance(limit, threadpool_limits)  # the caller keeps the limit


def xor_spec(**training):
    return spec.from_dict({"data": {"dataset": "xor"},
                           "network": {"inputs": 2, "outputs": 1, "output_activation": "sigmoid",
                                       "hidden": [{"units": 4, "activation": "tanh"}]},
                           "training": {"loss": "bce", "batch_size": 4, "dtype": "float64", **training}})


def test_both_engines_start_from_the_same_parameters_and_learn_xor():
    inputs = prepare(xor_spec(optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9}), seed=0)
    for name in ("scratch", "torch"):
        engine = engine_class(name)(inputs.spec.network, inputs.spec.training, inputs.initial)
        for k, v in inputs.initial.items():
            assert engine.parameters()[k].tobytes() == v.tobytes()
        first = engine.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(0))
        for epoch in range(1, 300):
            last = engine.train_epoch(inputs.x_train, inputs.y_train, inputs.batches(epoch))
        assert last < first / 10, name
        assert engine.evaluate(inputs.x_test, inputs.y_test, "accuracy")["accuracy"] == 1.0, name


def test_prepare_refuses_a_network_that_does_not_fit_the_data():
    with pytest.raises(SpecError, match=r"network.inputs = 3, but dataset 'xor' has 2 features"):
        prepare(spec.from_dict(xor_spec().to_dict(), ["network.inputs=3"]), 0)
    with pytest.raises(SpecError, match=r"network.outputs = 2, but dataset 'xor' needs 1 output"):
        prepare(spec.from_dict(xor_spec().to_dict(), ["network.outputs=2"]), 0)
    with pytest.raises(SpecError, match=r"training.batch_size = 5 is larger than the 4 training samples"):
        prepare(spec.from_dict(xor_spec().to_dict(), ["training.batch_size=5"]), 0)


def test_only_the_reference_package_imports_torch():
    """DESIGN.md's import rule: torch lives in harness/reference/ alone (the rest asks it by name)."""
    import re

    from tests.cli.test_cli import ROOT

    pattern = re.compile(r"^\s*(import torch|from torch)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "harness").rglob("*.py")
                 if "reference" not in p.parts and pattern.search(p.read_text())]
    assert offenders == []
