"""The emulator's HTTP layer: a ``ThreadingHTTPServer`` speaking HTTP/1.1 on 127.0.0.1.

Per request: route (404 unknown path, 405 wrong method), read the body, latency, faults (see
:mod:`.faults`), authentication (``x-api-key: KEY`` or ``authorization: ApiKey KEY``, scheme in
any case; on the V2 export endpoints also the older ``SEI_API_KEY: KEY``; else 401), the rate
limit, then the endpoint (:mod:`.routes`). Bodies of known length go out with
``Content-Length``, streamed reports chunked. ``Harness-Account`` is accepted and ignored, and
so are ``projectIdentifier`` / ``orgIdentifier`` except on the V2 export endpoints, which
require them. Errors of the V2 endpoints have the platform's shape
(``{"status", "code", "message", "correlationId"}``), the others ``{"status", "message"}``.

Every request is recorded (:class:`RecordedRequest`) and logged as one line on the
``sei_emulator`` logger: method, path, status, body bytes sent. Header values
(the API key!) are never recorded or logged. The emulator's state and settings are
:class:`~sei_emulator.emulator.SEIEmulator`'s (:mod:`.emulator`).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sei_emulator import routes
from sei_emulator.faults import Fault, FaultKind
from sei_emulator.responses import (
    WRONG_HTML,
    WRONG_JSON,
    Body,
    BytesBody,
    Response,
    error_response,
)

if TYPE_CHECKING:
    from sei_emulator.emulator import SEIEmulator

log = logging.getLogger("sei_emulator")

#: The status recorded for a request answered with no response at all (drop, reset).
NO_RESPONSE = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it (never its headers).

    :param status: the status sent, or 0 when the connection was closed without a response.
    :param bytes_sent: body bytes written (not headers).
    :param fault: the fault applied, e.g. ``status:503``, ``truncate:0.5``, ``error_rate_429``,
        ``rate_limit_per_minute``, ``job:cut_download:0.5`` (a V2 job's cut download); None
        when none was.
    :param received: ``time.monotonic()`` when the request had been read in full (a stalled
        request is recorded when its handler ends; this says when it began).
    """

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int
    bytes_sent: int
    fault: str | None
    received: float = 0.0


class AbortRequest(Exception):
    """Close the connection now, without (more of) a response."""

    def __init__(self, rst: bool = False) -> None:
        super().__init__()
        self.rst = rst


class EmulatorHTTPServer(ThreadingHTTPServer):
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
    server: EmulatorHTTPServer

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
            methods, params, api = route
            if method not in methods:
                allow = {"Allow": ", ".join(methods)}
                message = f"Method {method} not allowed"
                self._send(routes.error(api, 405, message, headers=allow))
                return
            emu._wait(emu.latency_ms + emu.faults.latency_ms)
            fault, label, fraction = emu._next_fault()
            self._exchange.fault = label
            response, body_fault = self._pre_response(fault, label)
            if response is None:
                endpoint = methods[method]
                response = self._authorised_response(endpoint, raw, params, api)
            if label == "truncate_rate":
                body_fault = Fault.truncate(fraction)
            if body_fault is None and response.body_fault is not None:
                body_fault = response.body_fault
                self._exchange.fault = f"job:cut_download:{body_fault.param('fraction')}"
            self._send(response, body_fault)
        except AbortRequest as abort:
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
            RecordedRequest(
                ex.method, ex.path, ex.query, body, ex.status, ex.sent, ex.fault, ex.received
            )
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
            raise AbortRequest()
        if not isinstance(fault, Fault):
            return None, None
        if fault.kind is FaultKind.STATUS:
            code = fault.param("code")
            message, retry_after = fault.param("message"), fault.param("retry_after")
            return emu._injected_error(code, message, retry_after), None
        if fault.kind is FaultKind.RESET:
            raise AbortRequest(rst=True)
        if fault.kind is FaultKind.STALL:
            emu._wait(fault.param("seconds") * 1000)
            return None, None
        return None, fault

    def _presented_key(self, api: str) -> str | None:
        """Return the API key of the request: ``x-api-key``, ``authorization: ApiKey`` (any case)
        or, on the V2 API, ``SEI_API_KEY``."""
        key = self.headers.get("x-api-key")
        if key is None and api == routes.V2:
            key = self.headers.get("SEI_API_KEY")
        if key is None:
            scheme, _, value = (self.headers.get("authorization") or "").partition(" ")
            key = value.strip() if scheme.lower() == "apikey" else None
        return key

    def _authorised_response(
        self, endpoint: routes.Endpoint, raw: bytes, params: dict[str, str], api: str
    ) -> Response:
        emu = self.server.emulator
        key = self._presented_key(api)
        if not key:
            headers = "x-api-key or authorization: ApiKey"
            return routes.error(api, 401, f"Missing API key: send {headers}")
        if not hmac.compare_digest(key.encode(), emu.api_key.encode()):
            return routes.error(api, 401, "Invalid API key")
        if not emu._within_rate_limit(key):
            self._exchange.fault = self._exchange.fault or "rate_limit_per_minute"
            return emu._injected_error(429, "Rate limit exceeded", None)
        call = routes.Call(
            emu.org,
            self._exchange.query,
            raw,
            params,
            emu.report_bytes,
            accept_encoding=self.headers.get("accept-encoding") or "",
            jobs=emu.jobs,
            gzip_reports=emu.gzip_reports,
            gzip_cache=emu._gzip_cache,
        )
        return routes.call_endpoint(endpoint, call, api)

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
    received: float = field(default_factory=time.monotonic)


def _parts(body: Body, limit: int | None, piece: int | None) -> Iterator[memoryview]:
    """Yield the body's bytes as non-empty views of at most ``piece`` bytes, cut at ``limit``."""
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


def __getattr__(name: str) -> Any:
    """``SEIEmulator`` and ``DEFAULT_API_KEY`` moved to :mod:`.emulator`; still importable here."""
    if name in ("SEIEmulator", "DEFAULT_API_KEY"):
        from sei_emulator import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
