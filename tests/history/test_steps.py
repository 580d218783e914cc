"""Step detection: the Potts segmentation finds a level change, the bootstrap keeps only the steps whose
interval clears 1 ± the threshold, and a history of noise has none."""

import numpy as np
import pytest

from harness.history import steps


def history(scales, seed=0, runs=3, epochs=8, spread=0.03):
    """Per commit, `runs` processes of `epochs` timings around 0.1 x scale, and the commits' medians."""
    rng = np.random.default_rng(seed)
    per_commit = [[list(scale * 0.1 * np.exp(rng.normal(0, spread, epochs))) for _ in range(runs)] for scale in scales]
    return per_commit, [float(np.median(np.concatenate(c))) for c in per_commit]


def test_the_exact_potts_fit_puts_one_boundary_where_the_level_changes():
    y = [1.0, 1.01, 0.99, 1.0, 2.0, 2.02, 1.98, 2.0]
    dist = steps.costs(y, np.ones(len(y)))[1]
    assert steps.potts(dist, gamma=0.5) == [4, 8]  # a jump of 1 is worth a segment's penalty
    assert steps.potts(dist, gamma=10.0) == [8]  # with a penalty above the jump's cost, one segment
    assert steps.potts(dist, gamma=1e-6) == list(range(1, 9))  # with none, a segment per point
    assert steps.segment(y)[0] == 4  # the information criterion picks a fit with the step at 4


@pytest.mark.parametrize("scales,expected", [
    ([1.0, 1.3, 1.3], [(1, "slower")]),  # commit 2 made it slower, commit 3 kept it
    ([1.0] * 4 + [1.3] * 3 + [1.0] * 2, [(4, "slower"), (7, "faster")]),  # a regression, then its fix
    ([1.0] * 10 + [0.9] * 10, [(10, "faster")]),
])
def test_a_step_is_flagged_at_the_first_commit_of_its_new_level_with_its_interval(scales, expected):
    per_commit, medians = history(scales)
    found = steps.steps(per_commit, medians)
    assert [(s.at, "slower" if s.comparison.ratio > 1 else "faster") for s in found] == expected
    for s in found:
        size = scales[s.at] / scales[s.at - 1]
        assert s.comparison.low <= size <= s.comparison.high or abs(s.comparison.ratio / size - 1) < 0.02
        assert s.comparison.significant


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_brings_no_step(seed):
    per_commit, medians = history([1.0] * 12, seed=seed, spread=0.05)
    assert steps.steps(per_commit, medians) == []


def test_a_step_inside_the_noise_threshold_is_not_a_step():
    per_commit, medians = history([1.0] * 5 + [1.01] * 5, spread=0.002)  # 1% slower, measured very precisely
    assert steps.steps(per_commit, medians) == []
    assert [s.at for s in steps.steps(per_commit, medians, threshold=0.002)] == [5]


def test_the_boundaries_the_fit_proposes_are_merged_until_each_is_confirmed(monkeypatch):
    per_commit, medians = history([1.0, 1.0, 1.3, 1.3, 1.3], spread=0.03)
    monkeypatch.setattr(steps, "segment", lambda y, w=None: [1, 2, 3, 4, 5])  # a fit that gives each commit a level
    found = steps.steps(per_commit, medians)
    assert [s.at for s in found] == [2]  # the bootstrap keeps the one real step
    assert found[0].comparison.low > 1.2  # measured between the merged segments: commits 1-2 against 3-5


def test_a_noisy_commit_weighs_less():
    w = steps.weights([1.0, 1.0, 1.0], [0.99, 0.9, 0.99], [1.01, 1.1, 1.01])
    assert w[1] < w[0] == w[2] and w[0] == pytest.approx(1.0)
    assert steps.weights([1.0, 1.0], [1.0, 0.99], [1.0, 1.01]) == [1.0, 1.0]  # one timing: no width, median weight
