"""Saving a session to MLflow: its experiment file, with the epochs played, run by `harness bench`.

Nothing here logs by itself: the session's file goes through `harness.run.bench.bench`, so the
saved runs are exactly what `harness bench FILE` logs (a parent run, a child per engine in a
fresh process, params, curves, ONNX models), and since a lab's epoch n is the runner's epoch n,
their final figures are the page's. Saves run one at a time, each in a thread of its own.

A save names the store by its absolute path (a sqlite file), and links the parent run in the
MLflow UI only where a UI answers with that very run (`ui_link`): `harness ui`'s default
address, or the tracking server itself; a run id is a random UUID, so a UI that knows it serves
this store. No UI answering, no link.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.run import bench
from harness.tracking import resolve_uri, shown_uri, sqlite_path

UI_URL = "http://127.0.0.1:5000"  # where `harness ui` (and `make ui`) serves by default
UI_PROBE_S = 2.0  # a UI that does not answer within this is taken as absent
SAME = 1e-9  # a saved figure within this of the page's is the page's (float64 runs repeat bitwise)
KEEP_FINISHED = 64  # finished saves kept for their pages to read (a session's latest); older ones are dropped


class SaveUnderWay(HarnessError):
    """A session's save is queued or running: one at a time per session."""


def absolute_uri(uri: str) -> str:
    """A sqlite URI with its file's absolute path (the relative one names the server's folder); others as given."""
    db = sqlite_path(uri)
    if db is None:
        return uri
    query = uri.partition("?")[2]
    return f"sqlite:///{db}" + (f"?{query}" if query else "")


def ui_urls(uri: str, given: Sequence[str] = (UI_URL,)) -> tuple[str, ...]:
    """Where a UI on this store may be: the tracking server itself (an http store serves its UI), then `given`."""
    served = uri.startswith(("http://", "https://")) and "@" not in uri  # a link never carries a password
    own = (uri.rstrip("/"),) if served else ()
    return own + tuple(u.rstrip("/") for u in given if u.rstrip("/") not in own)


def ui_link(run_id: str, urls: Sequence[str], timeout: float = UI_PROBE_S) -> str | None:
    """The run's page in the first UI of `urls` that serves it (its REST API returns this run id), else None."""
    for url in urls:
        query = urllib.parse.urlencode({"run_id": run_id})
        try:
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/runs/get?{query}", timeout=timeout) as r:
                info = json.loads(r.read())["run"]["info"]
        except (OSError, ValueError, KeyError, TypeError):  # no UI there, not MLflow, or not this run
            continue
        if info.get("run_id") == run_id:
            return f"{url}/#/experiments/{info['experiment_id']}/runs/{run_id}"
    return None


@dataclass
class SaveJob:
    id: str
    experiment: str
    epochs: int
    page: dict[str, dict[str, float]]  # per engine, the page's test metric and loss at that epoch
    state: str = "queued"  # queued, running, done, failed
    log: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "experiment": self.experiment, "epochs": self.epochs,
                "page": self.page, "log": list(self.log[-20:]), "message": self.message, **self.result}


class Saver:
    """The saves of one server, into one tracking store, one at a time."""

    def __init__(self, uri: str | None = None, uis: Sequence[str] = (UI_URL,)) -> None:
        self.uri = absolute_uri(resolve_uri(uri))
        self.uis = ui_urls(self.uri, uis)
        self._lock = threading.Lock()  # held by the running save: one at a time
        self._jobs_lock = threading.Lock()
        self._jobs: dict[str, SaveJob] = {}  # a session's latest save, the latest last
        self._threads: list[threading.Thread] = []

    def start(self, sid: str, text: str, name: str, epochs: int, page: dict[str, dict[str, float]]) -> SaveJob:
        """Queue a save of this session; `SaveUnderWay` if one is queued or running (checked and registered at once)."""
        with self._jobs_lock:
            latest = self._jobs.get(sid)
            if latest is not None and latest.state in ("queued", "running"):
                raise SaveUnderWay("a save of this session is under way; wait for it to finish")
            job = SaveJob(f"{sid}-{time.monotonic_ns()}", name, epochs, page)
            self._jobs.pop(sid, None)
            self._jobs[sid] = job
            finished = [s for s, j in self._jobs.items() if j.state in ("done", "failed")]
            for s in finished[:max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[s]
            thread = threading.Thread(target=self._run, args=(job, text, name), name=f"save-{job.id}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()  # under the lock: a save counts as under way from the moment it is accepted
        return job

    def under_way(self) -> int:
        with self._jobs_lock:
            return sum(t.is_alive() for t in self._threads)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the saves under way; True if none is left."""
        deadline = time.monotonic() + timeout
        with self._jobs_lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def latest(self, sid: str) -> SaveJob | None:
        with self._jobs_lock:
            return self._jobs.get(sid)

    def _run(self, job: SaveJob, text: str, name: str) -> None:
        """The save, ending `done` or `failed` with the reason whatever goes wrong: a running job nobody ends
        would refuse every later save of its session."""
        try:
            with self._lock, tempfile.TemporaryDirectory(prefix="harness-playground-") as tmp:
                job.state = "running"
                path = Path(tmp) / f"{name}.toml"
                path.write_text(text)
                self._bench(job, path)
        except HarnessError as e:
            job.state, job.message = "failed", str(e)
        except Exception as e:  # noqa: BLE001  a store's own failure, or one reading its outcome: the page must hear
            job.state, job.message = "failed", f"{type(e).__name__}: {e}"

    def _bench(self, job: SaveJob, path: Path) -> None:
        """`harness bench` on the file, and its figures set beside the page's."""
        bench_id, outcomes = bench.bench([path], uri=self.uri, out=job.log.append)
        outcome = outcomes[0]
        metric = f"test_{outcome.spec.evaluation.metric}"
        runs = {engine: {"test_metric": r.final[metric], "test_loss": r.final["test_loss"]}
                for (engine, _), r in outcome.results.items()}
        same = all(abs(runs[e][k] - job.page[e][k]) <= SAME for e in runs for k in ("test_metric", "test_loss"))
        job.result = {"bench_id": bench_id, "parent_run_id": outcome.parent_run_id, "uri": shown_uri(self.uri),
                      "runs": runs, "failures": {e: msg for (e, _), msg in outcome.failures.items()},
                      "same_as_page": same and not outcome.failures, "ui_probed": list(self.uis),
                      "ui_link": ui_link(outcome.parent_run_id, self.uis)}
        job.state = "failed" if outcome.failures else "done"
        if outcome.failures:
            job.message = "; ".join(f"{e}: {msg}" for (e, _), msg in outcome.failures.items())
