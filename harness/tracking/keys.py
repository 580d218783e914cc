"""The names metrics have in the store, and the names the harness uses for them.

The MLflow UI groups a run's charts by the prefix before the first "/", so related figures sit
together: the curves (`train/`, `test/`, `epoch/`, one point per epoch) apart from the
figures a run has once (`time/`, `speed/`, `resources/`, `onnx/`, `run/`), and a parent run's
comparison (`compare/`, `bench/`, and per engine `scratch/`, `torch/`). The rest of the harness
keeps the flat names (`train_loss`, `train_time_s`, `speedup`); only this module knows both.
"""

from __future__ import annotations

import re

from harness.tracking.store import RESOURCE_KEYS

EPOCH = {"train_loss": "train/loss", "test_loss": "test/loss", "epoch_time_s": "epoch/time_s",
         "eval_time_s": "epoch/eval_s"}  # and test_<metric> -> test/<metric>

ONCE = {
    "train_time_s": "time/train_s", "median_epoch_s": "time/median_epoch_s", "steady_epoch_s": "time/steady_epoch_s",
    "eval_time_s": "time/eval_s", "time_to_target_s": "time/to_target_s", "export_time_s": "time/export_s",
    "samples_per_s": "speed/samples_per_s", "epochs_run": "run/epochs", "target_epoch": "run/target_epoch",
    "onnx_max_abs_diff": "onnx/max_abs_diff", "onnx_agreement": "onnx/agreement",
    **{k: f"resources/{k}" for k in RESOURCE_KEYS},
    # a parent run's
    "speedup": "compare/speedup", "speedup_min": "compare/speedup_min", "speedup_max": "compare/speedup_max",
    "accuracy_gap": "compare/accuracy_gap", "agreement_mean": "compare/agreement_mean",
    "agreement_min": "compare/agreement_min", "agreement_n": "compare/agreement_n",
    "onnx_agreement_count_min": "compare/onnx_agreement_count_min",
    "onnx_agreement_mean": "compare/onnx_agreement_mean",
    "runs_failed": "bench/runs_failed", "wall_s": "bench/wall_s",
}

_FROM_STORE = {v: k for k, v in ONCE.items()} | {v: k for k, v in EPOCH.items() if k != "eval_time_s"}


def epoch_key(name: str) -> str:
    """The store's name of a per-epoch series."""
    return EPOCH.get(name) or _test(name)


def once_key(name: str) -> str:
    """The store's name of a figure a run has once (names an engine's own: `scratch/...` as they are)."""
    return ONCE.get(name) or _test(name)


def _test(name: str) -> str:
    return "test/" + name.removeprefix("test_") if name.startswith("test_") else name


def flat_name(key: str) -> str:
    """The harness's name of a store key (an older store's flat key is its own name).
    `epoch/eval_s` is read as the per-epoch `eval_time_s` only by `metric_history`."""
    if key in _FROM_STORE:
        return _FROM_STORE[key]
    if key.startswith("test/"):
        return "test_" + key.removeprefix("test/")
    return key


def flat_columns(frame):
    """A `mlflow.search_runs` frame with its `metrics.<key>` columns under the harness's names;
    where an older run has the flat name and a newer the prefixed one, the two are merged."""
    renamed = {}
    for column in frame.columns:
        m = re.fullmatch(r"metrics\.(.+)", column)
        if m and m.group(1) != "epoch/eval_s":
            renamed[column] = f"metrics.{flat_name(m.group(1))}"
    out = frame.drop(columns=[c for c in frame.columns if c == "metrics.epoch/eval_s"])
    merged = {}
    for old, new in renamed.items():
        merged[new] = out[old] if new not in merged else merged[new].combine_first(out[old])
    out = out.drop(columns=list(renamed))
    for new, values in merged.items():
        out[new] = values
    return out
