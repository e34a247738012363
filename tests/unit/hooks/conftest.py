"""A scripted HTTP server on 127.0.0.1 for the hook's tests, and connection helpers.

Each test queues the responses it wants (``server.script(server.csv(...), ...)``); requests
beyond the script get ``server.default`` (a small legacy report). Every request is recorded
(method, path, query, headers, body). The server is ``tests/hostile.py``'s; the responder
factories hang off it, so tests import nothing from here. Shared helpers that are not
fixtures are in ``support.py``.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import hostile
import pytest
from hostile import Close, Hold, HostileServer, Send, chunk, head

API_KEY = "pat.acct123.tok456.s3cr3t-value-never-logged"
#: What the server answers when no reply is scripted: a legacy report naming its collection.
SMALL_REPORT = b"Collection Name,value\nA,1\n"

Responder = hostile.Reply


def respond(
    status: int = 200, body: bytes | str = b"", headers: dict[str, str] | None = None
) -> Responder:
    """Make a complete response with a Content-Length."""
    return hostile.response(status, headers, body)


def csv(
    body: bytes | str, filename: str | None = "report.csv", content_type: str = "text/csv"
) -> Responder:
    """Make a 200 CSV attachment."""
    return hostile.csv(body, filename, content_type)


def api_error(status: int, message: str, retry_after: str | None = None) -> Responder:
    """Make the API's JSON error."""
    return hostile.json_error(status, message, retry_after)


def truncated(body: bytes, send: int) -> Responder:
    """Announce ``len(body)`` bytes, send ``send`` of them, close the connection."""
    return hostile.response(200, {"Content-Type": "text/csv"}, body, cut_after=send)


def chunked_cut(body: bytes, send: int) -> Responder:
    """Send chunked transfer encoding broken off after ``send`` bytes, without the last chunk."""
    start = head(200, {"Content-Type": "text/csv", "Transfer-Encoding": "chunked"})
    return [Send(start + chunk(body[:send])), Close()]


def chunked(pieces: list[bytes], content_type: str = "text/csv") -> Responder:
    """Make a complete chunked response, one HTTP chunk per piece."""
    return hostile.response(200, {"Content-Type": content_type}, pieces, framing="chunked")


def stall() -> Responder:
    """Send nothing until the test ends (the client's read timeout fires first)."""
    return [Hold()]


def drip(first: bytes, total: int) -> Responder:
    """Announce ``total`` bytes, send ``first``, then hang until the test ends."""
    start = head(200, {"Content-Type": "text/csv", "Content-Length": total})
    return [Send(start + first), Hold()]


class ScriptedServer(HostileServer):
    """A :class:`hostile.HostileServer` answering a small CSV by default."""

    respond = staticmethod(respond)
    csv = staticmethod(csv)
    api_error = staticmethod(api_error)
    truncated = staticmethod(truncated)
    chunked = staticmethod(chunked)
    chunked_cut = staticmethod(chunked_cut)
    stall = staticmethod(stall)
    drip = staticmethod(drip)

    def __init__(self) -> None:
        super().__init__(default=csv(SMALL_REPORT))


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


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


@pytest.fixture
def waits() -> list[float]:
    """The waits the retry policy chose (recorded instead of slept)."""
    return []


@pytest.fixture
def policy(waits: list[float]) -> Any:
    """Three quick retries, waits recorded in ``waits`` instead of slept."""
    from airflow_provider_sei.hooks.retry import RetryPolicy

    return RetryPolicy(max_retries=3, backoff_initial=0.01, jitter=0, sleep=waits.append)


@pytest.fixture
def hook(server: ScriptedServer, make_conn: Callable[..., str], policy: Any) -> Any:
    """A hook on ``server`` (no V2 identifiers), with ``policy``."""
    from airflow_provider_sei.hooks.sei import SEIHook

    return SEIHook(make_conn(host=server.url), retry_policy=policy, timeout=5)
