"""Resource use of this process (and its children) over a timed window, sampled by psutil.

A thread samples CPU times, RSS and thread count every `interval` seconds between
`start()` and `stop()`; the first and last samples are taken on the caller's thread, at
the window's edges, so that even a window shorter than one interval is measured and the
CPU seconds and mean CPU % are exact whatever happens between. The CPU time the sampling
itself costs is reported as `monitor_overhead_s`.

CPU % is a ratio of `cpu_times` deltas to wall time. The kernel counts CPU time in clock
ticks (10 ms), so a rate over one 50 ms interval can be off by 20 percentage points per
tick and, summed over threads, read 700% on two cores; the window's total takes this
process's own CPU time from the nanosecond clock at its edges (`time.process_time`), so a
window of a few ticks still reads true. The peak rate is taken over windows of at least
`PEAK_WINDOW_S` (a tick is then 2% of a core), on the same clock as the mean (this process's
share from the nanosecond clock at every sample), and the whole window is one of them: the peak
is never below the mean (counted in ticks alone, and missing the window's tail when samples came
late, it once read 95.8% beside a mean of 96.4%). Every rate is bounded by 100 x the cores this
process may use. `rss_baseline_mb` is the resident memory
when the window opens (imports and data already loaded); `rss_peak_mb` the largest seen
inside the window, so that the training's own memory is `rss_peak_mb - rss_baseline_mb`.
Nothing carries over from one window to the next. Over the same window,
`harness.run.interference` reads what the rest of the machine did (other processes' CPU time,
load, steal, frequency); `readings` hands it a source other than the real machine.

The sampler needs the GIL: while the measured code runs pure Python without releasing it
(a tiny network's per-step overhead), samples come further apart than `interval`, which
`monitor_samples` shows. NumPy and torch release the GIL in their kernels.
"""

from __future__ import annotations

import threading
import time

import psutil

from harness.machine import usable_cores
from harness.run.interference import Interference, Source

MB = 1024 * 1024
PEAK_WINDOW_S = 0.5


class Monitor:
    def __init__(self, interval: float = 0.05, children: bool = True, readings: Source | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self.interval, self.children = interval, children
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[tuple[float, float, float, int, int]] = []  # (t, user, system, rss, threads)
        self._own: list[tuple[float, float]] = []  # (this process's CPU s by the nanosecond clock, by psutil's ticks)
        self._overhead = 0.0
        self._listed: list[psutil.Process] | None = None
        self._relist_every = max(1, round(1.0 / interval))
        self._others = Interference(readings)

    def _processes(self) -> list[psutil.Process]:
        # Listing children scans every process of the machine (milliseconds): do it about once a second.
        if self.children and (self._listed is None or len(self._samples) % self._relist_every == 0):
            try:
                self._listed = self._proc.children(recursive=True)
            except psutil.Error:
                self._listed = []
        return [self._proc, *(self._listed or [])]

    def _sample(self) -> None:
        c0 = time.thread_time()
        precise = time.process_time()
        user = system = 0.0
        rss = threads = 0
        for p in self._processes():
            try:
                with p.oneshot():
                    cpu = p.cpu_times()
                    if p is self._proc:
                        self._own.append((precise, cpu.user + cpu.system))
                    user, system = user + cpu.user, system + cpu.system
                    rss += p.memory_info().rss
                    threads += p.num_threads()
            except psutil.Error:  # a child that ended between listing and reading
                continue
        self._samples.append((time.perf_counter(), user, system, rss, threads))
        self._overhead += time.thread_time() - c0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._listed = None
        self._samples.clear()
        self._own.clear()
        self._overhead = 0.0
        self._stop.clear()
        self._others.start()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="harness-monitor", daemon=True)
        self._thread.start()

    def turn(self) -> None:
        """The run's turn has come: what ran beside this process before it is not the window's."""
        self._others.since_now()

    def widened(self) -> dict[str, float]:
        """Other processes' figures of a window too short to judge, carried forward to now (`Interference.widened`)."""
        return self._others.widened()

    def stop(self) -> dict[str, float]:
        """Stop sampling; the window's figures (CPU seconds, CPU %, RSS in MB, threads)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        others = self._others.stop()
        return {**window_figures(self._samples, self._own, self._overhead, usable_cores()), **others}

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.result = self.stop()


def window_figures(s: list[tuple[float, float, float, int, int]], own: list[tuple[float, float]], overhead: float,
                   cores: int) -> dict[str, float]:
    """The window's figures from its samples (t, user, system, rss, threads), this process's own
    CPU seconds at each sample (nanosecond clock, ticks) and the sampler's cost, on `cores` cores."""
    wall = s[-1][0] - s[0][0]
    user, system = s[-1][1] - s[0][1], s[-1][2] - s[0][2]
    user, system = _exact_at_edges(user, system, own)
    bound = 100.0 * cores
    mean = min(bound, 100 * (user + system) / wall) if wall > 0 else 0.0
    rss = [x[3] for x in s]
    return {
        "wall_s": wall,
        "cpu_user_s": user,
        "cpu_system_s": system,
        "cpu_percent_mean": mean,
        "cpu_percent_max": min(bound, max([mean, *_peak_rates([x[0] for x in s], _cpu_seconds(s, own))])),
        "rss_baseline_mb": rss[0] / MB,
        "rss_peak_mb": max(rss) / MB,
        "rss_mean_mb": sum(rss) / len(rss) / MB,
        "rss_train_mb": (max(rss) - rss[0]) / MB,
        "threads_max": max(x[4] for x in s),
        "monitor_samples": len(s),
        "monitor_overhead_s": overhead,
    }


def _exact_at_edges(user: float, system: float, own: list[tuple[float, float]]) -> tuple[float, float]:
    """User and system seconds with this process's share taken from the nanosecond clock at the
    window's edges instead of psutil's 10 ms ticks (a window of a few ticks would read 0 % or
    double); the clock does not split user from system, so its total is split as the ticks did."""
    if len(own) < 2:
        return user, system
    ticks = own[-1][1] - own[0][1]
    total = user + system - ticks + (own[-1][0] - own[0][0])
    share = user / (user + system) if user + system > 0 else 1.0
    return total * share, total * (1 - share)


def _cpu_seconds(s: list[tuple[float, float, float, int, int]], own: list[tuple[float, float]]) -> list[float]:
    """The CPU seconds counted at each sample, this process's share by the nanosecond clock (as
    `_exact_at_edges` takes it for the whole window) where it was read at every sample."""
    cpu = [x[1] + x[2] for x in s]
    if len(own) != len(s):  # this process could not be read at some sample: the ticks alone
        return cpu
    return [c - ticks + precise for c, (precise, ticks) in zip(cpu, own, strict=True)]


def _peak_rates(t: list[float], cpu: list[float]) -> list[float]:
    """CPU % over each window from a sample (time `t`, CPU seconds `cpu`) to the first one at least
    PEAK_WINDOW_S later."""
    rates, j = [], 0
    for i in range(len(t)):
        j = max(j, i + 1)
        while j < len(t) and t[j] - t[i] < PEAK_WINDOW_S:
            j += 1
        if j == len(t):
            break
        rates.append(100 * (cpu[j] - cpu[i]) / (t[j] - t[i]))
    return rates
