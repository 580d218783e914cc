import time

import numpy as np
import pytest

from harness.monitor import Monitor


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
    assert r["rss_peak_mb"] - r["rss_start_mb"] == pytest.approx(size_mb, rel=0.15)
    assert r["rss_hwm_mb"] >= r["rss_peak_mb"] * 0.95


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
