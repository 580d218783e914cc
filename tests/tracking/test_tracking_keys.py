"""The store's metric names and the harness's: one map, both ways, old stores readable."""

import math

import pandas as pd

from harness.tracking import keys


def test_every_name_maps_to_a_grouped_key_and_back():
    for name in [*keys.ONCE, "test_loss", "test_accuracy", "test_accuracy_32bit"]:
        key = keys.once_key(name)
        assert "/" in key and not key.startswith(keys.CURVES), name
        assert keys.flat_name(key) == name
    assert keys.epoch_key("eval_time_s") == "curves/eval_time_s" and keys.once_key("eval_time_s") == "time/eval_s"
    assert keys.epoch_key("test_accuracy") == "curves/test_accuracy"
    assert keys.once_key("test_accuracy") == "test/accuracy"
    assert keys.once_key("scratch/train_time_s_mean") == "scratch/train_time_s_mean"  # already grouped


def test_a_frame_of_old_and_new_runs_reads_under_one_name():
    """A bench an older harness logged (flat keys) reads beside a new one (prefixed keys)."""
    frame = pd.DataFrame({"run_id": ["old", "new"], "metrics.train_time_s": [1.0, math.nan],
                          "metrics.time/train_s": [math.nan, 2.0], "metrics.test/accuracy": [math.nan, 0.9],
                          "metrics.curves/eval_time_s": [math.nan, 0.1], "tags.x": ["a", "b"]})
    out = keys.flat_columns(frame)
    assert out["metrics.train_time_s"].tolist() == [1.0, 2.0]
    assert out["metrics.test_accuracy"].iloc[1] == 0.9
    assert not any("/" in c for c in out.columns if c.startswith("metrics."))
    assert out["tags.x"].tolist() == ["a", "b"] and "metrics.eval_time_s" not in out


def test_the_speedup_says_its_direction_and_an_older_stores_name_still_reads():
    assert keys.once_key("speedup") == "engines/scratch_speedup"
    assert keys.once_key("speedup_ci_low") == "engines/scratch_speedup_ci_low"
    assert "above 1, scratch is faster" in keys.SPEEDUP_MEANING
    assert keys.flat_name("engines/speedup") == keys.flat_name("engines/scratch_speedup") == "speedup"
    frame = pd.DataFrame({"run_id": ["old", "new"], "metrics.engines/speedup": [2.0, math.nan],
                          "metrics.engines/scratch_speedup": [math.nan, 3.0],
                          "metrics.engines/speedup_ci_high": [2.5, math.nan]})
    out = keys.flat_columns(frame)
    assert out["metrics.speedup"].tolist() == [2.0, 3.0] and out["metrics.speedup_ci_high"].iloc[0] == 2.5
