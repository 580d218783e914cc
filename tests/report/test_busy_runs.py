"""The report's busy-machine runs from their tags: the note first, the section, the seeds left out."""

import pandas as pd

from harness.report import busy
from harness.report.markdown import _compared


def runs(busy_flags):
    """xor with two seeds per engine; torch's epochs take twice scratch's, except on seed 1, whose
    torch run was slowed (4x) by another process."""
    rows = []
    for (engine, seed), flag in busy_flags.items():
        slow = 4.0 if (engine, seed) == ("torch", 1) else 1.0
        rows.append({"run_id": f"{engine}-{seed}", "experiment": "xor", "engine": engine, "seed": seed,
                     "status": "FINISHED",
                     "params.evaluation.metric": "accuracy", "metrics.test_accuracy": 1.0,
                     "metrics.steady_epoch_s": (2.0 * slow if engine == "torch" else 1.0),
                     "tags.harness.busy": flag, "tags.harness.busy_threshold": "0.1",
                     "metrics.others_share": 0.6 if flag == "true" else 0.01,
                     "metrics.load_start": 2.0, "metrics.load_end": 3.0})
    return pd.DataFrame(rows)


PARENT = pd.Series({"group": "xor"})


def test_a_busy_seed_is_left_out_of_the_speedup_both_engines(monkeypatch):
    from harness import tracking

    mixed = runs({("scratch", 0): "false", ("torch", 0): "false", ("scratch", 1): "false", ("torch", 1): "true"})
    steady = dict(zip(mixed["run_id"], mixed["metrics.steady_epoch_s"], strict=True))
    # each run's epoch times as the store holds them: a warm-up epoch, then three steady ones
    monkeypatch.setattr(tracking, "metric_history", lambda run_id, name: [(1, 9.0)] + [(e, steady[run_id])
                                                                                        for e in (2, 3, 4)])
    assert busy.busy_seeds(mixed) == {1}
    assert _compared(PARENT, mixed)[1].startswith("2.00")  # seed 0 alone
    quiet = mixed.assign(**{"tags.harness.busy": "false"})
    assert _compared(PARENT, quiet)[1].startswith("5.00")  # what the busy run made of it: torch's median 5 s
    every = mixed.assign(**{"tags.harness.busy": "true"})
    assert _compared(PARENT, every)[1:3] == ["— (busy machine)", "—"]


def test_the_note_comes_first_and_names_an_experiment_whose_every_run_was_busy():
    mixed = runs({("scratch", 0): "false", ("torch", 0): "false", ("scratch", 1): "false", ("torch", 1): "true"})
    note = "\n".join(busy.first_lines(mixed))
    assert "**1 run of 4 measured on a busy machine**" in note and "more than 10% of the usable cores" in note
    assert "Every run" not in note
    every = busy.first_lines(mixed.assign(**{"tags.harness.busy": "true"}))
    assert "**Every run of xor was measured on a busy machine**" in "\n".join(every)
    section = busy.section(mixed)
    assert section[1] == "## Measured on a busy machine"
    assert section[-1] == "- xor, torch seed 1: other processes used 60% of the cores, load 2.0 to 3.0"


def test_runs_of_an_older_harness_or_a_quiet_machine_bring_no_note():
    older = runs({("scratch", 0): None, ("torch", 0): None}).drop(columns=["tags.harness.busy"])
    assert not busy.flags(older).any() and busy.first_lines(older) == [] and busy.section(older) == []
    quiet = runs({("scratch", 0): "false", ("torch", 0): "false"})
    assert busy.first_lines(quiet) == [] and busy.section(quiet) == []
