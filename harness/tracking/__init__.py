"""MLflow: the only package of the harness that imports it.

store.py says which store and keeps it true (busy timeout, schema lock, retries, orphan
runs); runs.py writes the runs of a bench and of a perf measurement; read.py reads them
back for the report and for `harness evaluate`; ui.py serves the MLflow UI on a store and
server.py a shared MLflow server on PostgreSQL (both imported only by their commands).
"""

from harness.errors import TrackingError
from harness.tracking.read import (
    bench_ids,
    bench_index,
    bench_runs,
    latest_perf,
    metric_history,
    read_run,
    run_counts,
    run_model,
)
from harness.tracking.runs import (
    ENGINE_COLOURS,
    Tracker,
    attach_report,
    curves_figure,
    environment_tags,
    log_perf,
    process_tags,
)
from harness.tracking.store import (
    DEFAULT_URI,
    HOST_TAG,
    PID_TAG,
    REASON_TAG,
    connect,
    quiet,
    reap_orphans,
    resolve_uri,
    retrying,
    shown_uri,
    sqlite_path,
)

__all__ = ["DEFAULT_URI", "ENGINE_COLOURS", "HOST_TAG", "PID_TAG", "REASON_TAG", "Tracker", "TrackingError",
           "attach_report", "bench_ids", "bench_index", "bench_runs", "connect", "curves_figure", "environment_tags",
           "latest_perf", "log_perf", "metric_history", "process_tags", "quiet", "read_run", "reap_orphans",
           "resolve_uri", "retrying", "run_counts", "run_model", "shown_uri",
           "sqlite_path"]
