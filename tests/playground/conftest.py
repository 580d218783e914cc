"""The playground served in a process of its own, for the browser tests, and what they share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.browser import free_port, wait_for_http

WAIT_MS = 60_000  # guards against a hung page, not timing assertions
WAIT_S = 60  # a guard against a hung server, not a timing assertion


@contextlib.contextmanager
def served(folder: Path):
    """`harness.playground.serve` in a process of its own in `folder`, saving to a store there."""
    port = free_port()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}  # relative: the page names it in full
    proc = subprocess.Popen([sys.executable, "-c", f"from harness.playground import serve; serve('127.0.0.1', {port})"],
                            env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, 60, alive=lambda: proc.poll() is None)
        yield {"url": url, "uri": uri, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    out = proc.stdout.read()
    assert proc.returncode == 0 and out.rstrip().endswith("harness playground: stopped"), out  # SIGTERM: a clean stop
    assert "Traceback" not in out and "ERROR" not in out, out


@pytest.fixture
def playground(tmp_path):
    """A server of the test's own."""
    with served(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def shared_playground(tmp_path_factory):
    """One server for a module's tests that only read pages (each page is a session of its own)."""
    with served(tmp_path_factory.mktemp("playground")) as server:
        yield server


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pause(page) -> None:
    """Press pause and wait for the frame made after it: the session's last epoch."""
    page.wait_for_selector('#epoch[data-playing="true"]', state="attached", timeout=WAIT_MS)
    page.click("#play")
    page.wait_for_selector('#epoch[data-playing="false"]', state="attached", timeout=WAIT_MS)
    assert "Play" in page.inner_text("#play")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of the module's own on loopback (uvicorn in a thread): {"url", "uri", "app", "port"}."""
    import uvicorn

    from harness.playground import create_app

    store = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    app = create_app(uri)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the playground server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "uri": uri, "app": app, "port": port}
    app.state.stopping.set()
    srv.should_exit = True
    thread.join(10)
