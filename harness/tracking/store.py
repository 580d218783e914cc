"""The tracking store: which one, reaching it, and keeping it true under faults and concurrency."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from harness.errors import TrackingError, usable_path

DEFAULT_URI = "sqlite:///mlflow.db"
BENCH_TAG = "harness.bench_id"
KIND_TAG = "harness.kind"  # "bench" (parent) or "run" (child)
REASON_TAG = "harness.failure_reason"
VARIANT_TAG = "harness.variant"  # a sweep's combination, on the parent run
PID_TAG = "harness.pid"
PID_START_TAG = "harness.pid_started"  # the process's start time: a reused pid is another process
HOST_TAG = "harness.host"
SQLITE_TIMEOUT_S = 60
PG_CONNECT_TIMEOUT_S = 10
LOCK_RETRIES = 5
EPOCH_TAG = "harness.failure_epoch"
RESOURCE_KEYS = ("cpu_user_s", "cpu_system_s", "cpu_percent_mean", "cpu_percent_max", "rss_baseline_mb",
                 "rss_peak_mb", "rss_train_mb", "rss_mean_mb", "threads_max", "monitor_samples", "monitor_overhead_s")
# what the rest of the machine did over the same window (harness.run.interference), logged under interference/
INTERFERENCE_KEYS = ("others_cpu_s", "others_share", "others_resolution_s", "cores_watched", "window_s", "steal_s",
                     "load_start", "load_end", "cpu_mhz_start", "cpu_mhz_end")



_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*):[^\s/]*@")  # scheme://user:password@
_SECRET_QUERY = re.compile(r"([?&;](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)[^&;\s]*",
                           re.IGNORECASE)


def shown_uri(text: str, uri: str | None = None) -> str:
    """`text` (a URI, or a message that quotes one) as it may be printed: the password of every
    `scheme://user:password@` and every secret of a query string (`?token=...`) as ***, and the
    secrets of `uri` wherever else they appear (MLflow's own messages split a URI and quote its parts).
    The one way a store's URI is shown: bench, report, ui, evaluate, errors."""
    for secret in _secrets(uri) if uri else ():
        text = text.replace(secret, "***")
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def _secrets(uri: str) -> list[str]:
    from urllib.parse import unquote

    found = [m.group(0).split(":", 1)[1] for m in re.finditer(r"(?<=://)[^\s/@:]*:[^\s/]*(?=@)", uri)]
    found += [m.group(0).split("=", 1)[1] for m in _SECRET_QUERY.finditer(uri)]
    return sorted({s for value in found for s in (value, unquote(value)) if len(s) >= 3}, key=len, reverse=True)


# what `harness bench` writes on every parent (the first four) and child run, which the report reads
WRITTEN = ("params.experiment", "params.seeds", "params.engines", "params.variant", "params.engine", "params.seed",
           "params.threads", "params.training.epochs", "params.training.batch_size", "params.evaluation.metric")


def check_written(runs: Any, bench_id: str, uri: str | None) -> None:
    """Refuse, in one line, runs that carry the harness's tags but not what `harness bench` writes with
    them (tags set by another tool, or by hand)."""
    missing = [c for c in WRITTEN if c not in runs.columns]
    if missing:
        raise TrackingError(f"the runs of bench {bench_id!r} in {shown_uri(resolve_uri(uri))} carry the harness's "
                            f"tags but not what harness bench writes ({', '.join(missing[:3])} ...): not a bench "
                            "of the harness; name another with --bench-id")


def resolve_uri(uri: str | None = None) -> str:
    """The tracking URI: the argument, else $MLFLOW_TRACKING_URI, else ./mlflow.db."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (query string dropped, %-escapes read as SQLAlchemy reads
    them: sqlite:///my%20store.db is `my store.db`), else None."""
    from urllib.parse import unquote

    if not uri.startswith("sqlite:///"):
        return None
    return usable_path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0]), "the tracking store's file",
                       TrackingError).resolve()


def connect(uri: str | None = None, create: bool = True) -> str:
    """Point MLflow at the store and check that it answers; a clear error if it does not.

    For sqlite, the URI gains a busy timeout (a writer waits up to SQLITE_TIMEOUT_S for
    another process's lock instead of failing), and creating or migrating the schema is
    serialised between processes with a lock file beside the database. A new store's schema is
    made in a temporary file moved into place (`_create_sqlite`), and only where `create` (a
    command that only reads says that the store is missing instead). Returns the URI used.
    """
    uri = resolve_uri(uri)
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        except requests.RequestException as e:
            raise TrackingError(shown_uri(f"the tracking server {uri} does not answer ({type(e).__name__}); start "
                                          "it or pass another --tracking-uri")) from None
    if uri.startswith("postgresql"):
        if "connect_timeout=" not in uri:  # a server that never answers would hang the first connection
            uri += ("&" if "?" in uri else "?") + f"connect_timeout={PG_CONNECT_TIMEOUT_S}"
        _probe_database(uri)
    db = sqlite_path(uri)
    if db is not None:
        if not uri.removeprefix("sqlite:///").split("?", 1)[0] or db.is_dir():
            raise TrackingError(f"the tracking URI {uri} names no database file; give one, such as "
                                "sqlite:///mlflow.db")
        if not db.parent.is_dir():
            raise TrackingError(f"the folder of the tracking store {uri} does not exist: {db.parent}")
        if not create and _new(db):
            raise TrackingError(f"no tracking store at {db}: `harness bench` (or `make bench`) fills one, or name "
                                "another with --tracking-uri")
        if "timeout=" not in uri:
            uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_TIMEOUT_S}"
    mlflow.set_tracking_uri(uri)
    try:
        with _file_lock(db):
            if db is not None and _new(db):
                _create_sqlite(db)
            MlflowClient().search_experiments(max_results=1)
    except Exception as e:  # MLflow raises many kinds; all mean the same to the user
        raise TrackingError(shown_uri(f"cannot use the tracking store {uri}: {str(e).splitlines()[0]}", uri)) from None
    return uri


def _probe_database(uri: str) -> None:
    """One connection to a database store, at once: MLflow would retry for many minutes (with a
    warning per try) before it gave up on a server that is down or does not answer."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect():
            pass
    except Exception as e:  # the driver's own error types; all mean the store cannot be reached
        raise TrackingError(shown_uri(f"the tracking store {uri} does not answer: "
                                      f"{str(_root_cause(e)).strip().splitlines()[0][:300]}", uri)) from None
    finally:
        engine.dispose()


def _new(db: Path) -> bool:
    return not db.exists() or db.stat().st_size == 0


def _create_sqlite(db: Path) -> None:
    """A new sqlite store: MLflow's tables and migrations run on a temporary file beside it, moved into
    place when complete. A signal (Ctrl-C) in the middle leaves no store rather than a half-made one
    that every later command would fail on ("duplicate column name", "table ... already exists")."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    part = db.with_name(f".{db.name}.{os.getpid()}.creating")
    try:
        engine = sqlalchemy.create_engine(f"sqlite:///{part}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(part, db)
    finally:
        part.unlink(missing_ok=True)


@contextlib.contextmanager
def _file_lock(db: Path | None) -> Iterator[None]:
    """An exclusive lock on `<db>.lock` (POSIX), so that two processes never migrate one schema at once.
    A store whose folder takes no new file (a read-only copy or archive) is used without it: nothing
    can be written there to race over."""
    if db is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: MLflow's own retries are all there is
        yield
        return
    try:
        f = open(db.with_name(db.name + ".lock"), "a")
    except OSError:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class StoreWriteError(TrackingError):
    """The store answered but refused what was written (read-only, full, or changed underneath)."""

    exit_code = 1


def retrying(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)`, tried again with backoff while sqlite says "database is locked". Any
    other failure of the store (read-only or immutable file, full disk, an experiment deleted
    meanwhile) becomes one StoreWriteError naming the store and the cause."""
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except (MlflowException, SQLAlchemyError, OSError) as e:
            if "database is locked" in str(e) and attempt < LOCK_RETRIES:
                time.sleep(0.25 * 2**attempt)
                continue
            cause = _deleted(str(_root_cause(e)).strip().splitlines() or [type(e).__name__])[0][:300]
            uri = mlflow.get_tracking_uri()
            raise StoreWriteError(shown_uri(f"the tracking store {uri} failed: {cause}; what was saved before "
                                            "stays as it was", uri)) from None
    raise AssertionError("unreachable")


def _deleted(lines: list[str]) -> list[str]:
    """MLflow's words for a run or experiment deleted meanwhile, said as what happened."""
    found = re.match(r"The (run|experiment) (\S+) must be in the 'active' state\. Current state is deleted", lines[0])
    if found:
        return [f"the {found[1]} {found[2]} was deleted meanwhile (in the MLflow UI or by another client)"]
    return lines


def close_deleted(uri: str, run_id: str, status: str, reason: str) -> bool:
    """End a run that MLflow's API no longer changes because it was deleted (its experiment deleted
    in the UI while the bench ran), in a database store directly, so that the trash holds no run
    that looks RUNNING if it is restored. Whether it was done (never through a tracking server)."""
    try:
        from mlflow.entities import LifecycleStage
        from mlflow.store.tracking.dbmodels.models import SqlTag
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = MlflowClient(uri)._tracking_client.store
        if not isinstance(store, SqlAlchemyStore):
            return False

        def close() -> bool:
            with store.ManagedSessionMaker() as session:
                run = store._get_run(run_uuid=run_id, session=session)
                if run.lifecycle_stage != LifecycleStage.DELETED or run.status != "RUNNING":
                    return False
                run.status, run.end_time = status, int(time.time() * 1000)
                if reason:
                    session.merge(SqlTag(run_uuid=run_id, key=REASON_TAG, value=reason[:5000]))
                return True

        return bool(retrying(close))
    except Exception:  # MLflow's internals moved, or the store refuses this write too: the run stays as it is
        return False


def _root_cause(e: BaseException) -> BaseException:
    """The innermost exception behind MLflow's and SQLAlchemy's wrappers: the database's own words."""
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        inner = getattr(e, "orig", None) or e.__cause__ or e.__context__
        if inner is None:
            break
        e = inner
    return e


def process_started(pid: int) -> str | None:
    """A process's start time as a tag value (to the centisecond), or None if it does not exist."""
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return None


def _alive(pid: int, started: str | None) -> bool:
    """Whether the process that tagged a run still runs: the pid exists and, where its start time was
    recorded, started then (a pid reused by another process does not keep a dead run open)."""
    now = process_started(pid)
    if now is None:
        return False
    return started is None or abs(float(now) - float(started)) < 0.05


def reap_orphans(uri: str) -> int:
    """Mark FAILED the runs left RUNNING by a harness process of this machine that no longer exists
    (killed outright, or the machine restarted); how many were."""

    client = MlflowClient(uri)
    host = platform.node()
    reaped = 0
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
            tags = run.data.tags
            pid = tags.get(PID_TAG)
            if tags.get(HOST_TAG) != host or not pid or not pid.isdigit() or _alive(int(pid), tags.get(PID_START_TAG)):
                continue
            retrying(client.set_tag, run.info.run_id, REASON_TAG,
                     f"the harness process that ran it (pid {pid}) ended without closing it")
            retrying(client.set_terminated, run.info.run_id, "FAILED")
            reaped += 1
    return reaped


# ---------------------------------------------------------------------------- what is logged


def quiet() -> None:
    """Keep MLflow's own chatter (alembic migrations, emoji links) out of the user's terminal."""
    import logging

    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # it logs each database error with its traceback before raising it; `retrying` says it in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # its emoji links to a server
