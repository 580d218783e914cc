"""The playground's door: which requests reach its API, and how much of a body it reads.

Any web page the user opens can make the browser send requests to a server on this machine. A
page on another site sends them with its own `Origin`; a page whose name an attacker points at
this machine (DNS rebinding) sends them with its own `Host`. So, as MLflow's server does:

- `Host` must name the address the request came in on (the host:port the server is bound to;
  on a loopback address `localhost`, `127.0.0.1` and `[::1]` alike), or the name it was started
  with; else 403, whatever the method.
- A request that changes something (any method but GET and HEAD) must come from the page itself:
  an `Origin` (or, lacking it, a `Referer`) of this very address, else 403. One with neither
  (curl, a script) is let in only as JSON or without a body: a browser sends a cross-site form or
  `text/plain` post without a preflight, and an old one may send it without either header.
- A body is read up to `max_body` bytes and refused (413) from its `Content-Length`, or as soon
  as a streamed (chunked) body passes the limit: the server never holds more than the limit.
- A client that leaves in the middle of its body is let go quietly (no answer, no traceback), and
  one still sending its body when the server stops is answered 503 at once: shutting down neither
  waits for it nor cancels it with a traceback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
READ_ONLY = ("GET", "HEAD")
POLL_S = 0.1  # a body's next piece is awaited this long at a time, between looks at whether the server stops


def authority(host: str, port: int) -> str:
    """host:port as a `Host` header writes it (IPv6 in brackets; no port for 80)."""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return host.lower() if port == 80 else f"{host.lower()}:{port}"


def served_hosts(server: tuple[str, int] | None, names: Iterable[str] = ()) -> set[str]:
    """The `Host` values of the address a connection came in on (`scope["server"]`), and of `names`."""
    if server is None:
        return set()
    host, port = server
    found = {host, *names}
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and getattr(ip, "ipv4_mapped", None):  # a dual-stack socket's IPv4 client
        ip = ip.ipv4_mapped
        found.add(str(ip))
    if ip is not None and ip.is_loopback:
        found.update(LOOPBACK)
    return {authority(h, port) for h in found}


def same_origin(url: str, host: str) -> bool:
    """Whether an `Origin` or `Referer` names the page at http://`host`/."""
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname is not None and authority(parts.hostname, port) == host


class Guard:
    """ASGI middleware around the playground's app: the checks above, before the app sees the request."""

    def __init__(self, app: Any, max_body: int, names: Iterable[str] = (),
                 stopping: threading.Event | None = None) -> None:
        self.app, self.max_body, self.names = app, max_body, tuple(n.lower() for n in names)
        self.stopping = stopping or threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await answer(send, *refusal)
            return
        chunks, size = [], 0
        while True:
            message = await self.next_piece(receive)
            if message is None:
                await answer(send, 503, "the server is stopping")
                return
            if message["type"] == "http.disconnect":
                return  # the client left mid-body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await answer(send, 413, f"the body passes {self.max_body:,} bytes; at most {self.max_body:,}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict[str, Any]:
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)

    async def next_piece(self, receive: Any) -> dict[str, Any] | None:
        """The body's next message, or None if the server stops first."""
        task = asyncio.ensure_future(receive())
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_S)
            if not task.done() and self.stopping.is_set():
                task.cancel()
                return None
        return task.result()

    def refusal(self, scope: dict[str, Any]) -> tuple[int, str] | None:
        """(status, reason) for a request refused on its headers alone, else None."""
        headers: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        hosts = headers.get("host", [])
        host = hosts[0].strip().lower() if len(hosts) == 1 else ""
        served = served_hosts(scope.get("server"), self.names)
        if host not in served:
            shown = repr(host[:100]) if host else "no single Host"
            where = f"http://{min(served)}/" if served else "its own address"
            return 403, (f"this playground answers requests for its own address only, not {shown}: open the "
                         f"page at {where}")
        length = headers.get("content-length", ["0"])[0].strip()
        if length.isdigit() and int(length) > self.max_body:
            return 413, f"the body is {int(length):,} bytes; at most {self.max_body:,}"
        if scope["method"] in READ_ONLY:
            return None
        for name in ("origin", "referer"):
            if name in headers:
                if len(headers[name]) == 1 and same_origin(headers[name][0].strip(), host):
                    break
                return 403, (f"a page from {headers[name][0][:100]!r} may not change this playground's "
                             f"sessions: use the page at http://{host}/")
        else:
            kind = headers.get("content-type", [""])[0].partition(";")[0].strip().lower()
            if kind not in ("", "application/json"):
                return 403, (f"a request that changes a session without an Origin is JSON (Content-Type: "
                             f"application/json), not {kind[:100]!r}")
        return None


async def answer(send: Any, status: int, detail: str) -> None:
    """A refusal as the API's errors are written, closing the connection (the body, if any, stays unread)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
