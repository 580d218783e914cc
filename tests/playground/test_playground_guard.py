"""The playground's door (harness.playground.guard): requests from other pages and other host names are
refused, bodies over the limit are refused before they are read, and a body nested too deep is a 422."""

from __future__ import annotations

import asyncio
import concurrent.futures
import select
import socket

import pytest

from harness.playground.app import MAX_BODY
from harness.playground.guard import Guard, served_hosts
from tests.playground.conftest import WAIT_S
from tests.playground.test_playground_api import api

SETTINGS = b'{"dataset": "circle"}'


def sessions(server) -> int:
    return len(server["app"].state.store)


def own(server) -> str:
    return f"http://127.0.0.1:{server['port']}"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Content-Type": "text/plain"},  # a browser sends it without a preflight
    {"Origin": "http://evil.example", "Content-Type": "application/json"},
    {"Origin": "null", "Content-Type": "application/json"},  # a sandboxed frame, a file:// page
    {"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"},  # another server on this machine
    {"Referer": "http://evil.example/page.html", "Content-Type": "application/json"},
    {"Content-Type": "text/plain"},  # neither header (an old browser's form): only JSON is let in
    {"Content-Type": "application/x-www-form-urlencoded"},
])
def test_a_request_from_another_page_changes_nothing(server, headers):
    before = sessions(server)
    r = api(server, "POST", "/api/sessions", data=SETTINGS, headers=headers)
    assert r.status_code == 403 and sessions(server) == before, r.text
    assert "this playground" in r.json()["detail"] or "JSON" in r.json()["detail"]


def test_a_cross_site_page_cannot_step_pause_or_delete_a_session(server):
    sid = api(server, "POST", "/api/sessions", data=SETTINGS, headers={"Content-Type": "application/json"}).json()["id"]
    evil = {"Origin": "http://evil.example"}
    for method, path in (("POST", "step"), ("POST", "play"), ("POST", "save"), ("PUT", ""), ("DELETE", "")):
        r = api(server, method, f"/api/sessions/{sid}/{path}".rstrip("/"), headers=evil)
        assert r.status_code == 403, (method, path, r.text)
    assert api(server, "GET", f"/api/sessions/{sid}").json()["frame"]["epoch"] == 0
    assert api(server, "DELETE", f"/api/sessions/{sid}", headers={"Origin": own(server)}).status_code == 204


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1", "127.0.0.1:1",
                                  "127.0.0.1:{port}.evil.example", ""])
def test_a_host_name_other_than_the_servers_address_is_refused_even_for_reading(server, host):
    """DNS rebinding: a page at attacker.example whose name now points here sends its own Host."""
    host = host.format(port=server["port"])
    for method, path in (("GET", "/api/options"), ("GET", "/"), ("POST", "/api/sessions")):
        r = api(server, method, path, headers={"Host": host, "Content-Type": "application/json"}, data=SETTINGS)
        assert r.status_code == 403 and "its own address only" in r.json()["detail"], (host, path, r.text)


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_the_page_itself_is_let_in_by_any_name_of_the_loopback_address(server, name):
    origin = f"http://{name}:{server['port']}"
    headers = {"Host": f"{name}:{server['port']}", "Origin": origin, "Content-Type": "application/json"}
    assert api(server, "GET", "/api/options", headers={"Host": headers["Host"]}).status_code == 200
    r = api(server, "POST", "/api/sessions", data=SETTINGS, headers=headers)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert api(server, "POST", f"/api/sessions/{sid}/step", headers={**headers, "Referer": origin + "/"}).ok
    referer_only = {"Host": headers["Host"], "Referer": f"{origin}/?x=1"}
    assert api(server, "DELETE", f"/api/sessions/{sid}", headers=referer_only).status_code == 204


def test_the_served_hosts_are_the_connections_address_and_its_names():
    assert served_hosts(("127.0.0.1", 8765)) == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert served_hosts(("192.168.1.5", 80), ["box.lan"]) == {"192.168.1.5", "box.lan"}
    assert served_hosts(("::ffff:127.0.0.1", 9)) >= {"127.0.0.1:9", "localhost:9"}
    assert "localhost:8765" not in served_hosts(("10.0.0.2", 8765))


def raw_request(port: int, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.sendall(head.encode())
    return s


def status_of(s: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        piece = s.recv(4096)
        if not piece:
            break
        data += piece
    return int(data.split(b" ", 2)[1])


def test_a_body_announced_over_the_limit_is_refused_before_any_of_it_is_sent(server):
    port = server["port"]
    with raw_request(port, f"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                           f"application/json\r\nContent-Length: {300 * 2**20}\r\n\r\n") as s:
        assert status_of(s) == 413  # not a byte of the 300 MB sent: the server did not wait for them


def test_a_streamed_body_is_refused_once_it_passes_the_limit_and_the_server_stops_reading(server):
    """A chunked body from a generator of 300 MB: the server answers 413 and closes the connection
    long before; what the client managed to send is bounded by the socket buffers, not the body."""
    port, total, sent = server["port"], 300 * 2**20, 0
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    with raw_request(port, f"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                           "application/json\r\nTransfer-Encoding: chunked\r\n\r\n") as s:
        while sent < total:
            if select.select([s], [], [], 0)[0]:
                break  # the answer came
            try:
                s.sendall(chunk)
            except OSError:  # reset or broken pipe: the server stopped reading and closed
                break
            sent += 0x4000
        assert sent < total // 10
        assert status_of(s) == 413


def run(coro) -> None:
    """`asyncio.run` in a thread of its own: a browser test of the same process may hold this thread's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def test_the_guard_reads_no_further_than_the_limit_and_lets_a_leaving_client_go():
    """At the ASGI level: the pieces it pulls from a body of 300 MB, and a client that leaves mid-body."""
    piece = 16 * 1024
    pulled, sent, called = [], [], []

    async def app(scope, receive, send):
        called.append(scope)

    async def send(message):
        sent.append(message)

    def body(pieces, then):
        async def receive():
            pulled.append(1)
            if len(pulled) > pieces:
                return then
            return {"type": "http.request", "body": b" " * piece, "more_body": True}
        return receive

    scope = {"type": "http", "method": "POST", "server": ("127.0.0.1", 8765),
             "headers": [(b"host", b"127.0.0.1:8765"), (b"content-type", b"application/json")]}
    guard = Guard(app, max_body=MAX_BODY)
    run(guard(scope, body(300 * 2**20 // piece, None), send))
    assert len(pulled) == MAX_BODY // piece + 1 and called == [] and sent[0]["status"] == 413
    pulled.clear(), sent.clear()
    run(guard(scope, body(2, {"type": "http.disconnect"}), send))
    assert len(pulled) == 3 and called == [] and sent == []


@pytest.mark.parametrize("depth", [30_000, 3_000])
def test_a_body_nested_deeper_than_python_reads_is_a_clean_422(server, depth, capfd):
    body = b'{"hidden": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(body) <= MAX_BODY
    r = api(server, "POST", "/api/sessions", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "Traceback" not in capfd.readouterr().err


def test_requests_half_sent_when_the_server_stops_end_quietly(tmp_path):
    """SIGTERM while two clients are in the middle of their bodies: `served` asserts exit 0, "stopped"
    last, and no traceback (uvicorn cancelled such requests with one each)."""
    from tests.playground.conftest import served

    with served(tmp_path) as server:
        port = int(server["url"].rsplit(":", 1)[1].strip("/"))
        clients = [raw_request(port, f"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                                     'application/json\r\nContent-Length: 1000\r\n\r\n{"dataset": ') for _ in range(2)]
        assert api({"url": server["url"].rstrip("/")}, "GET", "/api/options").ok  # the server has read them
    assert [status_of(c) for c in clients] == [503, 503]
    for c in clients:
        c.close()
