"""Machines played to the monitor (`Monitor(readings=...)`, `perf.measure(readings=...)`): busy
or quiet whatever really runs beside the tests. Module-level classes, so that they cross into a
run's fresh process."""

import time
from dataclasses import dataclass

from harness.run.interference import Reading, own_cpu_s, read_machine


@dataclass(frozen=True)
class BusyMachine:
    """The real machine, plus `cores` cores' worth of other processes' CPU time for every second."""

    cores: float = 1.5

    def __call__(self, cpus):
        real = read_machine(cpus)
        return Reading(real.busy_s + self.cores * time.perf_counter(), 0.0, 3.0, real.mhz)


@dataclass(frozen=True)
class QuietMachine:
    """A machine on which only this process tree uses CPU: its busy time is this tree's own."""

    def __call__(self, cpus):
        return Reading(own_cpu_s(), 0.0, 0.1, None)


def executor(readings):
    """The bench's local executor with its runs' monitors fed `readings`."""
    from harness.run.bench import MONITOR, LocalExecutor

    return LocalExecutor({**MONITOR, "readings": readings})


def quiet():
    """A bench executor on a quiet machine: what the tests of everything else use, so that other
    processes running beside them leave out no run of their speedups."""
    return executor(QuietMachine())
