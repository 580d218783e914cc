"""PyTorch as its users write it (harness.reference.plain, perf's peer): on a network that is not a chain it
trains as the harness's torch twin does, step for step, from the same initial tensors."""

from __future__ import annotations

import numpy as np
import torch

from harness import spec
from harness.init import initial_parameters
from harness.reference.engine import TorchEngine
from harness.reference.plain import PlainTorch

# a residual block with batch normalisation and a concatenation of two branches, on small images
NETWORK = {
    "input_shape": [2, 6, 6],
    "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "activation": "relu", "name": "stem"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "activation": "relu"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "name": "block"},
        {"type": "add", "from": ["stem", "block"], "activation": "relu", "name": "sum"},
        {"type": "conv2d", "filters": 2, "kernel": 1, "from": "stem", "activation": "tanh", "name": "side"},
        {"type": "concat", "from": ["sum", "side"]},
        {"type": "maxpool2d", "kernel": 2},
        {"type": "flatten"},
    ],
    "outputs": 3, "output_activation": "softmax"}


def test_plain_pytorch_trains_a_graph_as_the_torch_twin_does_step_for_step():
    s = spec.from_dict({"data": {"dataset": "xor"}, "network": NETWORK,
                        "training": {"loss": "cross_entropy", "dtype": "float64", "batch_size": 8,
                                     "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}}})
    assert not s.network.is_chain
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 2, 6, 6)), rng.integers(0, 3, size=48)
    plan = [np.arange(i, i + 8) for i in range(0, 48, 8)]
    params = initial_parameters(s.network, seed=3, dtype="float64")
    twin, plain = TorchEngine(s.network, s.training, params), PlainTorch(s.network, s.training, params)
    seen: list[float] = []
    loss_fn = plain.loss_fn
    plain.loss_fn = lambda out, target: (seen.append(float((v := loss_fn(out, target)).detach())), v)[1]
    expected = [twin.train_epoch(x, y, [idx]) for idx in plan]  # one step each: the batch's loss before it
    plain.train(plain.slice_batches(x, y, plan))
    np.testing.assert_allclose(seen, expected, rtol=0, atol=1e-12)
    assert expected[-1] < expected[0]  # it learned: the trajectories are not flat by accident
    theirs = twin.model.state_dict()
    for name, value in plain.model.state_dict().items():  # parameters, running statistics, batches tracked
        torch.testing.assert_close(value, theirs[name], rtol=0, atol=1e-12)
    np.testing.assert_allclose(plain.predict(x), twin.predict(x), rtol=0, atol=1e-12)
