"""A session's commands against a worker that is busy: queued steps give way to pause and reset, their
queue is bounded, and closing ends a long epoch at its next batch."""

from __future__ import annotations

import threading
import time

import pytest

from harness.playground.session import MAX_STEPS, SessionStore
from tests.playground.conftest import WAIT_S
from tests.playground.test_playground_api import api, new_session


def gated(lab, monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The lab's next epochs wait for `go` once they have begun (`inside`)."""
    inside, go, step = threading.Event(), threading.Event(), lab.step

    def slow():
        inside.set()
        assert go.wait(WAIT_S)
        return step()

    monkeypatch.setattr(lab, "step", slow)
    return inside, go


@pytest.mark.parametrize("command, epoch", [("pause", 1), ("reset", 0)])
def test_pause_and_reset_overtake_the_steps_queued_and_the_queue_is_bounded(server, monkeypatch, command, epoch):
    sid = new_session(server)["id"]
    session = server["app"].state.store.get(sid)
    inside, go = gated(session.lab, monkeypatch)
    assert api(server, "POST", f"/api/sessions/{sid}/step").ok
    assert inside.wait(WAIT_S)  # the worker is in epoch 1; the next steps queue behind it
    answers = [api(server, "POST", f"/api/sessions/{sid}/step").status_code for _ in range(MAX_STEPS + 5)]
    assert answers == [200] * MAX_STEPS + [429] * 5
    r = api(server, "POST", f"/api/sessions/{sid}/{command}")
    assert r.ok and r.json()["playing"] is False
    go.set()
    deadline = time.monotonic() + WAIT_S
    generation = int(command == "reset")  # a reset's new lab is in place
    while session._commands or session.state()["generation"] != generation:  # nothing queued is left to train
        assert time.monotonic() < deadline, "the worker never took the command"
        time.sleep(0.01)
    body = api(server, "GET", f"/api/sessions/{sid}").json()
    assert session.lab.epoch == epoch and not body["state"]["playing"]
    api(server, "DELETE", f"/api/sessions/{sid}")


def test_closing_ends_a_long_epoch_at_its_next_batch(server, monkeypatch):
    """An epoch of hundreds of batches at batch size 1 (each batch here waits until the session closes):
    closing stops it between two batches, so no worker is left inside torch when the server exits."""
    store, own = server["app"].state.store, SessionStore()
    sid = new_session(server, batch_size=1, train_size=300)["id"]
    with store._lock:
        own._sessions[sid] = session = store._sessions.pop(sid)
    started, closing, after = threading.Event(), threading.Event(), []

    def long_epoch(x, y, batches):
        for _ in batches:
            if closing.is_set():
                after.append(1)
            started.set()
            closing.wait(WAIT_S)
        return 0.5

    monkeypatch.setattr(session.lab.engines["scratch"], "train_epoch", long_epoch)
    session.step()
    assert started.wait(WAIT_S)
    session.close()
    closing.set()
    own.close_all(wait=WAIT_S)
    assert not session._thread.is_alive() and after == []
