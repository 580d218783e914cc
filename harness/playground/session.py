"""Sessions: one per tab, each a `Lab` stepped by a worker thread of its own, never by a request.

Requests only set what the worker should do (play at a pace, pause, one step, reset, new
settings) and read what it last published: a `setup` (points, layout) once per lab and a
`frame` (both engines' state) at most every `FRAME_S` while it trains, and after every
command. The store keeps at most LIMITS["sessions"] sessions and closes those nobody has
looked at for IDLE_S; a playing session whose page is gone (no stream for ORPHAN_S) pauses.
While it plays, a session measures the epochs per second it actually reaches (`EpochRate`), which
the page shows beside the chosen pace.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.playground.lockstep import Lab, Stopped
from harness.playground.settings import LIMITS

FRAME_S = 0.1  # at most 10 frames a second
IDLE_S = 600.0  # a session nobody asked about for this long is closed
ORPHAN_S = 30.0  # a playing session with no page watching for this long pauses
DEFAULT_PACE = 60.0  # epochs per second while playing, as TF Playground's one epoch per animation frame
REAP_S = 60.0  # idle sessions are looked for at most this often, on any request's way to a session
RATE_WINDOW_S = 2.0  # the epochs per second reached, over about the last this many seconds of playing
RATE_MIN_S = 0.5  # ... once it has played this long at one pace (before, no figure)
BELOW_PACE = 0.9  # a rate under this share of the pace is "below the chosen pace"
MAX_STEPS = 8  # steps queued at most: more are refused until the worker catches up

log = logging.getLogger(__name__)


class SessionLimit(HarnessError):
    """The server holds as many sessions as it may."""


class StepsQueued(HarnessError):
    """A session holds as many queued steps as it may."""


class EpochRate:
    """Epochs per second over about the last `window` seconds: (epochs - 1) / span of the epochs'
    end times (so the waits that keep a pace count); None until they span `least` seconds."""

    def __init__(self, window: float = RATE_WINDOW_S, least: float = RATE_MIN_S, clock=time.monotonic) -> None:
        self.window, self.least, self.clock = window, least, clock
        self._ends: collections.deque[float] = collections.deque()

    def tick(self) -> None:
        """An epoch ended now."""
        now = self.clock()
        self._ends.append(now)
        while len(self._ends) > 2 and now - self._ends[1] >= self.window:
            self._ends.popleft()

    def clear(self) -> None:
        self._ends.clear()

    def value(self) -> float | None:
        if len(self._ends) < 2 or self._ends[-1] - self._ends[0] < self.least:
            return None
        return (len(self._ends) - 1) / (self._ends[-1] - self._ends[0])


@dataclass
class Snapshot:
    """What a stream has not sent yet: the setup of a new lab, a newer frame, newer curve points."""

    generation: int
    version: int
    setup: dict[str, Any] | None = None
    frame: dict[str, Any] | None = None
    curves: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)


class Session:
    """A lab, its settings, and the worker that trains it."""

    def __init__(self, sid: str, lab: Lab, settings: dict[str, Any], raw: dict[str, Any]) -> None:
        self.id = sid
        self._cond = threading.Condition()
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._playing = False
        self._pace = DEFAULT_PACE  # epochs/s; 0: as fast as it goes
        self._rate = EpochRate()  # what it reaches (worker's ticks, read under the lock)
        self._closed = False
        self._generation = 0
        self._version = 0
        self._lab = lab
        self.settings, self.raw = settings, raw
        self._setup = lab.setup()
        self._frame = self._framed(lab)
        self.watchers = 0
        self.seen = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=f"playground-{sid}", daemon=True)
        self._thread.start()

    # -- commands (from requests)

    def play(self, pace: float | None = None) -> None:
        with self._cond:
            if pace is not None and pace != self._pace:
                self._pace = pace
                self._rate.clear()
            self._playing = True
            self._cond.notify_all()

    def pause(self) -> None:
        self._command("pause")

    def step(self) -> None:
        self._command("step")

    def reset(self) -> None:
        self._command("reset")

    def replace(self, lab: Lab, settings: dict[str, Any], raw: dict[str, Any]) -> None:
        """New settings: a new lab (built and validated by the caller), from epoch 0; a playing session plays on."""
        self._command("lab", (lab, settings, raw))

    def close(self) -> None:
        """Stop the worker: at once if it waits, at the next batch if it trains (`Lab.stop`)."""
        with self._cond:
            self._closed = True
            self._lab.stop()
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the closed session's worker to finish its step and return."""
        self._thread.join(timeout)

    def _command(self, name: str, arg: Any = None) -> None:
        """Queue a command for the worker. Pause, reset and new settings overtake the steps queued before
        them (and replace their own kind queued): they take effect after the epoch under way, not after
        the clicks before them. At most MAX_STEPS steps wait; another is refused (`StepsQueued`)."""
        with self._cond:
            if name == "step" and sum(c == "step" for c, _ in self._commands) >= MAX_STEPS:
                raise StepsQueued(f"{MAX_STEPS} steps are waiting already; wait for them, or pause")
            if name in ("pause", "reset"):  # new settings keep playing, as TF Playground's do
                self._playing = False
            if name != "step":
                self._commands = collections.deque((c, a) for c, a in self._commands if c not in ("step", name))
            self._rate.clear()
            self._commands.append((name, arg))
            self._cond.notify_all()

    # -- reading (from requests)

    @property
    def lab(self) -> Lab:
        return self._lab

    def current(self) -> tuple[Lab, dict[str, Any], dict[str, Any]]:
        """The lab, its settings and its experiment dict, read together: new settings may replace them at any time."""
        with self._cond:
            return self._lab, self.settings, self.raw

    def state(self) -> dict[str, Any]:
        """Playing or not, the pace asked for and the epochs per second reached (None until measured),
        and whether that is below the pace (the machine trains no faster)."""
        with self._cond:
            rate = self._rate.value() if self._playing else None
            return {"id": self.id, "playing": self._playing, "pace": self._pace, "generation": self._generation,
                    "epoch": self._frame["epoch"], "max_epochs": LIMITS["epochs"], "epochs_per_s": rate,
                    "below_pace": rate is not None and self._pace > 0 and rate < BELOW_PACE * self._pace}

    def snapshot(self, generation: int, version: int, cursor: int) -> tuple[Snapshot, int]:
        """What is new since (generation, version, cursor); returns it and the new curve cursor."""
        self.seen = time.monotonic()
        with self._cond:
            snap = Snapshot(self._generation, self._version, state=self.state())
            if generation != self._generation:
                snap.setup, cursor = self._setup, 0
            if version != self._version or snap.setup is not None:
                snap.frame = self._frame
            history = self._lab.history
            if len(history) > cursor:  # the worker appends without the lock: count what was sent, not the history
                snap.curves = self._lab.curves(cursor)
                cursor += len(snap.curves["epochs"])
        return snap, cursor

    # -- the worker

    def _work(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._commands or self._playing)
                if self._closed:
                    return
                command, arg = self._commands.popleft() if self._commands else ("play", None)
                pace = self._pace
            lab = self._lab
            try:
                if command == "lab":
                    self._start(*arg)
                elif command == "reset":
                    self._start(Lab(lab.spec), self.settings, self.raw)
                elif command == "step":
                    self._train(lab)
                    self._publish(lab)
                elif command == "pause":
                    self._publish(lab)
                else:
                    started = time.perf_counter()
                    self._train(lab)
                    with self._cond:
                        self._rate.tick()
                    if time.perf_counter() - last >= FRAME_S or not self._playing:
                        self._publish(lab)
                        last = time.perf_counter()
                    if pace > 0:  # keep to the pace (the learner watches the boundary form); a command cuts it short
                        wait = 1 / pace - (time.perf_counter() - started)
                        with self._cond:
                            self._cond.wait_for(lambda: self._closed or self._commands, timeout=max(0.0, wait))
                    if self.watchers == 0 and time.monotonic() - self.seen > ORPHAN_S:
                        self._command("pause")
            except Stopped:
                return
            except Exception as e:  # noqa: BLE001  a diverged loss (the lab keeps the message), a bad reset, a bug
                self._stop(lab, e)

    def _stop(self, lab: Lab, e: Exception) -> None:
        """Stop playing, with the reason in the frame's error; the worker lives on for the next command."""
        if not isinstance(e, HarnessError):
            log.error("session %s stopped", self.id, exc_info=e)
        lab.error = lab.error or (str(e) if isinstance(e, HarnessError) else f"training stopped: "
                                  f"{type(e).__name__}: {e}; reset or change a setting to start again")
        with self._cond:
            self._playing = False
            self._rate.clear()
        try:
            self._publish(lab)
        except Exception:  # noqa: BLE001  the lab cannot draw itself: its last frame, with the reason
            with self._cond:
                if lab is self._lab:
                    self._frame = {**self._frame, "error": lab.error, "playing": False}
                    self._version += 1
                    self._cond.notify_all()

    def _train(self, lab: Lab) -> None:
        if lab.error is not None:
            raise HarnessError(lab.error)
        if lab.epoch >= LIMITS["epochs"]:
            lab.error = f"stopped at {LIMITS['epochs']:,} epochs, the most a session plays on this server"
            raise HarnessError(lab.error)
        lab.step()

    def _start(self, lab: Lab, settings: dict[str, Any], raw: dict[str, Any]) -> None:
        frame = self._framed(lab)
        with self._cond:
            self._lab, self.settings, self.raw = lab, settings, raw
            self._setup, self._frame = lab.setup(), frame
            self._generation += 1
            self._version += 1
            self._cond.notify_all()

    def _publish(self, lab: Lab) -> None:
        frame = self._framed(lab)
        with self._cond:
            if lab is self._lab:
                self._frame = frame
                self._version += 1
                self._cond.notify_all()

    def _framed(self, lab: Lab) -> dict[str, Any]:
        frame = lab.frame()
        frame["playing"] = self._playing
        return frame


class SessionStore:
    """The sessions of one server, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._reaped = time.monotonic()

    def create(self, lab: Lab, settings: dict[str, Any], raw: dict[str, Any]) -> Session:
        with self._lock:
            self._reap()
            self._check_room()
        session = Session(secrets.token_urlsafe(9), lab, settings, raw)  # its setup and first frame: not under the lock
        with self._lock:
            try:
                self._check_room()  # another tab may have taken the last place meanwhile
            except SessionLimit:
                session.close()
                raise
            self._sessions[session.id] = session
        return session

    def _check_room(self) -> None:
        if len(self._sessions) >= LIMITS["sessions"]:
            raise SessionLimit(f"this server holds {LIMITS['sessions']} sessions, its limit; close a tab, or "
                               f"wait {IDLE_S / 60:.0f} minutes for an idle one to close")

    def get(self, sid: str) -> Session | None:
        with self._lock:
            if time.monotonic() - self._reaped >= REAP_S:  # every request and open stream passes here
                self._reap()
            session = self._sessions.get(sid)
        if session is not None:
            session.seen = time.monotonic()
        return session

    def delete(self, sid: str) -> bool:
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is not None:
            session.close()
        return session is not None

    def close_all(self, wait: float = 10.0) -> None:
        """Close every session and wait for its worker: a worker still inside torch when the interpreter
        exits aborts the process ("terminate called without an active exception")."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()
        deadline = time.monotonic() + wait
        for s in sessions:
            s.join(max(0.01, deadline - time.monotonic()))

    def __len__(self) -> int:
        return len(self._sessions)

    def _reap(self) -> None:
        now = self._reaped = time.monotonic()
        for sid, s in list(self._sessions.items()):
            if s.watchers == 0 and now - s.seen > IDLE_S:
                self._sessions.pop(sid).close()
