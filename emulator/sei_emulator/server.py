"""The emulator's HTTP layer: a ``ThreadingHTTPServer`` speaking HTTP/1.1 on 127.0.0.1.

Per request: route (404 unknown path, 405 wrong method), read the body, latency, faults (see
:mod:`.faults`), authentication (``x-api-key: KEY`` or ``authorization: ApiKey KEY``, scheme in
any case; else 401), the rate limit, then the endpoint (:mod:`.routes`). Bodies of known length
go out with ``Content-Length``, streamed reports chunked. ``Harness-Account`` and any query
parameters (``projectIdentifier``, ``orgIdentifier``) are accepted and ignored.

Every request is recorded (:class:`RecordedRequest`) and logged as one line on the
``sei_emulator`` logger: method, path, status, body bytes sent. Header values
(the API key!) are never recorded or logged.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from sei_emulator import routes
from sei_emulator.faults import Fault, FaultKind, Faults
from sei_emulator.org import Org
from sei_emulator.responses import (
    WRONG_HTML,
    WRONG_JSON,
    Body,
    BytesBody,
    Response,
    error_response,
)

log = logging.getLogger("sei_emulator")

DEFAULT_API_KEY = "sei-emulator-key"
#: The status recorded for a request answered with no response at all (drop, reset).
NO_RESPONSE = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it (never its headers).

    :param status: the status sent, or 0 when the connection was closed without a response.
    :param bytes_sent: body bytes written (not headers).
    :param fault: the fault applied, e.g. ``status:503``, ``truncate:0.5``, ``error_rate_429``,
        ``rate_limit_per_minute``; None when none was.
    """

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int
    bytes_sent: int
    fault: str | None


class _Abort(Exception):
    """Close the connection now, without (more of) a response."""

    def __init__(self, rst: bool = False) -> None:
        super().__init__()
        self.rst = rst


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: SEIEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body of a
    # keep-alive response waits ~40 ms for the client's delayed ACK. Real gateways set
    # TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is logged by _handle, without the request line's query

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: " + format, *args)

    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        path, _, qs = self.path.partition("?")
        raw = self._read_body()
        self._exchange = _Exchange(method, path, dict(parse_qsl(qs, keep_blank_values=True)), raw)
        self._headers_sent = False
        self._close: bool | None = None  # close after recording: True with an RST, False a FIN
        try:
            route = routes.match(path)
            if route is None:
                self._send(error_response(404, f"Not found: {path}"))
                return
            methods, params = route
            if method not in methods:
                allow = {"Allow": ", ".join(methods)}
                self._send(error_response(405, f"Method {method} not allowed", allow))
                return
            emu._wait(emu.latency_ms + emu.faults.latency_ms)
            fault, label, fraction = emu._next_fault()
            self._exchange.fault = label
            response, body_fault = self._pre_response(fault, label)
            if response is None:
                endpoint = methods[method]
                response = self._authorised_response(endpoint, self._exchange.query, raw, params)
            if label == "truncate_rate":
                body_fault = Fault.truncate(fraction)
            self._send(response, body_fault)
        except _Abort as abort:
            self._close = abort.rst
        except OSError:  # the client went away
            self.close_connection = True
        except Exception:
            log.exception("emulator: %s %s failed", method, path)
            if self._headers_sent:
                self._close = False
            else:
                self._send(error_response(500, "Internal emulator error"))
        finally:
            self._finished()
            if self._close is not None:
                self._abort(self._close)

    def _finished(self, sent: int | None = None) -> None:
        """Record and log the exchange, once; called just before its last bytes go out, so a
        client that has the whole response finds its request in ``emulator.requests``."""
        ex = self._exchange
        if ex.recorded:
            return
        ex.recorded = True
        if sent is not None:
            ex.sent = sent
        body = _json_or_none(ex.raw)
        self.server.emulator._record(
            RecordedRequest(ex.method, ex.path, ex.query, body, ex.status, ex.sent, ex.fault)
        )
        log.info("%s %s %s %d", ex.method, ex.path, ex.status or "-", ex.sent)

    def _pre_response(
        self, fault: Fault | str | None, label: str | None
    ) -> tuple[Response | None, Fault | None]:
        """Faults that replace the response, and body faults for later."""
        emu = self.server.emulator
        if label in ("error_rate_429", "error_rate_503"):
            code = 429 if label == "error_rate_429" else 503
            return emu._injected_error(code, None, None), None
        if label == "drop_rate":
            raise _Abort()
        if not isinstance(fault, Fault):
            return None, None
        if fault.kind is FaultKind.STATUS:
            code = fault.param("code")
            message, retry_after = fault.param("message"), fault.param("retry_after")
            return emu._injected_error(code, message, retry_after), None
        if fault.kind is FaultKind.RESET:
            raise _Abort(rst=True)
        if fault.kind is FaultKind.STALL:
            emu._wait(fault.param("seconds") * 1000)
            return None, None
        return None, fault

    def _authorised_response(
        self, endpoint: routes.Endpoint, query: dict[str, str], raw: bytes, params: dict[str, str]
    ) -> Response:
        emu = self.server.emulator
        key = self.headers.get("x-api-key")
        if key is None:
            scheme, _, value = (self.headers.get("authorization") or "").partition(" ")
            key = value.strip() if scheme.lower() == "apikey" else None
        if not key:
            return error_response(401, "Missing API key: send x-api-key or authorization: ApiKey")
        if not hmac.compare_digest(key.encode(), emu.api_key.encode()):
            return error_response(401, "Invalid API key")
        if not emu._within_rate_limit(key):
            self._exchange.fault = self._exchange.fault or "rate_limit_per_minute"
            return emu._injected_error(429, "Rate limit exceeded", None)
        call = routes.Call(emu.org, query, raw, params, emu.report_bytes)
        return routes.call_endpoint(endpoint, call)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response, fault: Fault | None = None) -> None:
        """Write ``response``, with a body ``fault`` if any."""
        body: Body = response.body
        status, content_type = response.status, response.content_type
        kind = fault.kind if fault is not None else None
        headers = response.headers
        if fault is not None and kind is FaultKind.WRONG_BODY:
            html = fault.param("kind") == "html"
            status, headers = 200, {}
            content_type = "text/html; charset=utf-8" if html else "application/json"
            body = BytesBody(WRONG_HTML if html else WRONG_JSON)
        fraction = fault.param("fraction") if fault is not None else None
        if kind in (FaultKind.TRUNCATE, FaultKind.CHUNKED_CUT) and body.length is None:
            body = BytesBody(body.materialise())
        if self.command == "HEAD":
            body = BytesBody(b"")
        chunked = kind is FaultKind.CHUNKED_CUT or body.length is None
        limit = int(body.length * fraction) if fraction is not None and body.length else None
        self._exchange.status = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(body.length))
        if limit is not None:
            self.send_header("Connection", "close")
            self._close = False
        if body.length == 0:
            self._finished(0)
        self.end_headers()
        self._headers_sent = True
        piece, interval = None, 0.0
        if fault is not None and kind is FaultKind.DRIP:
            piece, interval = fault.param("chunk_bytes"), fault.param("interval_s")
        self._write_body(body, chunked, limit, piece, interval)

    def _write_body(
        self, body: Body, chunked: bool, limit: int | None, piece: int | None, interval: float
    ) -> None:
        """Send the body (``limit``: cut there); records the exchange before the last bytes."""
        emu, sock = self.server.emulator, self.connection
        parts = _parts(body, limit, piece)
        following, sent = next(parts, None), 0
        while following is not None:
            part, following = following, next(parts, None)
            sent += len(part)
            self._exchange.sent = sent
            if following is None and (not chunked or limit is not None):
                self._finished(sent)
            if chunked:
                sock.sendall(b"%x\r\n" % len(part))
                sock.sendall(part)
                sock.sendall(b"\r\n")
            else:
                sock.sendall(part)
            if interval and following is not None:
                emu._wait(interval * 1000)
        if chunked and limit is None:
            self._finished(sent)
            sock.sendall(b"0\r\n\r\n")

    def _abort(self, rst: bool) -> None:
        """Close the socket now; with ``rst`` by an RST (``SO_LINGER`` 0) rather than a FIN."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            self.rfile.close()  # drops the last reference: the descriptor really closes
        except OSError:
            pass


@dataclass
class _Exchange:
    """What the handler knows of the request being served, for its record."""

    method: str
    path: str
    query: dict[str, str]
    raw: bytes
    status: int = NO_RESPONSE
    sent: int = 0
    fault: str | None = None
    recorded: bool = False


def _parts(body: Body, limit: int | None, piece: int | None) -> Iterator[memoryview]:
    """The body's bytes as non-empty views of at most ``piece`` bytes, cut at ``limit``."""
    sent = 0
    for data in body:
        view = memoryview(data)
        step = piece or len(view) or 1
        for start in range(0, len(view), step):
            part = view[start : start + step]
            if limit is not None and sent + len(part) > limit:
                part = part[: limit - sent]
            if len(part):
                yield part
            sent += len(part)
            if limit is not None and sent >= limit:
                return


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class SEIEmulator:
    """A local Harness SEI reports server over a deterministic synthetic org.

    :param host: the address to bind; keep ``127.0.0.1``.
    :param port: the port; 0 picks a free one (read it back from ``base_url``).
    :param api_key: the accepted key (default ``sei-emulator-key``).
    :param seed: seeds the org, its activity and the random faults.
    :param teams: the number of teams in the org (ref ids 1, 123, 456, 789, 1001, ...).
    :param latency_ms: delay before every response, added to ``Faults.latency_ms``.
    :param faults: the fault configuration; None = no faults.
    :param report_bytes: large-report mode: every non-empty report becomes its header and rows
        repeated to exactly this many bytes (for streaming benchmarks).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        seed: int = 42,
        teams: int = 12,
        latency_ms: int = 0,
        faults: Faults | None = None,
        report_bytes: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.api_key, self.seed = api_key, seed
        self.latency_ms, self.report_bytes = latency_ms, report_bytes
        self.org = Org(seed=seed, teams=teams)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._recorded: list[RecordedRequest] = []
        self._windows: dict[str, collections.deque[float]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_faults(faults or Faults())

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server, no trailing slash."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> SEIEmulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        self._stop.clear()
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="sei-emulator", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: stalled and dripping handlers give up, open connections close."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SEIEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault configuration (thread-safe); restarts the random fault stream."""
        with self._lock:
            self._faults = faults
            self._script = collections.deque(faults.script)
            self._rng = random.Random(f"{self.seed}:faults")

    @property
    def pending_script(self) -> list[Fault]:
        """The scripted faults not yet applied."""
        with self._lock:
            return list(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests served so far."""
        with self._lock:
            return list(self._recorded)

    def reset(self) -> None:
        """Forget recorded requests, remaining scripted faults and rate-limit windows."""
        with self._lock:
            self._recorded.clear()
            self._script.clear()
            self._windows.clear()
            self._rng = random.Random(f"{self.seed}:faults")

    # The handler's helpers.

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    def _wait(self, ms: float) -> None:
        """Sleep ``ms``; a ``stop()`` meanwhile aborts the request."""
        if ms > 0 and self._stop.wait(ms / 1000):
            raise _Abort()
        if self._stop.is_set():
            raise _Abort()

    def _next_fault(self) -> tuple[Fault | str | None, str | None, float]:
        """The scripted fault, else the random one (a ``Faults`` field name), and a fraction."""
        with self._lock:
            if self._script:
                fault = self._script.popleft()
                return fault, fault.label, 0.0
            u, fraction = self._rng.random(), self._rng.uniform(0.1, 0.9)
            name = self._faults.draw(u)
            return name, name, fraction

    def _injected_error(self, code: int, message: str | None, retry_after: int | None) -> Response:
        if retry_after is None and code == 429:
            retry_after = self._faults.retry_after
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return error_response(code, message or f"Injected HTTP {code}", headers)

    def _within_rate_limit(self, key: str) -> bool:
        limit = self._faults.rate_limit_per_minute
        if limit is None:
            return True
        digest = hashlib.sha256(key.encode()).hexdigest()  # never keep the key itself
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(digest, collections.deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True
