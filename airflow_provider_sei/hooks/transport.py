"""The hook's HTTP transport: a wall-clock bound on every attempt, 1xx skipped, the rate limit paid.

**One deadline per attempt, headers included.** Socket timeouts bound each read, not their sum:
a server that drips its status line and headers a byte at a time keeps a ``requests`` call
alive forever. So every attempt runs inside :func:`deadline`; the connections of
:class:`SEIAdapter` register their sockets with it (new ones as soon as the TCP connection
exists, a proxy's CONNECT included; every one again before the request is written), and
when the deadline passes a timer shuts the sockets down. Whatever was blocked on them -- connecting,
waiting for the status line, reading headers or body -- returns at once, and
:attr:`Deadline.expired` tells the hook to report a timeout rather than a broken connection.
A connection handed back to the pool is unwatched at once: another thread may be using it
when the first attempt's deadline passes. A TLS handshake is bounded by its socket timeout,
which the hook clips to the time left (``ssl`` applies it to the whole handshake).
Cost: one timer thread per attempt (about 0.1 ms), nothing per read.

**Interim responses.** ``http.client`` skips a ``100 Continue`` only; a ``103 Early Hints``
would be taken for the final response. Our connections skip every 1xx but ``101``, reading
at most ``_MAX_INTERIM_HEADERS`` header lines of at most 64 KiB each.

**The rate limit.** An adapter given a :class:`~airflow_provider_sei.hooks.ratelimit.RateLimiter`
pays it before every request it sends -- retries, polls and listings included -- and tells it
about every 429. One hook, one adapter, one budget, whatever the number of threads using it.

``requests.Session`` is not documented as thread-safe. The multi-team operator shares one
session between its threads, relying on this: the session's settings (headers, TLS, proxies)
are set before the threads start and never changed, cookies are neither sent nor stored by the
SEI API, and urllib3's connection pool, which does the real sharing, is thread-safe.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_sei.exceptions import SEITimeoutError
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.hooks.retry import now, parse_retry_after

_MAX_LINE = 65536
_MAX_INTERIM_HEADERS = 100
_local = threading.local()


class Deadline:
    """Shuts down the sockets of one attempt when ``at`` (a :func:`now` value) passes."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, at - now()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - now())

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has)."""
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def unwatch(self, sock: socket.socket | None) -> None:
        """Leave ``sock`` alone: its connection went back to the pool, maybe to another thread."""
        with self._lock, contextlib.suppress(ValueError):
            self._sockets.remove(sock)  # type: ignore[arg-type]

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[Deadline]:
    """Bound the HTTP calls this thread makes inside the block by ``at`` (a :func:`now` value)."""
    watch = Deadline(at)
    previous = getattr(_local, "deadline", None)
    _local.deadline = watch
    try:
        yield watch
    finally:
        _local.deadline = previous
        watch.cancel()


def _current() -> Deadline | None:
    return getattr(_local, "deadline", None)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _InterimSkippingResponse(http.client.HTTPResponse):
    """An ``http.client`` response that skips 1xx interim responses (``103 Early Hints``)."""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(_MAX_INTERIM_HEADERS):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 <= status < 200) or status == 101:
                return version, status, reason
            self._skip_interim_headers()
        raise http.client.HTTPException("too many interim (1xx) responses")

    def _skip_interim_headers(self) -> None:
        for _ in range(_MAX_INTERIM_HEADERS + 1):
            line = self.fp.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise http.client.LineTooLong("interim response header line")
            if line in (b"\r\n", b"\n", b""):
                return
        raise http.client.HTTPException("too many headers in an interim (1xx) response")


class _DeadlineMixin:
    """Registers the connection's socket with the thread's current :class:`Deadline`."""

    response_class: Any = _InterimSkippingResponse
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        current = _current()
        if current is not None:
            current.watch(sock)  # a proxy tunnel (CONNECT) happens on it before any TLS
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        current = _current()
        if current is not None and self.sock is not None:
            current.watch(self.sock)  # a kept-alive connection
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _ReleasingPoolMixin:
    """Unwatches a connection the moment it goes back to the pool.

    urllib3 returns a connection as soon as its response is read to the end, while the attempt
    that read it may still be writing the report out; another thread may take the connection
    meanwhile, and the first attempt's deadline must not shut it under that thread's request.
    """

    def _put_conn(self, conn: Any) -> None:
        current = _current()
        if current is not None and conn is not None:
            current.unwatch(getattr(conn, "sock", None))
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPConnectionPool(_ReleasingPoolMixin, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(_ReleasingPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class SEIAdapter(HTTPAdapter):
    """``HTTPAdapter`` with deadline-aware connections and an optional requests-per-minute budget.

    Never retries on its own (``max_retries=0``): the hook's retry policy is the only layer, so
    each attempt is counted once.

    :param pool_maxsize: connections kept open per host (threads sharing the hook).
    :param limiter: the budget every request pays before it is sent, or None.
    :param cancel: set to interrupt a request waiting for the limiter (a killed task).
    """

    def __init__(
        self,
        *,
        pool_maxsize: int = 10,
        limiter: RateLimiter | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.limiter = limiter
        self.cancel = cancel
        super().__init__(pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.limiter is not None:
            current = _current()
            try:
                self.limiter.acquire(self.cancel, current.remaining() if current else None)
            except TimeoutError as exc:
                raise SEITimeoutError(
                    f"Waiting for the rate limiter would pass the call's time bound ({exc})"
                ) from None
        response = super().send(request, *args, **kwargs)
        if self.limiter is not None:
            if response.status_code == 429:
                self.limiter.on_throttled(parse_retry_after(response.headers.get("Retry-After")))
            elif response.status_code < 500:
                self.limiter.on_success()
        return response
