"""`harness evaluate` on models with an output at every time step: sorting (a class per step, integer
labels) and binary addition (a sigmoid per step), through onnxruntime, scored as the engine scores
them on the same test split."""

from __future__ import annotations

import numpy as np
import pytest

from harness import spec as specs
from harness.data import load
from harness.run.evaluate import evaluate
from harness.scratch import Network

SORT = {"name": "sort_steps", "data": {"dataset": "sort", "train_size": 1000},
        "network": {"input_shape": [8], "outputs": 10, "output_activation": "softmax", "layers": [
            {"type": "embedding", "vocab": 10, "dim": 8}, {"type": "positional", "max_len": 8},
            {"type": "attention", "heads": 2}, {"type": "linear", "units": 16, "activation": "relu"}]},
        "training": {"loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.01}, "epochs": 3,
                     "batch_size": 32, "dtype": "float32"}}


@pytest.mark.parametrize("experiment", ["sort", "binary_addition"])
def test_evaluate_scores_a_model_with_an_output_per_step_as_its_engine_does(experiment, tmp_path):
    s = specs.from_dict(SORT) if experiment == "sort" else specs.load("experiments/binary_addition.toml")
    d = load(s.data, seed=0, dtype="float32")
    net = Network(s.network, seed=0, dtype=np.float32)
    net.fit(d.x_train, d.y_train, loss=s.training.loss, optimizer=s.training.optimizer, epochs=3,
            batch_size=s.training.batch_size)
    path = net.save(tmp_path / "m.onnx")
    result = evaluate(path, data=s.data.dataset)  # the dataset's own keys: its default test split
    test = load(specs.from_dict({**s.to_dict(), "data": {"dataset": s.data.dataset}}).data, seed=0, dtype="float32")
    own = net.evaluate(test.x_test, test.y_test, metric=result.metric)[result.metric]
    assert result.metric == "accuracy" and result.samples == len(test.x_test)
    assert result.value == pytest.approx(own, abs=1.5 / len(test.x_test))  # float32 rounding may flip one sample
