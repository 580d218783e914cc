"""What the rest of the machine did over a timed window: the CPU time other processes took on
the cores this process may use, the load average at the window's edges, the steal time and the
CPU frequency; and the verdict "measured on a busy machine".

Other processes' CPU time is the machine's busy time on the usable cores (user, nice, system,
irq and softirq of each core this process may run on, from /proc/stat through psutil) minus
this process's own and its children's (live ones, and those already waited for). Their share is
that time over wall time x usable cores. The kernel counts both in clock ticks (10 ms), so the
difference is only known to about `resolution_s` (two ticks per core and two for this process
tree): a window is called busy when other processes' time beyond that resolution exceeds
`threshold` x wall x cores. Steal time (a hypervisor running another machine on these cores)
is recorded beside, not counted as other processes. Load average and frequency are taken where
the system reports them and are absent otherwise. A window shorter than `MIN_WINDOW_S` (a tiny
network's training: milliseconds, where the ticks could tell nothing) is widened back to when the
`Interference` was made, or to the end of its previous window: in a run's process, the time it
spent loading data and building the model, on the same machine a moment before. A run started
ahead of its turn (the bench's pipeline) spends that time beside the run before it, so its turn
(`since_now`) is as far back as it may go; a window still short then is carried forward instead
(`widened`) over the run's own untimed work after it, while nothing else of the harness runs.

The readings come from a `source(cpus) -> Reading`, `read_machine` by default; tests hand in
their own to play a busy or a quiet machine without making one. A source crosses into a run's
fresh process, so it must be picklable (a module-level function or an instance of a
module-level class).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from harness.machine import usable_cores

BUSY_THRESHOLD = 0.10  # other processes above this share of the usable cores make a window "busy"
MIN_WINDOW_S = 0.5  # shorter windows are widened back (at 2 cores the ticks are then 6% of it)
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
BUSY_TAG, SHARE_TAG = "harness.busy", "harness.busy_others_share"


@dataclass(frozen=True)
class Reading:
    """The machine at one instant: CPU seconds since boot summed over the usable cores."""

    busy_s: float  # user + nice + system + irq + softirq (guest time is inside user)
    steal_s: float | None = None  # None where the kernel does not report it
    load1: float | None = None  # one-minute load average
    mhz: float | None = None  # mean current CPU frequency


Source = Callable[[list[int]], Reading]


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return list(range(os.cpu_count() or 1))


def read_machine(cpus: list[int]) -> Reading:
    """The real machine, through psutil: /proc/stat per core on Linux."""
    per_cpu = psutil.cpu_times(percpu=True)
    mine = [per_cpu[i] for i in cpus if i < len(per_cpu)] or per_cpu
    busy = sum(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) for t in mine)
    steal = sum(t.steal for t in mine) if hasattr(mine[0], "steal") else None
    try:
        load1 = psutil.getloadavg()[0]
    except (OSError, AttributeError):
        load1 = None
    try:
        freq = psutil.cpu_freq()
        mhz = freq.current if freq is not None and freq.current > 0 else None
    except (OSError, AttributeError, NotImplementedError):
        mhz = None
    return Reading(busy, steal, load1, mhz)


def own_cpu_s(proc: psutil.Process | None = None) -> float:
    """CPU seconds of this process (its nanosecond clock), its children alive now, and the
    children it has waited for."""
    proc = proc or psutil.Process()
    total = time.process_time()
    try:
        times = proc.cpu_times()
        total += times.children_user + times.children_system
        kids = proc.children(recursive=True)
    except psutil.Error:
        return total
    for child in kids:
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # ended between listing and reading: counted once waited for
            continue
    return total


class Interference:
    """A window's readings of the rest of the machine: `start()`, then `stop() -> figures`."""

    def __init__(self, source: Source | None = None, min_window_s: float = MIN_WINDOW_S) -> None:
        self.source = source or read_machine
        self.cpus = _cpus()
        self.min_window_s = min_window_s
        self._start: tuple[float, float, Reading] | None = None
        self._earliest = self._read()  # how far back a short window may be widened
        self._short: tuple[float, float, Reading] | None = None  # the start of a window still short after stop()

    def _read(self) -> tuple[float, float, Reading]:
        return time.perf_counter(), own_cpu_s(), self.source(self.cpus)

    def since_now(self) -> None:
        """Widen no short window back past this moment (a run's turn: before it, other work of the
        harness may have run beside this process by design)."""
        self._earliest = self._read()

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """Other processes' CPU seconds and share of the usable cores, the resolution of that
        figure, steal seconds, load at both edges, frequency at both edges (what was reported)."""
        if self._start is None:
            raise RuntimeError("stop() before start()")
        end = self._read()
        first = self._start if end[0] - self._start[0] >= self.min_window_s else self._earliest
        self._earliest, self._start = end, None  # nothing carries over into the next window
        self._short = first if end[0] - first[0] < self.min_window_s else None
        return self._figures(first, end)

    def widened(self) -> dict[str, float]:
        """The last window, if it was still shorter than `min_window_s` after `stop()`, carried
        forward to now: its figures over [its start, now]; {} when it was long enough."""
        if self._short is None:
            return {}
        first, end = self._short, self._read()
        self._short, self._earliest = None, end
        return self._figures(first, end)

    def _figures(self, first: tuple[float, float, Reading], end: tuple[float, float, Reading]) -> dict[str, float]:
        (t0, own0, a), (t1, own1, b) = first, end
        cores = min(usable_cores(), len(self.cpus)) or 1
        return figures(t1 - t0, own1 - own0, a, b, cores)


def figures(wall: float, own_s: float, a: Reading, b: Reading, cores: int) -> dict[str, float]:
    """The window's figures from its two edge readings, `own_s` CPU seconds of this process tree
    inside it, on `cores` usable cores."""
    others = max(0.0, (b.busy_s - a.busy_s) - own_s)
    out = {"others_cpu_s": others, "others_share": min(1.0, others / (wall * cores)) if wall > 0 else 0.0,
           "others_resolution_s": (2 * cores + 2) * TICK_S, "cores_watched": float(cores), "window_s": wall}
    if a.steal_s is not None and b.steal_s is not None:
        out["steal_s"] = max(0.0, b.steal_s - a.steal_s)
    for name, first, last in (("load", a.load1, b.load1), ("cpu_mhz", a.mhz, b.mhz)):
        if first is not None:
            out[f"{name}_start"] = first
        if last is not None:
            out[f"{name}_end"] = last
    return out


def is_busy(f: Mapping[str, float], threshold: float = BUSY_THRESHOLD) -> bool:
    """Whether other processes took more than `threshold` of the usable cores over the window,
    beyond what the clock ticks leave uncertain; False where the window was not watched."""
    if "others_cpu_s" not in f or f.get("window_s", 0) <= 0:
        return False
    beyond = f["others_cpu_s"] - f.get("others_resolution_s", 0.0)
    return beyond > threshold * f["window_s"] * f.get("cores_watched", 1.0)


def busy_tags(f: Mapping[str, float], threshold: float = BUSY_THRESHOLD) -> dict[str, str]:
    """The run tags of the verdict: `harness.busy` true or false (none where the window was not
    watched), and other processes' share where busy."""
    if "others_cpu_s" not in f:
        return {}
    busy = is_busy(f, threshold)
    tags = {BUSY_TAG: str(busy).lower(), "harness.busy_threshold": f"{threshold:g}"}
    if busy:
        tags[SHARE_TAG] = f"{f['others_share']:.3f}"
    return tags


def describe(f: Mapping[str, float]) -> str:
    """'other processes used 74% of the 2 usable cores (1.48 cores), load 3.1 -> 3.4' from a window's figures."""
    cores = int(f.get("cores_watched", 1))
    text = (f"other processes used {f['others_share']:.0%} of the {cores} usable "
            f"core{'s' if cores != 1 else ''} ({f['others_share'] * cores:.2f} cores)")
    if "load_start" in f and "load_end" in f:
        text += f", load {f['load_start']:.1f} -> {f['load_end']:.1f}"
    if f.get("steal_s"):
        text += f", {f['steal_s']:.2f} s stolen by the hypervisor"
    return text
