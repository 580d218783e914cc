"""The scratch engine's own threads, for work that NumPy and BLAS do not spread over cores.

A convolution's im2col copies are single-threaded NumPy passes, and its per-sample products
are too thin for BLAS to split well; so a layer splits its batch into one contiguous range of
samples per worker instead, each worker running its copies and products on one BLAS thread:
NumPy's copies and BLAS release the GIL, so the workers run side by side.

The number of workers is the number of threads BLAS has been given (`threadpoolctl`, which
`harness.engines.pin_threads` sets for a run): one knob for the whole engine. While workers
run, BLAS is held at one thread, so that two workers never each start a pool of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MIN_ELEMENTS = 1 << 14  # the least work worth a worker's hand-over (about 20 µs): elements per worker

_lock = threading.Lock()
_busy = threading.Lock()  # held while the workers run one caller's work
_blas: list | None = None  # threadpoolctl's controllers of the BLAS libraries NumPy loaded
_budget = 0  # the workers of a network that holds BLAS at one thread (`own_threads`); 0 outside one
_pool: list = []  # the workers started so far, each used by one caller at a time


def _controllers() -> list:
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas


def workers() -> int:
    """How many threads the engine may use now: BLAS's thread count (1 without a known BLAS), or
    what it was when `own_threads` took them."""
    if _budget:
        return _budget
    blas = _controllers()
    return max(1, blas[0].get_num_threads()) if blas else 1


@contextmanager
def own_threads(enabled: bool = True) -> Iterator[None]:
    """BLAS held at one thread for the duration, its threads given to the workers instead.

    For a network whose heavy layers split their batches themselves: OpenBLAS's idle threads
    spin for a while after every threaded call, on the very cores the workers need (measured on
    the residual CNN: 8.0 ms a batch with BLAS threading its per-sample products, 9.9 ms with
    workers beside spinning BLAS threads, 6.9 ms with BLAS at one thread and the workers alone)."""
    global _budget
    blas = _controllers()
    n = max(1, blas[0].get_num_threads()) if blas else 1
    if not enabled or _budget or n == 1:
        yield
        return
    before = [c.get_num_threads() for c in blas]
    for c in blas:
        c.set_num_threads(1)
    _budget = n
    try:
        yield
    finally:
        _budget = 0
        for c, k in zip(blas, before, strict=True):
            c.set_num_threads(k)


class _Worker(threading.Thread):
    """A daemon thread that runs one job at a time, handed over through two locks: the cheapest
    wake-up CPython has (a pool's queue and futures cost several times more per job)."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="scratch-worker")
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job: Callable[[], None] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        while True:
            self._go.acquire()
            try:
                self._job()
            except BaseException as e:  # noqa: BLE001 - handed to the caller, raised there
                self.error = e
            self._done.release()

    def submit(self, job: Callable[[], None]) -> None:
        self._job, self.error = job, None
        self._go.release()

    def join_job(self) -> BaseException | None:
        self._done.acquire()
        return self.error


def _workers(n: int) -> list[_Worker]:
    with _lock:
        while len(_pool) < n:
            _pool.append(_Worker())
        return _pool[:n]


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) in at most `parts` contiguous ranges of nearly equal length, none empty."""
    parts = max(1, min(parts, n))
    q, r = divmod(n, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + q + (i < r))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def min_samples(per_sample: int) -> int:
    """The fewest samples worth a worker of their own, for samples of `per_sample` elements."""
    return max(1, -(-MIN_ELEMENTS // max(1, per_sample)))


def over_samples(n: int, work: Callable[[int, int, int], None], min_per_worker: int = 1) -> None:
    """`work(worker, start, end)` over [0, n) split between the workers, each range at least
    `min_per_worker` samples long; BLAS on one thread meanwhile. This thread works the first
    range itself; it runs alone when there is one worker or too few samples. Every range is
    finished before an exception in one of them is raised here."""
    parts = min(workers(), n // max(1, min_per_worker))
    if parts <= 1 or not _busy.acquire(blocking=False):  # one caller at a time; another runs alone
        work(0, 0, n)
        return
    blas = [] if _budget else _controllers()  # under own_threads BLAS is at one thread already
    before = [c.get_num_threads() for c in blas]
    for c in blas:
        c.set_num_threads(1)
    try:
        ranges = split(n, parts)
        helpers = _workers(parts - 1)
        for i, (helper, (s, e)) in enumerate(zip(helpers, ranges[1:], strict=True), 1):
            helper.submit(lambda i=i, s=s, e=e: work(i, s, e))
        try:
            work(0, *ranges[0])
        finally:
            errors = [helper.join_job() for helper in helpers]
        for error in errors:
            if error is not None:
                raise error
    finally:
        for c, k in zip(blas, before, strict=True):
            c.set_num_threads(k)
        _busy.release()
