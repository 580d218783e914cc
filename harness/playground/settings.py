"""The page's settings: what a learner can choose, the server's limits, and the experiment file they make.

A session's settings (a flat JSON object) are written as the TOML-like dict of an experiment
file and validated by `harness.spec.from_dict`, the loader of every experiment file; the server's own
limits (layers, units, points, sessions) are checked after it and say so. A refusal names the
control the learner touched ("Seed: must be 0 or more (got -1)"), not the file's key
(`refused`). `toml_text` writes that dict back as the file that `harness run` and `harness bench` accept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from harness import catalog
from harness import spec as specs
from harness.data import plane
from harness.errors import SpecError, suggest

# The server's limits: a page is a toy, and one tab must not take the machine from the others.
LIMITS: dict[str, int] = {
    "hidden_layers": 6,  # hidden layers of a network
    "units": 32,  # units of one hidden layer
    "points": 2000,  # training plus test points
    "epochs": 10_000,  # epochs a session plays before it stops by itself
    "sessions": 16,  # sessions (tabs) the server holds at once
}

# Output activation and loss pairs that fit each task (the decision threshold is 0.5, as the accuracy's).
OUTPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "classification": (("sigmoid", "bce"), ("sigmoid", "mse"), ("tanh", "mse"), ("identity", "mse")),
    "regression": (("identity", "mse"), ("tanh", "mse")),
}
OPTIMIZERS = ("sgd", "adam", "adamw")
ENGINES = ("scratch", "torch")

DEFAULTS: dict[str, Any] = {
    "dataset": "xor_plane",
    "noise": 0.0,
    "train_size": 250,
    "test_size": 250,
    "features": ["x1", "x2"],
    "hidden": [4],
    "activation": "relu",
    "output_activation": "sigmoid",
    "loss": "bce",
    "init": "he_uniform",
    "optimizer": "adam",  # learns every dataset with the defaults below; SGD at one rate does not
    "learning_rate": 0.01,
    "momentum": 0.0,  # sgd only
    "l2": 0.0,  # the optimizer's weight_decay
    "batch_size": 10,
    "seed": 0,
}


# Each setting's control on the page, by the label the learner reads there.
CONTROLS: dict[str, str] = {
    "dataset": "Dataset", "noise": "Noise", "train_size": "Training points", "test_size": "Test points",
    "features": "Features", "hidden": "Hidden layers", "activation": "Activation",
    "output_activation": "Output and loss", "loss": "Output and loss", "init": "Initializer",
    "optimizer": "Optimizer", "learning_rate": "Learning rate", "momentum": "Momentum", "l2": "L2",
    "batch_size": "Batch size", "seed": "Seed",
}
# The experiment file's keys (as `harness.spec` names them in its messages) -> the setting behind each.
FILE_KEYS: tuple[tuple[str, str], ...] = (
    (r"bench\.seeds\.0", "seed"), (r"training\.batch_size", "batch_size"),
    (r"training\.optimizer\.learning_rate", "learning_rate"), (r"training\.optimizer\.momentum", "momentum"),
    (r"training\.optimizer\.weight_decay", "l2"), (r"training\.optimizer(\.name)?", "optimizer"),
    (r"training\.loss", "loss"), (r"network\.output_activation(\.name)?", "output_activation"),
    (r"network\.init", "init"), (r"network\.hidden\.\d+\.activation(\.name)?", "activation"),
    (r"network\.hidden\.(\d+)\.units", "hidden"), (r"network\.hidden(\.\d+)?", "hidden"),
    (r"data\.noise", "noise"), (r"data\.train_size", "train_size"), (r"data\.test_size", "test_size"),
    (r"data\.features(\.\d+)?", "features"), (r"data\.dataset", "dataset"),
)
PHRASES = ((re.compile(r"must be >= (\S+)"), r"must be \1 or more"), (re.compile(r"must be > (\S+)"),
                                                                     r"must be more than \1"))


class SettingError(SpecError):
    """A setting refused, naming its control: `control` is the setting's key (None: no one control)."""

    def __init__(self, message: str, control: str | None = None) -> None:
        super().__init__(message)
        self.control = control


def refused(e: SpecError) -> SettingError:
    """A mistake as the page's learner reads it: the control's label where the file's key was.

    "bench.seeds.0 = -1: must be >= 0" -> "Seed: must be 0 or more (got -1)";
    "training.batch_size = 300 is larger than ..." -> "Batch size: 300 is larger than ..."."""
    if isinstance(e, SettingError):
        return e
    message = str(e)
    for pattern, key in FILE_KEYS:
        m = re.match(rf"({pattern})(?=[ :])(?P<rest>.*)$", message)
        if m is None:
            continue
        label = CONTROLS[key]
        if key == "hidden" and m.group(1).endswith(".units"):
            label = f"Units of hidden layer {int(message.split('.')[2]) + 1}"
        rest = m.group("rest")
        simple = re.match(r" = ([\w.+-]+|'[^']*'|\[\])(: | )(.*)$", rest)
        if simple is None:  # a value with spaces in it ("an integer past ..."), or no value
            text = f"{label}:{rest.removeprefix(' =').removeprefix(':')}"
        elif simple.group(2) == ": ":
            text = f"{label}: {simple.group(3)} (got {simple.group(1)})"
        else:
            text = f"{label}: {simple.group(1)} {simple.group(3)}"
        for phrase, plain in PHRASES:
            text = phrase.sub(plain, text)
        return SettingError(text, key)
    return SettingError(message)


def task(dataset: str) -> str:
    """'classification' or 'regression' for a 2-D dataset; a clear error for any other name."""
    if dataset in plane.CLASSIFICATION:
        return "classification"
    if dataset in plane.REGRESSION:
        return "regression"
    raise SettingError(f"Dataset: the playground draws the 2-D datasets only: {', '.join(plane.NAMES)} "
                       f"(got {dataset!r})", "dataset")


def complete(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in; an unknown setting is refused, naming the known ones."""
    if not isinstance(settings, Mapping):
        raise SettingError(f"the settings must be a JSON object of {', '.join(DEFAULTS)}; got "
                           f"{type(settings).__name__}")
    for key in settings:
        if key not in DEFAULTS:
            raise SettingError(f"unknown setting {key!r}{suggest(str(key), DEFAULTS)}; known: {', '.join(DEFAULTS)}")
    return {**DEFAULTS, **settings}


def experiment(settings: Mapping[str, Any], epochs: int = LIMITS["epochs"]) -> dict[str, Any]:
    """The experiment file of these settings, as the dict `tomllib` would read from it."""
    s = complete(settings)
    hidden = s["hidden"]
    optimizer: dict[str, Any] = {"name": s["optimizer"], "learning_rate": s["learning_rate"],
                                 "weight_decay": s["l2"]}
    if s["optimizer"] == "sgd":
        optimizer["momentum"] = s["momentum"]
    features = s["features"]
    dataset = s["dataset"]
    return {
        "name": f"playground-{dataset}" if isinstance(dataset, str) and dataset.isidentifier() else "playground",
        "description": "made in harness playground: both engines, one seed, the epochs played",
        "data": {"dataset": dataset, "train_size": s["train_size"], "test_size": s["test_size"],
                 "noise": s["noise"], "features": features},
        "network": {
            "inputs": len(features) if isinstance(features, list) else 0,
            "hidden": [{"units": u, "activation": s["activation"]} for u in hidden] if isinstance(hidden, list)
            else hidden,
            "outputs": 1,
            "output_activation": s["output_activation"],
            "init": s["init"],
        },
        "training": {"loss": s["loss"], "optimizer": optimizer, "epochs": epochs, "batch_size": s["batch_size"],
                     "dtype": "float64", "threads": 1},
        "evaluation": {"metric": "accuracy" if isinstance(dataset, str) and dataset in plane.CLASSIFICATION
                       else "mae"},  # a dataset that is not a string is refused by `validate`, naming it
        "bench": {"seeds": [s["seed"]], "engines": list(ENGINES)},
    }


def validate(settings: Mapping[str, Any]) -> tuple[specs.ExperimentSpec, dict[str, Any]]:
    """The spec of these settings and its experiment dict, checked as an experiment file is, then
    against the server's limits; a `SettingError` (one line, naming the control) for the first mistake."""
    raw = experiment(settings)
    s = complete(settings)
    dataset = raw["data"]["dataset"]
    if isinstance(dataset, str):
        task(dataset)
    features = raw["data"]["features"]
    if not isinstance(features, list) or not features:
        raise SettingError(f"Features: tick at least one of {', '.join(plane.FEATURES)} (got {features!r})",
                           "features")
    pair = (s["output_activation"], s["loss"])
    if isinstance(dataset, str) and all(isinstance(v, str) for v in pair):  # before the file's own, vaguer check
        allowed = OUTPUTS[task(dataset)]
        if pair not in allowed:
            raise SettingError(f"Output and loss: {pair[0]} + {pair[1]} does not fit {task(dataset)} "
                               f"({dataset!r}); take one of: {', '.join(f'{a} + {b}' for a, b in allowed)}",
                               "output_activation")
    try:
        spec = specs.from_dict(raw, source="settings")
    except SpecError as e:  # the message of an experiment file, without the file's name
        raise refused(SpecError(str(e).removeprefix("settings: "))) from None
    check_limits(spec)
    return spec, raw


def check_limits(spec: specs.ExperimentSpec) -> None:
    """The server's limits, beyond what an experiment file allows."""
    layers = spec.network.layers
    if len(layers) > LIMITS["hidden_layers"]:
        raise SettingError(f"Hidden layers: {len(layers)}, but this server takes at most "
                           f"{LIMITS['hidden_layers']} hidden layers", "hidden")
    for i, layer in enumerate(layers):
        if layer.units > LIMITS["units"]:
            raise SettingError(f"Units of hidden layer {i + 1}: {layer.units}, but this server takes at most "
                               f"{LIMITS['units']} units per layer", "hidden")
    d = spec.data
    points = (d.train_size or plane.DEFAULT_TRAIN_SIZE) + (d.test_size or plane.DEFAULT_TEST_SIZE)
    if points > LIMITS["points"]:
        raise SettingError(f"Training points and test points: {points:,} in all, but this server takes at most "
                           f"{LIMITS['points']:,} points in all", "train_size")


def options() -> dict[str, Any]:
    """What the page offers, its defaults and the server's limits (GET /api/options)."""
    return {
        "datasets": {name: {"task": task(name), "description": info_description(name)} for name in plane.NAMES},
        "features": dict(plane.FEATURE_LABELS),
        "activations": sorted(k for k, a in catalog.ACTIVATIONS.items() if a.hidden_ok),
        "outputs": {t: [list(p) for p in pairs] for t, pairs in OUTPUTS.items()},
        "optimizers": list(OPTIMIZERS),
        "initializers": list(catalog.INITIALIZERS),
        "max_noise": plane.MAX_NOISE,
        "range": plane.RANGE,
        "limits": dict(LIMITS),
        "defaults": DEFAULTS,
        "controls": dict(CONTROLS),
    }


def info_description(name: str) -> str:
    from harness.data import DATASETS

    return DATASETS[name].description


# ---------------------------------------------------------------------------- writing the file


def toml_text(raw: Mapping[str, Any], header: str = "") -> str:
    """An experiment dict as TOML: scalars first, then one [table] per section; `tomllib.loads`
    of the text gives `raw` back."""
    lines = [f"# {line}" for line in header.splitlines()]
    tables = [(k, v) for k, v in raw.items() if isinstance(v, Mapping)]
    for key, value in raw.items():
        if not isinstance(value, Mapping):
            lines.append(f"{key} = {_value(value)}")
    for name, table in tables:
        lines += ["", f"[{name}]"]
        lines += [f"{key} = {_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r}")
