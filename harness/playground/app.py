"""The playground's web server: the page (from this package, nothing fetched at run time) and its API.

    GET    /                                   the page
    GET    /api/options                        choices, defaults and the server's limits
    POST   /api/sessions                       settings -> a new session (201), or 422 with the one-line reason
                                               and the control it names (`detail`, `control`)
    GET    /api/sessions/{id}                  its settings, state and latest frame
    PUT    /api/sessions/{id}                  new settings: a new lab from epoch 0 (422 as above)
    POST   /api/sessions/{id}/play?pace=60     play at that many epochs/s (1 to 1000; 0: as fast as it goes)
    POST   /api/sessions/{id}/pause|step|reset
    GET    /api/sessions/{id}/events           Server-Sent Events: `setup` per lab, `frame` at most 10/s
    GET    /api/sessions/{id}/experiment.toml  the experiment file of the epochs played
    POST   /api/sessions/{id}/save             save to MLflow through `harness bench` (202); GET: its progress
    DELETE /api/sessions/{id}

Requests never train: they validate, build a lab and hand it to the session's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from harness.errors import HarnessError, SpecError
from harness.playground import settings as page_settings
from harness.playground.guard import Guard
from harness.playground.lockstep import Lab
from harness.playground.saving import UI_URL, Saver, SaveUnderWay
from harness.playground.session import FRAME_S, IDLE_S, Session, SessionLimit, SessionStore, StepsQueued
from harness.text import plural
from harness.tracking import shown_uri

STATIC = Path(__file__).parent / "static"
KEEP_ALIVE_S = 15.0
MAX_PACE = 1000.0
MAX_BODY = 64 * 1024  # settings are a few hundred bytes


class Refused(HTTPException):
    """Settings refused (422): the one-line reason, and the setting whose control it names (or None)."""

    def __init__(self, e: HarnessError) -> None:
        e = page_settings.refused(e) if isinstance(e, SpecError) else e
        super().__init__(422, str(e))
        self.control = getattr(e, "control", None)


def finite(obj: Any) -> Any:
    """NaN and infinity as null: JSON has no word for them (a diverged loss)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(finite(obj), separators=(",", ":"), allow_nan=False)


def reply(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


def experiment_text(lab: Lab, settings: dict[str, Any]) -> tuple[str, int]:
    """The experiment file of the epochs this lab has played (lab, settings: `Session.current()`), and that count."""
    epochs = len(lab.history)
    if epochs == 0:
        raise HTTPException(409, "nothing played yet: press play or step first, then export or save")
    raw = page_settings.experiment(settings, epochs)
    d = lab.spec.data
    header = (f"Made by harness playground on {time.strftime('%Y-%m-%d %H:%M')}: {d.dataset}, "
              f"{lab.spec.network.describe()}, seed {lab.seed}, {epochs} epoch{'s' * (epochs > 1)} played.\n"
              f"Repeat it: harness run {raw['name']}.toml --seed {lab.seed} --engine scratch (or torch); "
              f"both engines into MLflow: harness bench {raw['name']}.toml")
    return page_settings.toml_text(raw, header), epochs


def create_app(tracking_uri: str | None = None, ui_urls: Sequence[str] = (UI_URL,), names: Sequence[str] = ()
               ) -> FastAPI:
    """The page and its API over sessions of their own; saves go to `tracking_uri` (else
    $MLFLOW_TRACKING_URI, else ./mlflow.db, as the CLI's) and link their runs in the first MLflow UI
    of `ui_urls` that serves them. Requests pass the guard first (harness.playground.guard): for the
    address they came in on, or a host name of `names`, and from the page itself."""
    store = SessionStore()
    saver = Saver(tracking_uri, ui_urls)
    stopping = threading.Event()
    abandon = threading.Event()  # a second Ctrl-C or SIGTERM while saves finish

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        stopping.set()
        await asyncio.to_thread(store.close_all)
        if saver.under_way():
            print(f"harness playground: waiting for {plural(saver.under_way(), 'save')} under way to finish "
                  "(Ctrl-C again to abandon)", flush=True)
            while not abandon.is_set() and not await asyncio.to_thread(saver.wait, 0.5):
                pass

    app = FastAPI(title="harness playground", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.saver, app.state.stopping, app.state.abandon = store, saver, stopping, abandon
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, max_body=MAX_BODY, names=names, stopping=stopping)

    def session_of(sid: str) -> Session:
        session = store.get(sid)
        if session is None:
            raise HTTPException(404, f"no session {sid!r}: it closed after {IDLE_S / 60:.0f} idle minutes, or the "
                                     "server restarted; reload the page")
        return session

    async def settings_of(request: Request) -> dict[str, Any]:
        body = await request.body()  # at most MAX_BODY bytes: the guard refused longer ones unread
        try:
            raw = json.loads(body) if body.strip() else {}
        except ValueError as e:  # not JSON, not UTF-8, or an integer of more digits than Python reads
            raise HTTPException(422, f"the body is not JSON ({e.msg if hasattr(e, 'msg') else e})") from None
        except RecursionError:
            raise HTTPException(422, "the body is not settings: it nests deeper than Python reads") from None
        try:
            return page_settings.complete(raw)
        except HarnessError as e:
            raise Refused(e) from None

    def build(settings: dict[str, Any]) -> tuple[Lab, dict[str, Any]]:
        try:
            spec, raw = page_settings.validate(settings)
            return Lab(spec), raw  # preparing the data checks more (a batch larger than the points)
        except HarnessError as e:
            raise Refused(e) from None

    def described(session: Session, frame: bool = True) -> dict[str, Any]:
        _, settings, _ = session.current()
        out = {"id": session.id, "settings": settings, "state": session.state()}
        if frame:
            snap, _ = session.snapshot(-1, -1, 0)
            out.update(setup=snap.setup, frame=snap.frame)
        return out

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        body = {"detail": exc.detail, **({"control": exc.control} if isinstance(exc, Refused) else {})}
        return JSONResponse(body, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/options")
    def options() -> Response:
        return reply(page_settings.options())

    @app.post("/api/sessions")
    async def create(request: Request) -> Response:
        settings = await settings_of(request)
        lab, raw = await run_in_threadpool(build, settings)
        try:  # a session computes its setup and first frame: not on the event loop
            session = await run_in_threadpool(store.create, lab, settings, raw)
        except SessionLimit as e:
            raise HTTPException(429, str(e)) from None
        return reply(described(session), 201)

    @app.get("/api/sessions/{sid}")
    def read(sid: str) -> Response:
        return reply(described(session_of(sid)))

    @app.put("/api/sessions/{sid}")
    async def replace(sid: str, request: Request) -> Response:
        session = session_of(sid)
        settings = await settings_of(request)
        lab, raw = await run_in_threadpool(build, settings)
        session.replace(lab, settings, raw)
        return reply(described(session, frame=False))

    @app.post("/api/sessions/{sid}/play")
    def play(sid: str, pace: float | None = None) -> Response:
        session = session_of(sid)
        if pace is not None and not (pace == 0 or 1 <= pace <= MAX_PACE):
            raise HTTPException(422, f"pace = {pace!r}: must be 0 (as fast as it goes) or from 1 to {MAX_PACE:g} "
                                     "epochs per second")
        session.play(pace)
        return reply(session.state())

    @app.post("/api/sessions/{sid}/save")
    def save(sid: str) -> Response:
        lab, settings, raw = session_of(sid).current()
        text, epochs = experiment_text(lab, settings)
        point = lab.history[epochs - 1]
        page = {e: {"test_metric": point.test_metric[e], "test_loss": point.test_loss[e]} for e in point.test_loss}
        try:
            job = saver.start(sid, text, raw["name"], epochs, page)
        except SaveUnderWay as e:
            raise HTTPException(409, str(e)) from None
        return reply(job.status(), 202)

    @app.get("/api/sessions/{sid}/save")
    def save_status(sid: str) -> Response:
        session_of(sid)
        job = saver.latest(sid)
        if job is None:
            raise HTTPException(404, "this session has not been saved yet")
        return reply(job.status())

    @app.post("/api/sessions/{sid}/{action}")
    def control(sid: str, action: str) -> Response:
        session = session_of(sid)
        actions = {"pause": session.pause, "step": session.step, "reset": session.reset}
        if action not in actions:
            raise HTTPException(404, f"unknown action {action!r}; known: play, {', '.join(actions)}, save")
        try:
            actions[action]()
        except StepsQueued as e:
            raise HTTPException(429, str(e)) from None
        return reply(session.state())

    @app.get("/api/sessions/{sid}/events")
    async def events(sid: str, request: Request) -> StreamingResponse:
        session = session_of(sid)

        async def stream():
            generation = version = -1
            cursor, quiet = 0, time.monotonic()
            session.watchers += 1
            try:
                while not stopping.is_set() and store.get(sid) is session:
                    snap, cursor = session.snapshot(generation, version, cursor)
                    if snap.setup is not None:
                        yield f"event: setup\ndata: {dumps(snap.setup)}\n\n"
                    if snap.frame is not None or snap.curves is not None:
                        yield f"event: frame\ndata: {dumps({'state': snap.state, 'frame': snap.frame, 'curves': snap.curves})}\n\n"  # noqa: E501
                        quiet = time.monotonic()
                    elif time.monotonic() - quiet > KEEP_ALIVE_S:
                        yield ": keep-alive\n\n"
                        quiet = time.monotonic()
                    generation, version = snap.generation, snap.version
                    if await request.is_disconnected():
                        break
                    await asyncio.sleep(FRAME_S)
            finally:
                session.watchers -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/sessions/{sid}/experiment.toml")
    def export(sid: str) -> PlainTextResponse:
        lab, settings, raw = session_of(sid).current()
        text, _ = experiment_text(lab, settings)
        name = raw["name"]
        return PlainTextResponse(text, media_type="application/toml",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.toml"'})

    @app.delete("/api/sessions/{sid}")
    def delete(sid: str) -> Response:
        if not store.delete(sid):
            raise HTTPException(404, f"no session {sid!r}")
        return Response(status_code=204)

    return app


def serve(host: str = "127.0.0.1", port: int = 8765, tracking_uri: str | None = None) -> None:
    """Serve the playground until Ctrl-C or SIGTERM; prints its URL once it listens."""
    import uvicorn

    from harness.engines import engine_class

    engine_class("torch")  # imported now (seconds), not by the first page's request
    names = [] if host in ("", "0.0.0.0", "::") else [host]  # a name it was started with (--host) names it too
    app = create_app(tracking_uri, names=names)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                shown = f"[{host}]" if ":" in host else host
                store = shown_uri(app.state.saver.uri)
                print(f"harness playground on http://{shown}:{port}/ (saves to {store}; Ctrl-C to stop)", flush=True)

        def handle_exit(self, sig, frame) -> None:
            if app.state.stopping.is_set():
                app.state.abandon.set()
            app.state.stopping.set()  # ends the event streams, so that shutting down does not wait for them
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            """Ctrl-C and SIGTERM shut down gracefully and `serve` returns (uvicorn's own re-raises the signal)."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            before = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    Server(config).run()
    if app.state.saver.under_way():  # abandoned: a thread inside torch at the interpreter's exit would abort it
        print("harness playground: stopped; the save under way was abandoned (its runs stay RUNNING until the "
              "next `harness bench` on the store marks them FAILED)", flush=True)
        os._exit(1)
    print("harness playground: stopped", flush=True)
