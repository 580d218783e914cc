"""The Ray executor: each (experiment, engine, seed) run a Ray task on a node of its own.

A task reserves every CPU of a node, so that two runs never share one and their timings
stay clean; it runs the experiment in a fresh process, as the local executor does, and
logs to the shared tracking server itself. The driver creates each child run before
submitting its task (so that a task that dies can be marked FAILED), gathers the results
for the comparison, and on Ctrl-C cancels the tasks and marks their runs KILLED.
The only module that imports ray; install it with `pip install .[ray]`.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness import spec as specs
from harness import tracking
from harness.errors import HarnessError


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise HarnessError("the Ray executor needs ray: pip install '.[ray]' (or pip install ray)") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise HarnessError(f"cannot join the Ray cluster at {address or 'a new local one'}: {e}") from None
        nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")]
        # a whole node per task: the smallest node's CPU count, so that every node can take a task
        self.cpus_per_task = min(n["Resources"]["CPU"] for n in nodes)
        self._task = ray.remote(max_retries=0)(_remote_run)

    def run(self, tracker: tracking.Tracker, s: specs.ExperimentSpec, jobs, threads: int,
            parent_id: str, busy_threshold: float | None = None) -> Iterator[tuple[str, int, object]]:
        ray = self.ray
        pending = {}
        for engine, seed in jobs:
            run_id = tracker.create_child(s, engine, seed, threads, parent_id)
            ref = self._task.options(num_cpus=self.cpus_per_task).remote(
                tracker.uri, tracker.bench_id, s.to_dict(), engine, seed, threads, run_id, busy_threshold)
            pending[ref] = (engine, seed, run_id)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                engine, seed, run_id = pending.pop(ready[0])
                try:
                    yield engine, seed, ray.get(ready[0])
                except ray.exceptions.RayTaskError as e:  # the task raised: it closed its run itself
                    cause = e.cause if isinstance(getattr(e, "cause", None), HarnessError) else None
                    yield engine, seed, cause or HarnessError(f"the task failed: {str(e).splitlines()[0]}")
                except ray.exceptions.RayError as e:  # the task or its worker died: close the run for it
                    tracker.end(run_id, "FAILED", f"the Ray task died: {type(e).__name__}")
                    yield engine, seed, HarnessError(f"the Ray task died ({type(e).__name__})")
        except BaseException:
            for ref, (_, _, run_id) in pending.items():
                ray.cancel(ref, force=True)
                tracker.end(run_id, "KILLED", "interrupted: the bench was stopped")
            raise


def _remote_run(uri: str, bench_id: str, raw_spec: dict, engine: str, seed: int, threads: int, run_id: str,
                busy_threshold: float | None = None):
    """In a Ray worker: run one (engine, seed) in a fresh process and log it into the run `run_id`."""
    from harness.run.bench import run_one
    from harness.run.interference import BUSY_THRESHOLD

    tracking.quiet()
    uri = tracking.connect(uri)
    return run_one(tracking.Tracker(uri, bench_id), specs.from_dict(raw_spec), engine, seed, threads, run_id,
                   busy_threshold=BUSY_THRESHOLD if busy_threshold is None else busy_threshold)
