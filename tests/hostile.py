"""The worst HTTP server: raw sockets on 127.0.0.1, playing scripted replies act by act.

For reliability and security tests that need what ``http.server`` cannot do: drip the status
line, send ``103 Early Hints`` first, lie in ``Content-Length``, cut a gzip stream that has no
framing at all, close mid-chunk, reset the connection, echo the request back, hold silently::

    with HostileServer() as srv:
        srv.script(response(200, {"Content-Type": "text/csv"}, b"a,b\\n", drip_headers=(1, 0.05)))
        srv.route("/v2/jobs", json_response({"id": 7}), method="POST")
        srv.default = lambda request: redirect(302, request.headers["x-api-key"])
        ...  # point the client at srv.url
        assert srv.requests_to("/v2/jobs")[0].json() == {...}

A reply is a list of acts (:class:`Send`, :class:`Drip`, :class:`Pause`, :class:`Close`,
:class:`Reset`, :class:`Hold`), or a callable that takes the parsed :class:`Request` and
returns one. The builders (:func:`response`, :func:`csv`, :func:`json_response`,
:func:`json_error`, :func:`redirect`, and :func:`head` and :func:`chunk` for hand-made
replies) return lists, so replies compose with ``+``. After a reply that neither closes, resets
nor holds, the connection stays open for the client's next request (HTTP/1.1 keep-alive).
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

# -- what the server records -----------------------------------------------------------------


@dataclass
class Request:
    """One request as it arrived.

    :param query: the query string's parameters (the last value of a repeated one).
    :param headers: lower-case names; repeated headers joined with ``", "``.
    :param at: ``time.monotonic()`` when the request had been read in full.
    :param target: the request target exactly as sent (path and query).
    :param connection: which accepted connection it came on (1, 2, ...).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float
    target: str = ""
    connection: int = 0

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)


# -- acts: the steps of a reply ----------------------------------------------------------------


class Act:
    """One step of a reply; ``play`` returns whether the connection lives on."""

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Send(Act):
    """Send bytes at once."""

    data: bytes

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        sock.sendall(self.data)
        return True


@dataclass(frozen=True)
class Drip(Act):
    """Send ``size`` bytes every ``every`` seconds, the first ones at once."""

    data: bytes
    size: int = 1
    every: float = 0.05

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        for start in range(0, len(self.data), self.size):
            if start and stopping.wait(self.every):
                return False
            sock.sendall(self.data[start : start + self.size])
        return True


@dataclass(frozen=True)
class Pause(Act):
    """Send nothing for ``seconds`` (cut short when the server stops)."""

    seconds: float

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        return not stopping.wait(self.seconds)


@dataclass(frozen=True)
class Close(Act):
    """End the connection with a FIN."""

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        sock.shutdown(socket.SHUT_WR)
        return False


@dataclass(frozen=True)
class Reset(Act):
    """End the connection with a RST (``SO_LINGER`` 0): the client sees ECONNRESET."""

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        return False


@dataclass(frozen=True)
class Hold(Act):
    """Keep the connection open, sending nothing, until the server stops or the client leaves."""

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        while not stopping.is_set() and sock.recv(65536):  # stop() shuts the socket: b""
            pass  # whatever the client sends meanwhile is ignored
        return False


Reply = Sequence[Act] | Callable[[Request], "Reply"]

# -- builders --------------------------------------------------------------------------------

Headers = Mapping[str, Any] | Iterable[tuple[Any, Any]] | None


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _pairs(headers: Headers) -> list[tuple[Any, Any]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def head(status: int, headers: Headers = None, reason: str | None = None) -> bytes:
    """Make a status line and header block; names and values may be bytes, sent as they are."""
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    lines = [b"HTTP/1.1 %d %s" % (status, _bytes(reason))]
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in _pairs(headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """Frame one chunk of chunked transfer encoding (``b""`` makes the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)  # a real gzip header and trailer
    if encoding == "deflate":
        return zlib.compress(body)  # HTTP's "deflate" is the zlib format
    return body  # no encoding, or one named in the header only (a lie)


def _chunked(pieces: list[bytes], cut_after: int | None) -> bytes:
    out = b""
    for piece in filter(None, pieces):  # an empty chunk would end the body
        if cut_after is not None and cut_after <= len(piece):
            return out + b"%x\r\n" % len(piece) + piece[:cut_after]  # announced, unfinished
        out += chunk(piece)
        cut_after = None if cut_after is None else cut_after - len(piece)
    return out if cut_after is not None else out + chunk(b"")


def _paced(data: bytes, drip: tuple[int, float] | None) -> Act:
    return Send(data) if drip is None else Drip(data, *drip)


def response(
    status: int = 200,
    headers: Headers = None,
    body: bytes | str | list[bytes] = b"",
    *,
    reason: str | None = None,
    framing: str = "length",
    content_length: int | None = None,
    content_encoding: str | None = None,
    cut_after: int | None = None,
    interim: Iterable[tuple[int, Headers]] = (),
    drip_headers: tuple[int, float] | None = None,
    drip_body: tuple[int, float] | None = None,
    reset_at_end: bool = False,
) -> list[Act]:
    """Make a whole response, as honest or as hostile as asked.

    :param body: bytes, or a list of pieces (one HTTP chunk each when chunked).
    :param framing: ``"length"`` (Content-Length), ``"chunked"``, or ``"close"`` (neither: the
        body ends where the connection does). Framing headers already in ``headers`` are kept
        and not added again.
    :param content_length: the Content-Length to announce, true or not; sent with any framing.
    :param content_encoding: ``"gzip"`` or ``"deflate"`` compress the body; any other value is
        only announced.
    :param cut_after: send only this many bytes of the (encoded) body, then close; when
        chunked, the chunk the cut falls in is announced in full and there is no last chunk.
    :param interim: ``(status, headers)`` of 1xx responses sent before this one.
    :param drip_headers: ``(bytes, seconds)``: drip the interim and final heads.
    :param drip_body: ``(bytes, seconds)``: drip the body (with its chunk framing).
    :param reset_at_end: end with a RST. Otherwise the reply closes (FIN) when the framing is
        ``"close"``, the body is cut, or ``content_length`` lies; else the connection lives on.
    """
    pieces = [_bytes(body)] if isinstance(body, bytes | str) else list(body)
    if content_encoding is not None:
        pieces = [_encode(b"".join(pieces), content_encoding)]
    size = sum(map(len, pieces))
    fields = _pairs(headers)
    names = {_bytes(name).lower() for name, _ in fields}
    if content_encoding is not None and b"content-encoding" not in names:
        fields.append(("Content-Encoding", content_encoding))
    if content_length is not None or (framing == "length" and b"content-length" not in names):
        fields.append(("Content-Length", size if content_length is None else content_length))
    if framing == "chunked" and b"transfer-encoding" not in names:
        fields.append(("Transfer-Encoding", "chunked"))
    heads = b"".join(head(code, fields_1xx) for code, fields_1xx in interim)
    wire = (
        _chunked(pieces, cut_after)
        if framing == "chunked"
        else b"".join(pieces)[:cut_after]  # [:None] is everything
    )
    acts = [_paced(heads + head(status, fields, reason), drip_headers), _paced(wire, drip_body)]
    lying = content_length is not None and content_length != size
    if reset_at_end:
        acts.append(Reset())
    elif framing == "close" or cut_after is not None or lying:
        acts.append(Close())
    return acts


def csv(
    body: bytes | str,
    filename: str | bytes | None = "report.csv",
    content_type: str = "text/csv",
    **options: Any,
) -> list[Act]:
    """Make a 200 CSV attachment; ``filename`` may be any bytes; ``options`` go to ``response``."""
    headers: list[tuple[str, Any]] = [("Content-Type", content_type)]
    if filename is not None:
        headers.append(("Content-Disposition", b'attachment; filename="%s"' % _bytes(filename)))
    return response(200, headers, body, **options)


def json_response(payload: Any, status: int = 200, **options: Any) -> list[Act]:
    """Make a JSON response; ``options`` go to ``response``."""
    return response(status, {"Content-Type": "application/json"}, json.dumps(payload), **options)


def json_error(status: int, message: str, retry_after: str | float | None = None) -> list[Act]:
    """Make the API's error, ``{"status": "error", "message": ...}``, maybe with a Retry-After."""
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return response(status, headers, json.dumps({"status": "error", "message": message}))


def redirect(status: int, location: str | bytes) -> list[Act]:
    """Make a redirect to ``location`` (to echo the request in it, make the reply a callable)."""
    return response(status, {"Location": location})


NOT_SCRIPTED = response(404, {"Content-Type": "text/plain"}, b"no reply scripted\n")

# -- the server ------------------------------------------------------------------------------


class _Reader:
    """Buffered reads of one connection; EOFError when the client has gone."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def until(self, marker: bytes, limit: int = 1 << 16) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise ValueError("no end of line in sight")
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + len(marker) :]
        return line

    def exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buffer += data

    def request(self, connection: int) -> Request:
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while size := int(self.until(b"\r\n").split(b";")[0], 16):
                body += self.exact(size)
                self.exact(2)
            while self.until(b"\r\n"):  # trailers, up to the blank line
                pass
        else:
            body = self.exact(int(headers.get("content-length") or 0))
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return Request(method, parts.path, query, headers, body, time.monotonic(), target,
                       connection)  # fmt: skip


_S = TypeVar("_S", bound="HostileServer")


class HostileServer:
    """A threaded raw-socket HTTP/1.1 server on a free port of 127.0.0.1.

    Each request is recorded in ``requests``, then answered by the first of: the route script
    for its method and path, the route script for its path, the main script, ``default``.
    A reply that raises is kept in ``errors`` and answered with a 500.
    """

    def __init__(self, default: Reply = NOT_SCRIPTED) -> None:
        self.requests: list[Request] = []
        self.errors: list[Exception] = []
        self.default = default
        self.connections = 0
        self._script: deque[Reply] = deque()
        self._routes: dict[tuple[str | None, str], deque[Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def hits(self) -> int:
        """Count the requests recorded."""
        return len(self.requests)

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        """Return the requests to ``path`` (of ``method``, if given), in order."""
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    def route(self, path: str, *replies: Reply, method: str | None = None) -> None:
        """Queue replies for the next requests to ``path`` (of ``method``, if given)."""
        with self._lock:
            self._routes.setdefault((method, path), deque()).extend(replies)

    def reset(self) -> None:
        """Forget the recorded requests and errors, and the unplayed scripts."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self._script.clear()
            self._routes.clear()

    def start(self: _S) -> _S:
        """Accept connections, each served by a thread of its own."""
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop at once, even mid-drip or mid-hold: every open connection is shut."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a recv or sendall in its thread
        if self._acceptor.is_alive():
            with suppress(OSError):  # wake accept()
                socket.create_connection(self._listener.getsockname(), timeout=0.5).close()
            self._acceptor.join(1)
        self._listener.close()
        deadline = time.monotonic() + 1
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._open.add(sock)
                self.connections += 1
                thread = threading.Thread(
                    target=self._serve, args=(sock, self.connections), daemon=True
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, sock: socket.socket, connection: int) -> None:
        reader = _Reader(sock)
        try:
            while not self._stopping.is_set():
                request = reader.request(connection)
                with self._lock:
                    self.requests.append(request)
                if not self._play(self._reply_to(request), sock):
                    return
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (EOFError, OSError, ValueError):
            pass  # the client left, the server stopped, or that was not HTTP
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _reply_to(self, request: Request) -> Sequence[Act]:
        with self._lock:
            queues = [self._routes.get((request.method, request.path)),
                      self._routes.get((None, request.path)), self._script]  # fmt: skip
            queue = next((q for q in queues if q), None)
            reply = queue.popleft() if queue else self.default
        try:
            while callable(reply):
                reply = reply(request)
        except Exception as exc:
            self.errors.append(exc)
            return response(500, {"Connection": "close"}, f"reply failed: {exc!r}", framing="close")
        return reply

    def _play(self, acts: Sequence[Act], sock: socket.socket) -> bool:
        return all(act.play(sock, self._stopping) for act in acts)  # stops at the first False
