"""A scripted HTTP server on 127.0.0.1 for the hook's tests, and connection helpers.

Each test queues the responses it wants (``server.script(server.csv(...), ...)``); requests
beyond the script get ``server.default``. Every request is recorded (method, path, query,
headers, body). The responder factories hang off the server, so tests import nothing from here.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

API_KEY = "pat.acct123.tok456.s3cr3t-value-never-logged"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[["_Handler"], None]


def respond(
    status: int = 200, body: bytes | str = b"", headers: dict[str, str] | None = None
) -> Responder:
    """A complete response with a Content-Length."""
    data = body.encode() if isinstance(body, str) else body

    def run(handler: _Handler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return run


def csv(
    body: bytes | str, filename: str | None = "report.csv", content_type: str = "text/csv"
) -> Responder:
    headers = {"Content-Type": content_type}
    if filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return respond(200, body, headers)


def api_error(status: int, message: str, retry_after: str | None = None) -> Responder:
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return respond(status, json.dumps({"status": "error", "message": message}), headers)


def truncated(body: bytes, send: int) -> Responder:
    """Announce ``len(body)`` bytes, send ``send`` of them, close the connection."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:send])
        handler.wfile.flush()
        handler.close_connection = True

    return run


def chunked_cut(body: bytes, send: int) -> Responder:
    """Chunked transfer encoding, broken off after ``send`` bytes without the last chunk."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        part = body[:send]
        handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        handler.wfile.flush()
        handler.close_connection = True

    return run


def chunked(pieces: list[bytes], content_type: str = "text/csv") -> Responder:
    """A complete chunked response, one HTTP chunk per piece."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for piece in pieces:
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")

    return run


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.server.owner.requests.append(
            Recorded(
                method=self.command,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
        )
        self.server.owner.next_responder()(self)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


class ScriptedServer:
    """The server and its script. ``release`` unblocks every ``stall()``ed handler."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default: Responder = csv("team,value\nA,1\n")
        self.release = threading.Event()
        self._script: list[Responder] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *responders: Responder) -> None:
        with self._lock:
            self._script.extend(responders)

    def next_responder(self) -> Responder:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    respond = staticmethod(respond)
    csv = staticmethod(csv)
    api_error = staticmethod(api_error)
    truncated = staticmethod(truncated)
    chunked = staticmethod(chunked)
    chunked_cut = staticmethod(chunked_cut)

    def stall(self) -> Responder:
        """Send nothing until the test ends (the client's read timeout fires first)."""

        def run(handler: _Handler) -> None:
            self.release.wait(30)
            handler.close_connection = True

        return run

    def drip(self, first: bytes, total: int) -> Responder:
        """Announce ``total`` bytes, send ``first``, then hang until the test ends."""

        def run(handler: _Handler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/csv")
            handler.send_header("Content-Length", str(total))
            handler.end_headers()
            handler.wfile.write(first)
            handler.wfile.flush()
            self.release.wait(30)
            handler.close_connection = True

        return run

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Everything logged so far: stdlib records and Airflow's structlog output (to stdout/err)."""
    caplog.set_level(logging.DEBUG)

    def text() -> str:
        out, err = capfd.readouterr()
        return caplog.text + out + err

    return text


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a connection as ``AIRFLOW_CONN_<ID>`` JSON; returns its conn id."""
    counter = iter(range(1_000_000))

    def make(
        host: str | None = None,
        password: str | None = API_KEY,
        conn_id: str | None = None,
        **extra: Any,
    ) -> str:
        conn_id = conn_id or f"sei_test_{next(counter)}"
        conn: dict[str, Any] = {"conn_type": "harness_sei", "extra": extra}
        if host is not None:
            conn["host"] = host
        if password is not None:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make
