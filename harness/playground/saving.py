"""Saving a session to MLflow: its experiment file, with the epochs played, run by `harness bench`.

Nothing here logs by itself: the session's file goes through `harness.bench.bench`, so the
saved runs are exactly what `harness bench FILE` logs (a parent run, a child per engine in a
fresh process, params, curves, ONNX models), and since a lab's epoch n is the runner's epoch n,
their final figures are the page's. Saves run one at a time, each in a thread of its own.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import bench
from harness.errors import HarnessError
from harness.tracking import resolve_uri

SAME = 1e-9  # a saved figure within this of the page's is the page's (float64 runs repeat bitwise)


def shown_uri(uri: str) -> str:
    """The store's URI without a password."""
    return re.sub(r"://([^:/@]+):[^@/]+@", r"://\1:***@", uri)


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

    def __init__(self, uri: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self._lock = threading.Lock()
        self._jobs: dict[str, SaveJob] = {}

    def start(self, sid: str, text: str, name: str, epochs: int, page: dict[str, dict[str, float]]) -> SaveJob:
        job = SaveJob(f"{sid}-{time.monotonic_ns()}", name, epochs, page)
        self._jobs[sid] = job  # a session's latest save
        threading.Thread(target=self._run, args=(job, text, name), name=f"save-{job.id}", daemon=True).start()
        return job

    def latest(self, sid: str) -> SaveJob | None:
        return self._jobs.get(sid)

    def _run(self, job: SaveJob, text: str, name: str) -> None:
        with self._lock, tempfile.TemporaryDirectory(prefix="harness-playground-") as tmp:
            job.state = "running"
            path = Path(tmp) / f"{name}.toml"
            path.write_text(text)
            try:
                bench_id, outcomes = bench.bench([path], uri=self.uri, out=job.log.append)
            except HarnessError as e:
                job.state, job.message = "failed", str(e)
                return
            except Exception as e:  # noqa: BLE001  a store's own failure: the page must hear of it
                job.state, job.message = "failed", f"{type(e).__name__}: {e}"
                return
            outcome = outcomes[0]
            metric = f"test_{outcome.spec.evaluation.metric}"
            runs = {engine: {"test_metric": r.final[metric], "test_loss": r.final["test_loss"]}
                    for (engine, _), r in outcome.results.items()}
            same = all(abs(runs[e][k] - job.page[e][k]) <= SAME for e in runs for k in ("test_metric", "test_loss"))
            job.result = {"bench_id": bench_id, "parent_run_id": outcome.parent_run_id, "uri": shown_uri(self.uri),
                          "runs": runs, "failures": {e: msg for (e, _), msg in outcome.failures.items()},
                          "same_as_page": same and not outcome.failures}
            job.state = "failed" if outcome.failures else "done"
            if outcome.failures:
                job.message = "; ".join(f"{e}: {msg}" for (e, _), msg in outcome.failures.items())
