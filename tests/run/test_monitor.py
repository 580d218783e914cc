import time

import numpy as np
import pytest

from harness.run.monitor import Monitor


def test_a_busy_loop_shows_one_core_near_100_percent():
    with Monitor(interval=0.02) as m:
        end = time.perf_counter() + 0.6
        x = 0
        while time.perf_counter() < end:
            x += 1
    r = m.result
    assert 80 <= r["cpu_percent_mean"] <= 120
    assert r["cpu_user_s"] + r["cpu_system_s"] == pytest.approx(r["wall_s"], rel=0.2)
    assert r["wall_s"] == pytest.approx(0.6, abs=0.1)


def test_cpu_percent_never_exceeds_the_cores_even_over_tiny_windows():
    from harness.machine import usable_cores

    results = []
    for _ in range(20):  # windows of a few ms: clock-tick rounding alone once gave 700% on 2 cores
        with Monitor(interval=0.001) as m:
            end = time.perf_counter() + 0.004
            while time.perf_counter() < end:
                pass
        results.append(m.result)
    with Monitor(interval=0.005) as m:
        end = time.perf_counter() + 1.2
        while time.perf_counter() < end:
            pass
    results.append(m.result)
    for r in results:
        assert 0 <= r["cpu_percent_mean"] <= 100 * usable_cores()
        assert 0 <= r["cpu_percent_max"] <= 100 * usable_cores()
    assert m.result["cpu_percent_max"] >= m.result["cpu_percent_mean"] * 0.9


def test_peak_rates_span_at_least_half_a_second():
    from harness.run.monitor import _peak_rates

    # one tick (10 ms of CPU) landing between two samples 10 ms apart reads 100% there; over 0.5 s it is 2%
    samples = [(i * 0.01, 0.0 if i < 50 else 0.01, 0.0, 0, 1) for i in range(120)]
    assert max(_peak_rates(samples)) == pytest.approx(2.0, rel=0.05)


def test_sleeping_uses_almost_no_cpu():
    with Monitor(interval=0.02) as m:
        time.sleep(0.4)
    assert m.result["cpu_percent_mean"] < 15
    assert m.result["monitor_samples"] >= 10  # nothing held the GIL, so the sampler kept its pace


def test_a_large_allocation_raises_peak_rss_by_about_its_size():
    size_mb = 300
    with Monitor(interval=0.02) as m:
        block = np.ones(size_mb * 1024 * 1024 // 8)  # touched, so resident
        time.sleep(0.2)
        del block
        time.sleep(0.1)
    r = m.result
    assert r["rss_train_mb"] == pytest.approx(r["rss_peak_mb"] - r["rss_baseline_mb"])
    assert r["rss_train_mb"] == pytest.approx(size_mb, rel=0.15)


def test_the_baseline_is_the_windows_own_and_nothing_carries_over():
    block = np.ones(200 * 1024 * 1024 // 8)  # resident before the window: baseline, not training
    with Monitor(interval=0.02) as m:
        time.sleep(0.1)
    assert m.result["rss_train_mb"] < 20 and m.result["rss_baseline_mb"] > 200
    del block
    with Monitor(interval=0.02) as m2:
        time.sleep(0.1)
    assert m2.result["rss_peak_mb"] < m.result["rss_peak_mb"] - 150  # no high-water mark across windows


def test_the_monitor_costs_little():
    with Monitor(interval=0.01) as m:
        time.sleep(0.5)
    r = m.result
    assert r["monitor_samples"] >= 20
    assert r["monitor_overhead_s"] / r["wall_s"] < 0.1


def test_a_window_shorter_than_the_interval_still_has_both_edges():
    with Monitor(interval=10) as m:
        pass
    assert m.result["monitor_samples"] == 2 and m.result["rss_peak_mb"] > 0


def test_a_window_of_a_few_milliseconds_reads_its_true_cpu_share():
    """psutil counts CPU time in 10 ms ticks: alone, a 4 ms busy window read 0 % or several
    hundred; the nanosecond clock at the edges makes every one read about one core."""
    import time

    from harness.run.monitor import Monitor

    for _ in range(5):
        m = Monitor(interval=0.05)
        m.start()
        end = time.perf_counter() + 0.004
        while time.perf_counter() < end:
            pass
        r = m.stop()
        assert 0.001 <= r["cpu_user_s"] + r["cpu_system_s"] <= 0.02, r
        assert 20 <= r["cpu_percent_mean"] <= 150, r  # preempted on a busy machine: less, never 0
