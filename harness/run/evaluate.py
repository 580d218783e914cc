"""Test a saved ONNX model on a dataset's test split, with onnxruntime: any model of either engine.

The dataset and metric come from, in order: an experiment file the user names; the
experiment saved in the model's metadata; the dataset the user names with its usual metric.
The data's samples are shaped as the model takes them (MNIST's flat rows as [1, 28, 28]
images for a CNN); data that cannot be is refused in one line naming both shapes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import spec as specs
from harness.data import DATASETS
from harness.data import load as load_data
from harness.errors import HarnessError, ModelFileError, SpecError, unknown_name
from harness.metrics import get as get_metric
from harness.onnx.read import metadata, read_model
from harness.onnx.runtime import fit_samples, fixed_batch, predict_onnx, sample_shape, session
from harness.spec.tables import read_json


@dataclass(frozen=True)
class Evaluation:
    model: str
    engine: str
    dataset: str
    metric: str
    value: float
    samples: int
    note: str = ""

    def __str__(self) -> str:
        return (f"{self.model} ({self.engine}): test {self.metric} {self.value:.4f} on {self.samples:,} "
                f"samples of {self.dataset}" + (f" ({self.note})" if self.note else ""))


def evaluate(model: str | Path | None = None, *, run_id: str | None = None, data: str | None = None,
             experiment: str | Path | None = None, uri: str | None = None) -> Evaluation:
    if (model is None) == (run_id is None):
        raise HarnessError("name a model file or a run (--run RUN_ID), not both")
    if run_id is not None:
        from harness import tracking

        tracking.quiet()
        with tempfile.TemporaryDirectory(prefix="harness-eval-") as tmp:
            path = tracking.run_model(run_id, Path(tmp), uri)
            result = _evaluate(path, data, experiment)
        return Evaluation(f"run {run_id}", result.engine, result.dataset, result.metric, result.value, result.samples,
                          result.note)
    return _evaluate(Path(model), data, experiment)


def _evaluate(path: Path, data: str | None, experiment: str | Path | None) -> Evaluation:
    """An .onnx file through onnxruntime, or a native .npz checkpoint through the scratch engine."""
    if path.suffix == ".npz":
        from harness.scratch import Network, serialize

        net = Network.load(path)
        meta = serialize.metadata(path)
        predict, takes = net.predict, net.spec.input_shape
        note = ""
    else:
        meta = metadata(read_model(path))
        sess = session(path)
        predict, takes = (lambda x: predict_onnx(sess, x)), sample_shape(sess)
        batch = fixed_batch(sess)
        note = f"the model was exported with a fixed batch of {batch}: run {batch} sample(s) at a time" if batch else ""
    dataset, metric, data_spec = _what_to_test(meta, data, experiment, path)
    seed = meta.get("seed", "0")
    d = load_data(data_spec, seed=int(seed) if str(seed).isdigit() else 0, dtype="float64")
    try:
        pred = predict(fit_samples(d.x_test, takes))  # the data's flat rows in the model's sample shape
    except (ModelFileError, ValueError) as e:
        raise ModelFileError(f"{path}: {e} (dataset {dataset!r})") from None
    expected = DATASETS[dataset].outputs
    steps = d.y_test.shape[1] if d.y_test.ndim >= 2 and (d.y_test.ndim == 3 or expected > 1) else None
    per_step = pred.ndim == 3 and steps is not None and pred.shape[1] == steps  # an output per time step
    if pred.shape[-1] != expected or not (pred.ndim == 2 or per_step):
        needs = f"{expected}" + (f", or {expected} at each of its {steps} steps" if steps else "")
        raise ModelFileError(f"{path}: the model gives {list(pred.shape[1:])} outputs per sample, "
                             f"{dataset!r} needs {needs}")
    return Evaluation(str(path), meta.get("engine", "unknown engine"), dataset, metric,
                      get_metric(metric)(pred, d.y_test), len(d.x_test), note)


def _saved_experiment(meta: dict[str, str], path: Path) -> specs.ExperimentSpec | None:
    """The experiment saved in a model's metadata; a clear error where it is there but malformed."""
    if "experiment" not in meta:
        return None
    try:
        return specs.from_dict(read_json(meta["experiment"]), source=f"{path} (saved experiment)")
    except (ValueError, TypeError, KeyError, AttributeError, SpecError) as e:
        raise ModelFileError(f"{path}: the experiment saved in its metadata is malformed ({str(e)[:200]}); name "
                             "the dataset (--data mnist) or an experiment file (--experiment)") from None


def _what_to_test(meta: dict[str, str], data: str | None, experiment, path: Path):
    if experiment is not None:
        s = specs.load(experiment)
        return s.data.dataset, s.evaluation.metric, s.data
    if data is not None and data not in DATASETS:
        raise SpecError(unknown_name("dataset", data, DATASETS, key="--data"))
    try:
        saved = _saved_experiment(meta, path)
    except ModelFileError:
        if data is None:
            raise
        saved = None  # the user named the dataset: the broken metadata is not needed
    if saved is not None and (data is None or data == saved.data.dataset):
        return saved.data.dataset, saved.evaluation.metric, saved.data
    if data is None:
        raise HarnessError(f"{path} carries no experiment; name a dataset (--data mnist) or an experiment file")
    return data, DATASETS[data].metric, specs.DataSpec(dataset=data)
