"""`harness ui`: the MLflow UI on one store, started, watched and stopped as one process group.

The UI takes 15-20 s to answer its first request; until then this prints how long it has waited.
It never creates a store: a missing sqlite file is refused with how to make one, and an empty
store is named as empty.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from harness.errors import HarnessError

START_TIMEOUT_S = 120
# MLflow 3.17 opens every experiment in its GenAI view (it reads the browser's choice, not the
# experiment's mlflow.experimentKind tag) until the user picks "Model training" once
TRAINING_VIEW_HINT = ('first time in this browser: click "Model training" at the top left, and MLflow keeps '
                      "that view (it opens experiments in its GenAI view until then)")


class UIError(HarnessError):
    exit_code = 1


def command(uri: str, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]


def describe_store(uri: str) -> tuple[str, int]:
    """(a line on what the store holds, its number of experiments with runs); refuses a sqlite
    store whose file does not exist rather than let the UI create an empty one."""
    from harness import tracking

    db = tracking.sqlite_path(uri)
    if db is not None and not db.exists():
        raise UIError(f"no tracking store at {db}: `make bench` (or `harness bench`) fills one here, "
                      "or name another with --tracking-uri")
    _, counts = tracking.run_counts(uri)  # shown as given, without the busy timeout connect adds
    if not counts:
        return (f"the store {tracking.shown_uri(uri)} holds no runs yet: `make bench` (or `harness bench`) fills it; "
                "the UI will be empty until then"), 0
    listed = ", ".join(f"{name} ({n} run{'s' * (n != 1)})" for name, n in sorted(counts.items()))
    return (f"the store {tracking.shown_uri(uri)} holds {len(counts)} experiment{'s' * (len(counts) != 1)}: "
            f"{listed}"), len(counts)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _say(text: str) -> None:
    print(text, flush=True)


def serve(uri: str, host: str = "127.0.0.1", port: int = 5000, out: Callable[[str], None] = _say) -> None:
    """Start the UI, say when it answers, and hold it until this process is told to stop (Ctrl-C,
    SIGTERM: KeyboardInterrupt) or the UI exits (UIError), then stop the UI's whole process group
    (MLflow's launcher and its server)."""
    line, _ = describe_store(uri)
    out(line)
    if not port_free(host, port):
        raise UIError(f"port {port} on {host} is in use (another UI?): stop it or pick another with --port")
    url = f"http://{host}:{port}"
    log = tempfile.TemporaryFile()  # the UI's own output, shown only if it fails
    proc = subprocess.Popen(command(uri, host, port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(url, proc, log)
        out(f"ready: {url} (Ctrl-C stops it)")
        out(TRAINING_VIEW_HINT)
        proc.wait()
        raise UIError(f"the MLflow UI exited with code {proc.returncode}:\n{_tail(log)}")
    finally:
        _stop_group(proc)
        log.close()


def _wait_until_up(url: str, proc: subprocess.Popen, log) -> None:
    """Poll /health until it answers; meanwhile one line of progress on stderr (rewritten in place on
    a terminal, said once on a pipe)."""
    import requests

    tty, started = sys.stderr.isatty(), time.monotonic()
    print(f"starting the MLflow UI on {url} (it takes 15-20 s) ...", file=sys.stderr, end="" if tty else "\n",
          flush=True)
    while (waited := time.monotonic() - started) < START_TIMEOUT_S:
        if proc.poll() is not None:
            raise UIError(f"the MLflow UI exited with code {proc.returncode} before it answered:\n{_tail(log)}")
        try:
            if requests.get(url + "/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if tty:
            print(f"\r\033[Kstarting the MLflow UI on {url} ... {waited:.0f} s (it takes 15-20 s)", file=sys.stderr,
                  end="", flush=True)
        time.sleep(0.5)
    else:
        raise UIError(f"the MLflow UI did not answer at {url} within {START_TIMEOUT_S} s:\n{_tail(log)}")
    if tty:
        print("\r\033[K", file=sys.stderr, end="", flush=True)


def _tail(log, lines: int = 15) -> str:
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").strip().splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the UI's process group, then SIGKILL to whatever of it is left after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reaps the launcher: unreaped, it would still count as one of the group
            if not _group_alive(proc.pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
