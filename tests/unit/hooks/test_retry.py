"""``RetryPolicy``: what is worth another attempt, how long to wait, when to give up."""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import datetime, timezone

import pytest
import requests

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIDestinationError,
    SEIError,
    SEIExportJobError,
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
    SEITimeoutError,
    SEITLSError,
)
from airflow_provider_sei.hooks.retry import (
    RETRY_STATUSES,
    RetryPolicy,
    describe_error,
    parse_retry_after,
)

LOG = logging.getLogger("test.retry")


# -- fail-fast classification: the single source of "may another attempt succeed" -------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),  # the request is wrong: it stays wrong
        (401, False),
        (403, False),
        (404, False),
        (408, True),  # the server timed the request out: may be repeated unchanged
        (409, False),
        (429, True),
        (500, True),
        (501, False),  # not implemented: never will be, on the next attempt
        (502, True),
        (503, True),
        (504, True),
        (505, False),  # HTTP version not supported: a fixed property of the server
    ],
)
def test_statuses(status, retryable):
    assert RetryPolicy().is_retryable(SEIAPIError(status, "x")) is retryable


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (requests.exceptions.SSLError("wrong version number"), False),
        (SEITLSError("handshake failed"), False),
        (requests.ConnectionError("refused"), True),
        (SEIConnectionError("could not connect"), True),
        (requests.ConnectTimeout(), True),
        (requests.ReadTimeout(), True),
        (SEITimeoutError("max_elapsed"), True),
        (SEIIncompleteReadError(100, 10), True),
        (SEIResponseError("not a report"), False),
        (SEIExportJobError("exp_1", "FAILED"), False),
        (SEIDestinationError("no bucket"), False),
        (SEIInvalidRequestError("date_start", "x", "a date"), False),
        (SEIError("anything else"), False),
        (ValueError("bug"), False),
        (ssl.SSLError(), False),
        (None, False),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, bool) else str(value),
)
def test_errors(error, retryable):
    assert RetryPolicy().is_retryable(error) is retryable


def test_a_tls_error_is_not_retried_although_it_is_a_connection_error():
    assert issubclass(requests.exceptions.SSLError, requests.ConnectionError)
    assert issubclass(SEITLSError, SEIConnectionError)
    assert not RetryPolicy().is_retryable(requests.exceptions.SSLError())


def test_the_retried_statuses_are_documented_ones():
    assert {408, 429, 500, 502, 503, 504} == RETRY_STATUSES
    policy = RetryPolicy(retry_statuses=frozenset({418}))
    assert policy.is_retryable(SEIAPIError(418, "teapot"))
    assert not policy.is_retryable(SEIAPIError(503, "busy"))


# -- waits -------------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(backoff_initial=1, backoff_max=60, jitter=0.5)
    for n, base in [(1, 1), (2, 2), (3, 4), (7, 60)]:
        for _ in range(20):
            assert base <= policy.backoff(n) <= min(60, base * 1.5)
    exact = RetryPolicy(backoff_initial=0.5, jitter=0)
    assert [exact.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_retry_after_wins_and_is_capped_by_backoff_max():
    policy = RetryPolicy(backoff_initial=1, backoff_max=60, jitter=0)
    assert policy.wait_for(SEIAPIError(429, "x", retry_after=7), 1) == 7
    assert policy.wait_for(SEIAPIError(429, "x", retry_after=3600), 1) == 60
    assert policy.wait_for(SEIAPIError(429, "x", retry_after=0), 3) == 0
    assert policy.wait_for(SEIAPIError(503, "x"), 3) == 4


def test_parse_retry_after():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"jitter": 2},
        {"jitter": -0.1},
        {"backoff_initial": 10, "backoff_max": 1},
        {"backoff_initial": 0},
        {"max_elapsed": 0},
    ],
)
def test_validation(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name.split("_")[0]):
        RetryPolicy(**kwargs)


# -- running ----------------------------------------------------------------------------------


class Flaky:
    """Fails with the given errors, one per call, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(waits: list[float], **kwargs: object) -> RetryPolicy:
    options = {"max_retries": 3, "backoff_initial": 0.5, "jitter": 0, **kwargs}
    return RetryPolicy(sleep=waits.append, **options)  # type: ignore[arg-type]


def test_call_retries_what_is_retryable_and_waits_between():
    waits: list[float] = []
    fn = Flaky(SEIAPIError(503, "busy"), requests.ReadTimeout(), SEIIncompleteReadError(9, 1))
    assert policy(waits).call(fn, what="GET x", logger=LOG) == "ok"
    assert fn.calls == 4
    assert waits == [0.5, 1.0, 2.0]


def test_call_raises_what_is_not_retryable_at_once():
    waits: list[float] = []
    error = SEIAPIError(401, "bad key")
    fn = Flaky(error)
    with pytest.raises(SEIAPIError) as info:
        policy(waits).call(fn, what="GET x", logger=LOG)
    assert info.value is error
    assert (fn.calls, waits) == (1, [])


def test_call_gives_up_after_max_retries_with_the_last_error():
    waits: list[float] = []
    last = SEIAPIError(503, "third")
    fn = Flaky(SEIAPIError(503, "1"), SEIAPIError(503, "2"), last, SEIAPIError(503, "x"))
    with pytest.raises(SEIAPIError) as info:
        policy(waits, max_retries=2).call(fn, what="GET x", logger=LOG)
    assert info.value is last
    assert fn.calls == 3


def test_no_wait_ends_after_the_deadline():
    """A wait that would outlast the call's bound is not taken: the error is raised now."""
    import time

    waits: list[float] = []
    fn = Flaky(SEIAPIError(503, "busy"), SEIAPIError(503, "busy"))
    deadline = time.monotonic() + 0.75  # room for the first wait (0.5 s), not the second
    with pytest.raises(SEIAPIError):
        policy(waits).call(fn, what="GET x", logger=LOG, deadline=deadline)
    assert waits == [0.5]
    assert fn.calls == 2


def test_each_retry_is_logged_once_without_the_error_text(caplog):
    caplog.set_level(logging.WARNING)
    fn = Flaky(SEIAPIError(429, "key pat.a.b.c was throttled"), requests.ConnectionError("x"))
    policy([]).call(fn, what="POST https://h/v2/insights/teams/reports", logger=LOG)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "POST https://h/v2/insights/teams/reports failed (attempt 1/4: HTTP 429); "
        "retrying in 0.50 s",
        "POST https://h/v2/insights/teams/reports failed (attempt 2/4: ConnectionError); "
        "retrying in 1.00 s",
    ]


def test_describe_error():
    assert describe_error(SEIAPIError(503, "server text")) == "HTTP 503"
    assert "cut short" in describe_error(SEIIncompleteReadError(10, 5))
    assert describe_error(requests.ReadTimeout("quoting a header")) == "ReadTimeout"


def test_acall_retries_a_coroutine_the_same_way(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)  # tenacity's async waits
    calls = 0

    async def poll() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise SEIAPIError(503, "busy")
        return "done"

    policy = RetryPolicy(backoff_initial=0.5, jitter=0)
    assert asyncio.run(policy.acall(poll, what="GET x", logger=LOG)) == "done"
    assert calls == 3
    assert slept == [0.5, 1.0]


def test_acall_does_not_retry_a_client_error():
    calls = 0

    async def poll() -> str:
        nonlocal calls
        calls += 1
        raise SEIAPIError(404, "no such export")

    with pytest.raises(SEIAPIError):
        asyncio.run(RetryPolicy().acall(poll, what="GET x", logger=LOG))
    assert calls == 1
