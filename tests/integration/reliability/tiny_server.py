"""A tiny threaded HTTP server on 127.0.0.1 answering the reports endpoint with exactly the
status, headers and bytes a test gives it: for what the emulator cannot send (a CSV whose rows
disagree with its header, odd Content-Types, an error body that drips in byte by byte)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .helpers import REPORTS_PATH, SECRET_KEY


@dataclass
class Reply:
    """What the server sends.

    :param length: the announced Content-Length, when it should differ from the body's.
    :param drip_s: a pause after every byte of the body.
    """

    body: bytes
    content_type: str | None = "text/csv; charset=utf-8"
    length: int | None = None
    status: int = 200
    drip_s: float = 0.0


@dataclass
class TinyServer:
    url: str = ""
    reply: Reply = field(default_factory=lambda: Reply(b""))
    hits: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state: TinyServer = self.server.state
        self.rfile.read(int(self.headers.get("content-length") or 0))
        state.hits += 1
        if self.path.split("?")[0] != REPORTS_PATH or self.headers.get("x-api-key") != SECRET_KEY:
            self._send(Reply(b'{"status":"error","message":"Invalid API key"}',
                             "application/json", status=401))  # fmt: skip
            return
        self._send(state.reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Disposition", 'attachment; filename="report.csv"')
        self.send_header("Content-Length", str(len(body) if reply.length is None else reply.length))
        if reply.length is not None and reply.length != len(body):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        pieces = [body[i : i + 1] for i in range(len(body))] if reply.drip_s else [body]
        try:
            for piece in pieces:
                self.wfile.write(piece)
                self.wfile.flush()
                if reply.drip_s:
                    time.sleep(reply.drip_s)
        except OSError:  # the client gave up
            self.close_connection = True


@contextmanager
def serve() -> Iterator[TinyServer]:
    state = TinyServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
