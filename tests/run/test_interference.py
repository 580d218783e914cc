"""Other processes' share of the cores over a window, the busy-machine verdict, and the monitor
fed a busy or a quiet machine (`tests.run.machines`) whatever really runs beside the tests."""

import time

import pytest

from harness.run import interference
from harness.run.interference import Reading, figures, is_busy
from harness.run.monitor import Monitor
from tests.run.machines import BusyMachine, QuietMachine


def test_other_processes_are_the_machines_busy_time_less_this_process_trees():
    f = figures(2.0, 1.0, Reading(100.0, 5.0, 1.0, 2000.0), Reading(103.0, 5.5, 2.5, 1800.0), cores=2)
    assert f["others_cpu_s"] == pytest.approx(2.0)  # 3 s of busy cores, 1 s of them this process tree's
    assert f["others_share"] == pytest.approx(0.5)  # of 2 cores x 2 s
    assert f["steal_s"] == pytest.approx(0.5)
    assert (f["load_start"], f["load_end"], f["cpu_mhz_start"], f["cpu_mhz_end"]) == (1.0, 2.5, 2000.0, 1800.0)
    assert is_busy(f) and is_busy(f, threshold=0.45) and not is_busy(f, threshold=0.5)


def test_what_the_system_does_not_report_is_absent_not_zero():
    f = figures(1.0, 0.5, Reading(10.0), Reading(10.5), cores=1)
    assert f["others_cpu_s"] == 0 and f["others_share"] == 0 and not is_busy(f)
    assert not {"steal_s", "load_start", "load_end", "cpu_mhz_start", "cpu_mhz_end"} & f.keys()


def test_the_share_is_bounded_and_never_negative():
    # ticks: this tree's own time read from a finer clock can exceed the machine's ticked count
    assert figures(1.0, 0.6, Reading(10.0), Reading(10.5), cores=2)["others_cpu_s"] == 0
    assert figures(1.0, 0.0, Reading(10.0), Reading(19.0), cores=2)["others_share"] == 1.0


def test_a_short_window_is_not_called_busy_on_what_the_clock_ticks_leave_uncertain():
    tick = interference.TICK_S
    f = figures(0.05, 0.05, Reading(0.0), Reading(0.05 + 3 * tick), cores=2)  # 30 % of 2 cores x 50 ms
    assert f["others_share"] == pytest.approx(3 * tick / 0.1) and f["others_share"] > 0.1
    assert not is_busy(f)  # within 2 ticks a core and 2 for this process: the counters cannot tell
    longer = figures(5.0, 5.0, Reading(0.0), Reading(5.0 + 300 * tick), cores=2)  # the same share over 5 s
    assert is_busy(longer)


def test_the_threshold_is_a_share_of_the_usable_cores():
    quarter = figures(10.0, 0.0, Reading(0.0), Reading(10.0), cores=4)  # one core's worth of 4
    assert quarter["others_share"] == pytest.approx(0.25)
    assert is_busy(quarter) and is_busy(quarter, 0.2) and not is_busy(quarter, 0.3)
    assert interference.BUSY_THRESHOLD == 0.10


def test_the_tags_say_the_verdict_and_a_window_never_watched_has_none():
    busy = figures(10.0, 0.0, Reading(0.0), Reading(10.0), cores=2)
    assert interference.busy_tags(busy) == {"harness.busy": "true", "harness.busy_threshold": "0.1",
                                            "harness.busy_others_share": "0.500"}
    assert interference.busy_tags(busy, 0.6)["harness.busy"] == "false"
    assert interference.busy_tags({}) == {} and not is_busy({})
    assert "50% of the 2 usable cores (1.00 cores)" in interference.describe(busy)


def test_the_real_machine_is_read_and_its_figures_are_consistent():
    r = interference.read_machine([0])
    assert r.busy_s > 0 and (r.steal_s is None or r.steal_s >= 0) and (r.mhz is None or r.mhz > 0)
    with Monitor(interval=0.02) as m:
        time.sleep(0.1)
    f = m.result
    assert 0 <= f["others_share"] <= 1 and f["others_cpu_s"] <= f["window_s"] * f["cores_watched"] + 0.1
    assert f["cores_watched"] >= 1 and "load_start" in f


def test_the_monitor_fed_a_busy_machine_calls_it_busy():
    with Monitor(interval=0.02, readings=BusyMachine(cores=1.5)) as m:
        time.sleep(0.2)
    assert m.result["others_cpu_s"] >= 0.29 and is_busy(m.result)
    assert m.result["load_start"] == 3.0


def test_the_monitor_fed_a_quiet_machine_does_not_whatever_runs_beside():
    with Monitor(interval=0.02, readings=QuietMachine()) as m:
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            pass
    assert m.result["others_cpu_s"] < m.result["others_resolution_s"] and not is_busy(m.result)
    assert "cpu_mhz_start" not in m.result  # the quiet machine reports no frequency: absent, not 0


def test_perf_calls_a_run_busy_when_any_repeat_was():
    from harness.perf import busy_figures

    quiet = figures(10.0, 10.0, Reading(0.0), Reading(10.0), cores=2)
    busy = figures(10.0, 10.0, Reading(0.0), Reading(18.0), cores=2)  # 8 s of 20: 40 %
    m, tags = busy_figures([quiet, busy, quiet], 0.1)
    assert tags == {"harness.busy": "true", "harness.busy_threshold": "0.1"}
    assert m["busy.busy_repeats"] == 1 and m["busy.others_share.n"] == 3
    assert m["busy.others_share.max"] == pytest.approx(0.4)
    assert busy_figures([quiet, quiet], 0.1)[1]["harness.busy"] == "false"
    assert busy_figures([], 0.1) == ({}, {})


def test_a_short_window_is_widened_back_to_its_maker_and_never_into_an_earlier_window():
    watch = interference.Interference(QuietMachine(), min_window_s=0.5)
    time.sleep(0.3)  # a run's process loading its data
    watch.start()
    before = time.perf_counter()
    first = watch.stop()  # a window of microseconds: widened back to the Interference's making
    assert first["window_s"] >= 0.3
    watch.start()
    second = watch.stop()
    assert second["window_s"] <= time.perf_counter() - before  # back to the first window's end at most
    long_enough = interference.Interference(QuietMachine(), min_window_s=0.0)
    time.sleep(0.05)
    t0 = time.perf_counter()
    long_enough.start()
    assert long_enough.stop()["window_s"] <= time.perf_counter() - t0  # not widened: the window itself


def test_a_run_started_ahead_widens_no_short_window_back_past_its_turn_but_forward_over_its_own_work():
    watch = interference.Interference(QuietMachine(), min_window_s=0.3)
    time.sleep(0.3)  # built ahead of its turn, beside the run before it: not this run's machine
    t0 = time.perf_counter()
    watch.since_now()  # the turn
    watch.start()
    short = watch.stop()  # a window of microseconds
    assert short["window_s"] <= time.perf_counter() - t0  # not back into the time before the turn
    time.sleep(0.3)  # the run's own untimed work: evaluation, export
    carried = watch.widened()
    assert 0.3 <= carried["window_s"] <= time.perf_counter() - t0
    assert watch.widened() == {}  # once
    watch.start()
    time.sleep(0.35)
    watch.stop()
    assert watch.widened() == {}  # a window long enough is judged on itself


def test_the_monitor_judges_a_short_window_carried_forward_on_a_busy_machine():
    monitor = Monitor(interval=0.01, readings=BusyMachine(cores=1.5))
    monitor.turn()
    monitor.start()
    resources = monitor.stop()
    time.sleep(0.6)
    resources.update(monitor.widened())
    assert resources["window_s"] >= 0.6 and is_busy(resources)
