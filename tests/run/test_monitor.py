import time

import numpy as np
import pytest

from harness.run.monitor import Monitor


def test_a_busy_loop_reads_at_most_one_core_and_its_figures_agree():
    """What holds whatever else runs: one thread uses at most one core, and the CPU % is the CPU
    seconds over the wall time. That it reads near 100 % on a free core is checked with fed samples
    (`test_samples_of_one_busy_core_read_100_percent`): other processes may take the core here."""
    from harness.machine import usable_cores

    with Monitor(interval=0.02) as m:
        end = time.perf_counter() + 0.6
        x = 0
        while time.perf_counter() < end:
            x += 1
    r = m.result
    cpu = r["cpu_user_s"] + r["cpu_system_s"]
    assert r["wall_s"] >= 0.6
    assert 0 < cpu <= r["wall_s"] * 1.1  # the loop's thread, and the sampler's few milliseconds
    assert r["cpu_percent_mean"] == pytest.approx(100 * cpu / r["wall_s"], rel=1e-6)
    assert 0 < r["cpu_percent_max"] <= 100 * usable_cores()


def samples_of(cpu_per_s, seconds=2.0, step=0.05):
    """Samples (t, user, system, rss, threads) of a process using `cpu_per_s` cores, and its own
    CPU seconds at each (the nanosecond clock and the ticks alike)."""
    ts = [i * step for i in range(round(seconds / step) + 1)]
    samples = [(t, t * cpu_per_s, 0.0, 100 * 2**20, 2) for t in ts]
    return samples, [(t * cpu_per_s, t * cpu_per_s) for t in ts]


def test_samples_of_one_busy_core_read_100_percent():
    from harness.run.monitor import window_figures

    samples, own = samples_of(1.0)
    r = window_figures(samples, own, 0.001, cores=2)
    assert r["cpu_percent_mean"] == pytest.approx(100) and r["cpu_percent_max"] == pytest.approx(100)
    assert r["cpu_user_s"] == pytest.approx(2.0) and r["wall_s"] == pytest.approx(2.0)
    assert r["cpu_percent_max"] >= 0.9 * r["cpu_percent_mean"]


def test_fed_samples_above_the_cores_are_bounded_by_them():
    from harness.run.monitor import window_figures

    samples, own = samples_of(7.0)  # tick rounding once read 700 % on 2 cores
    r = window_figures(samples, own, 0.0, cores=2)
    assert r["cpu_percent_mean"] == 200 and r["cpu_percent_max"] == 200


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


def test_peak_rates_span_at_least_half_a_second():
    from harness.run.monitor import _peak_rates

    # one tick (10 ms of CPU) landing between two samples 10 ms apart reads 100% there; over 0.5 s it is 2%
    t = [i * 0.01 for i in range(120)]
    assert max(_peak_rates(t, [0.0 if i < 50 else 0.01 for i in range(120)])) == pytest.approx(2.0, rel=0.05)


def test_the_peak_is_never_below_the_mean_when_the_ticks_undercount():
    """The mean takes this process's CPU from the nanosecond clock; ticks that lag it by 5% made
    every half-second window read 95% beside a mean of 100% (a report once showed 95.8 < 96.4)."""
    from harness.run.monitor import window_figures

    samples, own = samples_of(0.95)  # what the ticks count
    own = [(t_cpu / 0.95, t_cpu) for _, t_cpu in own]  # the nanosecond clock: one full core
    r = window_figures(samples, own, 0.0, cores=2)
    assert r["cpu_percent_mean"] == pytest.approx(100)
    assert r["cpu_percent_max"] >= r["cpu_percent_mean"]


def test_the_peak_covers_the_windows_tail_after_a_late_sample():
    """Samples 0.6 s apart (the GIL held) then 0.1 s: no half-second window starts before the
    last 0.1 s, where all the CPU was; the whole window is one of the peak's windows."""
    from harness.run.monitor import window_figures

    samples = [(0.0, 0.0, 0.0, 2**20, 1), (0.6, 0.0, 0.0, 2**20, 1), (0.7, 0.1, 0.0, 2**20, 1)]
    r = window_figures(samples, [(x[1], x[1]) for x in samples], 0.0, cores=2)
    assert r["cpu_percent_mean"] == pytest.approx(100 * 0.1 / 0.7)
    assert r["cpu_percent_max"] >= r["cpu_percent_mean"]


def test_sleeping_uses_almost_no_cpu():
    with Monitor(interval=0.02) as m:
        time.sleep(0.4)
    assert m.result["cpu_percent_mean"] < 15  # its own CPU: other processes cannot add to it
    assert m.result["monitor_samples"] >= 4  # nothing held the GIL (20 on a free core; a busy one delays wake-ups)


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
    """Its own CPU seconds per sample, which a busy machine does not stretch as it stretches wall time
    (a share of the wall time failed under load); at 50 samples a second, 2 ms a sample is 10%."""
    with Monitor(interval=0.01) as m:
        time.sleep(0.5)
    r = m.result
    assert r["monitor_samples"] >= 4  # 50 on a free core
    assert r["monitor_overhead_s"] / r["monitor_samples"] < 0.002


def test_a_window_shorter_than_the_interval_still_has_both_edges():
    with Monitor(interval=10) as m:
        pass
    assert m.result["monitor_samples"] == 2 and m.result["rss_peak_mb"] > 0


def test_a_window_of_a_few_milliseconds_reads_its_true_cpu_share():
    """psutil counts CPU time in 10 ms ticks: alone, a 4 ms busy window read 0 % or several
    hundred; the nanosecond clock at the edges makes every one read no more than its wall time
    (about one core on a free machine; less where other processes take the core) and never 0.
    In a fresh process: the clock counts every thread of the process, and threads other tests
    leave behind would add their CPU to the window."""
    import subprocess
    import sys

    code = """
import time
from harness.run.monitor import Monitor
for _ in range(5):
    m = Monitor(interval=0.05)
    m.start()
    end = time.perf_counter() + 0.004
    while time.perf_counter() < end:
        pass
    r = m.stop()
    cpu = r["cpu_user_s"] + r["cpu_system_s"]
    assert 0 < cpu <= r["wall_s"] + 0.002, r  # a whole 10 ms tick would be more than the window
    assert 0 < r["cpu_percent_mean"] <= 100 * (1 + 0.002 / r["wall_s"]), r
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
