"""The names metrics have in the store, and the names the harness uses for them.

The MLflow UI groups a run's charts by the prefix before the first "/" and shows the groups in
alphabetical order, so the per-epoch series come first under `curves/` (one point per epoch),
then a parent run's comparison (`engines/`, `experiment/`, and per engine `scratch/`, `torch/`)
and the figures a run has once (`interference/`, `onnx/`, `resources/`, `run/`, `speed/`, `test/`, `time/`). The
rest of the harness keeps the flat names (`train_loss`, `train_time_s`, `speedup`); only this
module knows both. The speedup's store name says its direction (`engines/scratch_speedup`: torch
time / scratch time, above 1 scratch is faster); a store of an older harness, with `engines/speedup`,
reads the same.
"""

from __future__ import annotations

import re

from harness.tracking.store import INTERFERENCE_KEYS, RESOURCE_KEYS

CURVES = "curves/"  # every per-epoch series: curves/train_loss, curves/test_accuracy, curves/epoch_time_s, ...

SPEEDUP = ("speedup", "speedup_min", "speedup_max", "speedup_ci_low", "speedup_ci_high", "speedup_verdict",
           "speedup_cv", "speedup_seeds_needed")  # `harness.run.bench.epoch_speedup`'s figures

ONCE = {
    "train_time_s": "time/train_s", "median_epoch_s": "time/median_epoch_s", "steady_epoch_s": "time/steady_epoch_s",
    "eval_time_s": "time/eval_s", "time_to_target_s": "time/to_target_s", "export_time_s": "time/export_s",
    "samples_per_s": "speed/samples_per_s", "epochs_run": "run/epochs", "target_epoch": "run/target_epoch",
    "onnx_max_abs_diff": "onnx/max_abs_diff", "onnx_agreement": "onnx/agreement",
    **{k: f"resources/{k}" for k in RESOURCE_KEYS},
    **{k: f"interference/{k}" for k in INTERFERENCE_KEYS},
    # a parent run's
    **{k: f"engines/scratch_{k}" for k in SPEEDUP},
    **{k: f"engines/{k}" for k in ("accuracy_gap", "agreement_mean", "agreement_min", "agreement_n",
                                   "onnx_agreement_count_min", "onnx_agreement_mean")},
    "runs_failed": "experiment/runs_failed", "runs_busy": "experiment/runs_busy", "wall_s": "experiment/wall_s",
}
SPEEDUP_MEANING = "torch time / scratch time: above 1, scratch is faster"  # a parent run's tag of the same name

_FROM_STORE = {**{f"engines/{k}": k for k in SPEEDUP}, **{v: k for k, v in ONCE.items()}}  # older names first


def epoch_key(name: str) -> str:
    """The store's name of a per-epoch series (the final test figures are `test/...` besides)."""
    return CURVES + name


def once_key(name: str) -> str:
    """The store's name of a figure a run has once (names an engine's own: `scratch/...` as they are)."""
    return ONCE.get(name) or _test(name)


def _test(name: str) -> str:
    return "test/" + name.removeprefix("test_") if name.startswith("test_") else name


def flat_name(key: str) -> str:
    """The harness's name of a figure's store key (an older store's flat key is its own name); the
    per-epoch series (`curves/...`) are read by `metric_history` only."""
    if key in _FROM_STORE:
        return _FROM_STORE[key]
    if key.startswith("test/"):
        return "test_" + key.removeprefix("test/")
    return key


def flat_columns(frame):
    """A `mlflow.search_runs` frame with its `metrics.<key>` columns under the harness's names;
    where an older run has the flat name and a newer the prefixed one, the two are merged."""
    import pandas as pd

    merged: dict[str, pd.Series] = {}
    kept = []
    for column in frame.columns:
        m = re.fullmatch(r"metrics\.(.+)", column)
        if m is None:
            kept.append(column)
        elif not m.group(1).startswith(CURVES):  # a series' last value: the run's figures are apart
            new = f"metrics.{flat_name(m.group(1))}"
            merged[new] = frame[column] if new not in merged else merged[new].combine_first(frame[column])
    return pd.concat([frame[kept], pd.DataFrame(merged, index=frame.index)], axis=1)
