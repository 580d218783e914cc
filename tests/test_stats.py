"""harness.stats on synthetic timings whose answer is known."""

import math

import numpy as np
import pytest

from harness import stats


def _processes(mean, noise, n_proc=5, n_iter=30, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.normal(mean, noise * mean, n_iter)) for _ in range(n_proc)]


def test_two_identical_distributions_are_no_significant_difference():
    c = stats.compare(_processes(1.0, 0.01, seed=1), _processes(1.0, 0.01, seed=2))
    assert c.verdict == 0 and not c.significant
    assert c.low <= 1 <= c.high and c.low <= c.ratio <= c.high
    assert stats.words(c) == "~ no significant difference" and stats.cell(c).startswith("~")


def test_a_20_percent_shift_with_small_noise_is_significant_and_excludes_1():
    slow, fast = _processes(1.2, 0.01, seed=3), _processes(1.0, 0.01, seed=4)
    c = stats.compare(slow, fast)
    assert c.verdict == 1 and c.low > 1.02 and 1.15 < c.ratio < 1.25 and stats.words(c) == "faster"
    assert stats.compare(fast, slow).verdict == -1 and stats.compare(fast, slow).high < 0.98
    assert c.repeats_needed == 0 and c.warning() == ""


def test_a_shift_inside_the_noise_threshold_is_not_a_difference():
    c = stats.compare(_processes(1.01, 0.001, seed=5), _processes(1.0, 0.001, seed=6))
    assert c.low > 1 and c.verdict == 0  # real, but within 1 ± 2%
    assert stats.compare(_processes(1.01, 0.001, seed=5), _processes(1.0, 0.001, seed=6), threshold=0.005).verdict == 1


def test_repeats_without_epochs_are_the_plain_bootstrap_and_the_band_pairs_extremes():
    c = stats.compare([10.0, 11.0, 12.0], [5.0, 5.5, 6.0])
    assert c.ratio == pytest.approx(2.0) and c.lowest == pytest.approx(10 / 6) and c.highest == pytest.approx(12 / 5)
    assert c.lowest <= c.low <= c.high <= c.highest and c.verdict == 1


def test_the_same_data_gives_the_same_interval():
    a, b = _processes(1.0, 0.05, seed=7), _processes(1.1, 0.05, seed=8)
    assert stats.compare(a, b) == stats.compare(a, b)


def test_the_hierarchy_counts_the_spread_between_processes():
    # each process steady inside, but the processes far apart: resampling epochs alone would be far too sure
    rng = np.random.default_rng(9)
    a = [list(rng.normal(m, 0.001, 50)) for m in (0.8, 1.0, 1.2, 0.9, 1.1)]
    b = [list(rng.normal(1.0, 0.001, 50)) for _ in range(5)]
    flat = stats.compare([t for p in a for t in p], [t for p in b for t in p])
    nested = stats.compare(a, b)
    assert nested.high - nested.low > 5 * (flat.high - flat.low) and nested.verdict == 0


def test_a_wide_spread_warns_with_repeats_that_grow_with_it():
    needed = []
    for noise in (0.15, 0.3, 0.6):
        c = stats.compare(_processes(1.0, noise, n_iter=1, seed=10), _processes(1.0, noise, n_iter=1, seed=11))
        assert c.cv > stats.CV_LIMIT and c.repeats_needed > 5
        assert f"about {c.repeats_needed} seeds would bring" in c.warning("seeds")
        needed.append(c.repeats_needed)
    assert needed == sorted(needed) and needed[-1] > 4 * needed[0]
    assert stats.repeats_needed(5, 1.0, 0.9, 1.1) == 125  # half-width 10% is 5x the 2% threshold: 5 x 5²
    assert stats.repeats_needed(5, 1.0, 0.99, 1.01) == 6


def test_a_wide_spread_that_still_decides_the_question_does_not_warn():
    c = stats.compare(_processes(3.0, 0.15, n_iter=1, seed=13), _processes(1.0, 0.15, n_iter=1, seed=14))
    assert c.cv > stats.CV_LIMIT and c.verdict == 1 and c.repeats_needed == 0 and c.warning() == ""


def test_a_side_without_timings_is_refused():
    with pytest.raises(ValueError):
        stats.compare([], [1.0])


def test_stray_epochs_in_one_process_do_not_raise_the_spread_warning():
    rng = np.random.default_rng(12)
    steady = list(rng.normal(1.0, 0.01, 100)) + [30.0, 50.0]  # two epochs hit by something else
    c = stats.compare([steady], [list(rng.normal(2.0, 0.02, 100))])
    assert c.cv < stats.CV_LIMIT and c.warning() == "" and c.verdict == -1


def test_the_olympic_mean_drops_the_fastest_and_the_slowest_of_five_or_more():
    assert stats.olympic_mean([10.0, 1.0, 3.0, 2.0, 100.0]) == pytest.approx(5.0)  # mean of 2, 3, 10
    assert stats.olympic_mean([4.0, 1.0, 2.0, 3.0, 5.0, 6.0]) == pytest.approx(3.5)
    assert math.isnan(stats.olympic_mean([1.0, 2.0, 3.0, 4.0]))  # too few to drop two
    assert math.isnan(stats.olympic_mean([1.0, 2.0, 3.0, 4.0, float("nan")]))  # a seed that never reached it
