"""scikit-learn's MLPClassifier, the NumPy-world peer of the scratch engine in `harness perf`.

The same network (hidden widths, ReLU), plain SGD with the same learning rate and (non-Nesterov)
momentum, no L2 penalty, the same batch size, softmax and log-loss: one `partial_fit` is one
epoch of minibatch steps, each gathering its batch from the shuffled rows, as the scratch engine
does. It draws its own initial weights and shuffles with its own generator: its accuracy is
comparable with the engines', its batches are not the same. scikit-learn is an optional extra
(`pip install nn-harness[peers]`); without it the row says so.
"""

from __future__ import annotations

import numpy as np

from harness.spec import ExperimentSpec


def available() -> str:
    """"" when scikit-learn can be imported, else why not."""
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        return f"not installed ({e}); pip install 'nn-harness[peers]'"
    return ""


def unsupported(spec: ExperimentSpec) -> str:
    """Why MLPClassifier cannot stand for this experiment's network, or ""."""
    net, t = spec.network, spec.training
    if not net.is_dense:
        return "MLPClassifier takes dense networks (linear layers on flat input) only"
    acts = {a.name for a in net.activations[:-1]}
    if len(acts) != 1 or next(iter(acts)) not in ("relu", "tanh", "sigmoid", "identity"):
        return "MLPClassifier needs one hidden activation of relu, tanh, logistic or identity"
    if net.output_activation.name != "softmax" or t.loss != "cross_entropy":
        return "the peer is set up for softmax + cross-entropy classification"
    if t.optimizer.name != "sgd" or t.optimizer.kwargs().get("weight_decay"):
        return "the peer is set up for plain SGD with momentum"
    return ""


class SklearnMLP:
    def __init__(self, spec: ExperimentSpec, batch_size: int, seed: int) -> None:
        from sklearn.neural_network import MLPClassifier

        net, opt = spec.network, spec.training.optimizer.kwargs()
        act = net.activations[0].name
        self.classes = np.arange(net.outputs)
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(net.sizes[1:-1]), activation={"sigmoid": "logistic"}.get(act, act),
            solver="sgd", alpha=0.0, batch_size=batch_size, learning_rate="constant",
            learning_rate_init=opt["learning_rate"], momentum=opt.get("momentum", 0.0), nesterovs_momentum=False,
            shuffle=True, random_state=seed)

    def train_epoch(self, x: np.ndarray, labels: np.ndarray) -> None:
        self.model.partial_fit(x, labels, classes=self.classes)

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.model.predict(x) == labels))
