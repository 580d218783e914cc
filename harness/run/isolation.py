"""A run in a fresh spawned process: one engine's imports, threads and memory never touch
another's figures, and a process that dies or is killed is reported in words.

`fresh_process` is the one way the harness starts such a process (runs here, perf's runtimes);
`start_clean` keeps the parent's main script out of it. `RunProcess` is a run's process that
may be started ahead of its turn: it imports its engine, loads its data and builds its model
while the run before it finishes its untimed work and is logged, then waits for its turn
before starting a clock. No two runs' clocks ever overlap, nor a run's clocks anything else
of the harness; what overlaps is only work that no figure times.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import tempfile
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from harness.errors import HarnessError
from harness.run.runner import EpochCallback, RunResult, run
from harness.spec import ExperimentSpec


class RunFailed(HarnessError):
    """A run in a child process ended without a result."""


class _Cancelled(Exception):
    """The parent went away before the run's turn came."""


def _child(conn, spec: ExperimentSpec, engine: str, seed: int, threads: int | None, monitor_args: dict | None,
           export_dir: str | None):
    monitor = None
    if monitor_args is not None:
        from harness.run.monitor import Monitor

        monitor = Monitor(**monitor_args)

    def wait_for_turn() -> None:
        conn.send(("ready", None))
        try:
            conn.recv()
        except (EOFError, OSError):
            raise _Cancelled from None
        if monitor is not None:
            monitor.turn()

    try:
        result = run(spec, engine, seed, threads=threads, monitor=monitor, export_dir=export_dir,
                     on_epoch=lambda r: conn.send(("epoch", r)), before_clocks=wait_for_turn,
                     after_clocks=lambda: conn.send(("released", None)))
        conn.send(("result", result))
    except _Cancelled:
        return
    except HarnessError as e:
        conn.send(("error", (type(e).__name__, str(e), getattr(e, "epoch", None))))
    except BaseException as e:  # a bug: send the traceback so the parent can record it
        conn.send(("error", (type(e).__name__, f"{e}\n{traceback.format_exc()}", None)))
    finally:
        conn.close()


class ChildError(HarnessError):
    """An error raised inside a run's process, carried back to the parent."""

    def __init__(self, kind: str, message: str, epoch: int | None = None) -> None:
        super().__init__(message.splitlines()[0] if message else kind)
        self.kind, self.details, self.epoch = kind, message, epoch

    def __reduce__(self):
        return type(self), (self.kind, self.details, self.epoch)


def start_clean(proc: mp.Process) -> None:
    """Start a spawned process without re-running the parent's main script in it.

    spawn re-imports the parent's `__main__` by its path in the child: the harness script,
    pytest, or a Ray worker's own script. Its imports would then load into the run's
    process and count in its memory. The child needs only the target's module.
    """
    import sys

    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        proc.start()
    finally:
        if path is not None:
            main.__file__ = path


class _PeakRss:
    """The highest resident memory seen of a process, sampled from outside it."""

    def __init__(self, pid: int) -> None:
        import psutil

        try:
            self._proc = psutil.Process(pid)
        except psutil.Error:
            self._proc = None
        self.mb = 0.0

    def sample(self) -> None:
        import psutil

        if self._proc is not None:
            try:
                self.mb = max(self.mb, self._proc.memory_info().rss / 2**20)
            except psutil.Error:
                pass


def died(engine: str, seed: int, exitcode: int | None, peak_mb: float) -> str:
    """Why a run's process ended without a result, in words: a SIGKILL on Linux is most often the
    kernel's out-of-memory killer."""
    import signal

    what = f"the {engine} run of seed {seed}"
    if exitcode == -signal.SIGKILL:
        return (f"{what} was killed (SIGKILL), probably by the kernel for lack of memory: its memory was "
                f"{peak_mb:,.0f} MB when last seen; lower data.train_size or the batch size, or free memory")
    if exitcode is not None and exitcode < 0:
        return f"{what} was killed by signal {signal.Signals(-exitcode).name}"
    return f"{what} died without a result (exit code {exitcode})"


class RunProcess:
    """One run's fresh process, started at once and run when `result` is called.

    It may be started while another run's process finishes: it imports, loads and builds, then
    sends "ready" and waits; `result` answers "go" (by then the run before has ended) and
    gathers what the run sends. `on_released()` is called when the run has nothing timed left
    (after its export), which is when the next run's process may start. With `export`, the
    model is saved as ONNX in a temporary folder of its own (`export_dir`), removed by `close`.
    """

    def __init__(self, spec: ExperimentSpec, engine: str, seed: int, *, threads: int | None = None,
                 monitor: dict | None = None, export: bool = False) -> None:
        self.engine, self.seed = engine, seed
        self._stack = contextlib.ExitStack()
        try:
            self.export_dir = (self._stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-"))
                               if export else None)
            self.proc, self.conn = self._stack.enter_context(
                fresh_process(_child, spec, engine, seed, threads, monitor, self.export_dir, duplex=True))
        except BaseException:
            self._stack.close()
            raise

    def result(self, *, on_epoch: EpochCallback | None = None, on_start: Callable[[int], None] | None = None,
               on_released: Callable[[], None] | None = None) -> RunResult:
        """Lets the run start its clocks and waits for its result. A child that dies raises
        `RunFailed`; an error inside it, `ChildError`."""
        if on_start is not None:
            on_start(self.proc.pid)
        peak = _PeakRss(self.proc.pid)
        while True:
            try:
                while not self.conn.poll(0.25):  # watch the child's memory while it works
                    peak.sample()
                kind, payload = self.conn.recv()
            except EOFError:
                self.proc.join()
                raise RunFailed(died(self.engine, self.seed, self.proc.exitcode, peak.mb)) from None
            if kind == "ready":
                self.conn.send("go")
            elif kind == "epoch":
                if on_epoch is not None:
                    on_epoch(payload)
            elif kind == "released":
                if on_released is not None:
                    on_released()
            elif kind == "result":
                return payload
            else:
                raise ChildError(*payload)

    def close(self, failed: bool = False) -> None:
        """Ends the process (at once when `failed`, else given 10 s) and removes its folder."""
        if failed and self.proc.is_alive():
            self.proc.terminate()
        self._stack.close()


def run_isolated(spec: ExperimentSpec, engine: str, seed: int, *, threads: int | None = None,
                 on_epoch: EpochCallback | None = None, monitor: dict | None = None,
                 on_start: Callable[[int], None] | None = None) -> RunResult:
    """`run` in a fresh spawned process. Epoch records reach `on_epoch` as they come;
    `on_start(pid)` learns the child's process id. A child that dies raises `RunFailed`."""
    process = RunProcess(spec, engine, seed, threads=threads, monitor=monitor)
    failed = True
    try:
        result = process.result(on_epoch=on_epoch, on_start=on_start)
        failed = False
        return result
    finally:
        process.close(failed)


@contextlib.contextmanager
def fresh_process(target: Callable[..., None], *args: Any, duplex: bool = False) -> Iterator[tuple[mp.Process, Any]]:
    """`target(conn, *args)` started in a fresh spawned process (`start_clean`); yields the process
    and the parent's end of its pipe (receiving only unless `duplex`). On the way out the process
    is given 10 s to end, or stopped at once when the caller leaves by an exception (an interrupt
    must not wait for it)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=duplex)
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    start_clean(proc)
    child.close()
    try:
        yield proc, parent
    except BaseException:
        if proc.is_alive():
            proc.terminate()
        raise
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        parent.close()
