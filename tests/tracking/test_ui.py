"""`harness ui`: never creates a store, says what it opens and when it is ready, and a SIGTERM
stops the whole UI (MLflow's launcher and its server), leaving the port free."""

import os
import signal
import subprocess
import sys
import time

import psutil

from harness import tracking
from tests.browser import free_port, wait_for_http
from tests.cli.test_cli import harness


def test_a_missing_store_is_refused_and_not_created(tmp_path):
    db = tmp_path / "nothing.db"
    out = harness("ui", "--tracking-uri", f"sqlite:///{db}", "--port", str(free_port()))
    assert out.returncode == 1
    assert f"no tracking store at {db}" in out.stderr and "make bench" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_the_help_says_what_the_port_is():
    out = harness("ui", "--help")
    assert "port on 127.0.0.1 to serve the UI on" in out.stdout


def _alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_empty_store_is_named_the_ui_says_when_ready_and_sigterm_stops_the_whole_group(tmp_path):
    db = tmp_path / "empty.db"
    tracking.connect(f"sqlite:///{db}")  # a store with its schema and no runs
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--tracking-uri", f"sqlite:///{db}",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert "holds no runs yet" in first and "make bench" in first and str(db) in first
        ready = proc.stdout.readline()
        assert ready.strip() == f"ready: http://127.0.0.1:{port} (Ctrl-C stops it)"
        assert "Model training" in proc.stdout.readline()
        wait_for_http(f"http://127.0.0.1:{port}/health", 30)  # answering when it says so (a loaded machine is slow)
        listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                     if c.laddr.port == port and c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}  # loopback only: the store is not shared with the network
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while _alive(proc.pid) and time.monotonic() < deadline:  # the group: launcher and server
            time.sleep(0.2)
        assert not _alive(proc.pid), "a process of the UI outlived harness ui"
        from harness.tracking.ui import port_free

        assert port_free("127.0.0.1", port)
        left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                if str(port) in " ".join(p.info["cmdline"] or [])]
        assert not left, left  # MLflow's launcher and the server it started
        assert "starting the MLflow UI" in proc.stderr.read()
    finally:
        if _alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
