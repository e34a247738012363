"""A requests-per-minute budget shared by the threads of one task, and the transport that pays it.

Harness allows about 400 external API calls per minute per key and answers 429 above that,
without ``Retry-After``. A fan-out over hundreds of teams must therefore pace itself rather
than burst and be throttled. :class:`RateLimiter` hands out send times **evenly spaced** at
a little over ``60 / rate`` seconds (a GCRA with no burst), so any 60-second window holds
at most ``rate`` grants whatever the server's window alignment and the network's jitter, and
concurrency never bunches requests.

On a 429 it slows down for everyone (AIMD, as TCP does): the rate is halved (not below
``min_fraction`` of the budget), every worker waits a cool-down (``Retry-After`` when the
server sends one, else one interval of the halved rate), and successes then climb back to
the budget in small additive steps. The hook still retries the throttled request with its
own backoff; the limiter only keeps the *other* workers from making it worse.

:class:`ThrottledAdapter` wraps the session's transport, so *every* request the hook sends
-- retries and org-tree listings included -- is paced and its status observed, without the
hook knowing about the limiter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter

from airflow_provider_sei.hooks.retry import parse_retry_after

#: What a 429 does to the rate, and how fast successes give it back.
DECREASE_FACTOR = 0.5
RECOVERY_STEPS = 20  # successes to climb from the floor back to the full budget


class RateLimiter:
    """Thread-safe pacing to at most ``requests_per_minute`` sends, evenly spaced.

    :param requests_per_minute: the budget; the limiter never exceeds it.
    :param min_fraction: the floor that repeated 429s can push the rate down to.
    :param slack: seconds of jitter between our send and the server's count that the pacing
        absorbs: ``rate + 1`` consecutive grants span at least ``60 + slack`` seconds, so a
        budget equal to the server's limit is not tipped over by a request arriving late.
    :param clock: a monotonic clock in seconds (injectable for tests).
    :param sleep: ``sleep(seconds, cancel)``; returns True when cancelled (injectable for tests).
    :param history: how many grant times to keep in :attr:`grants` (for tests and logs).
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        min_fraction: float = 0.1,
        slack: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float, threading.Event | None], bool] | None = None,
        history: int = 10_000,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, got {requests_per_minute!r}")
        self.budget = float(requests_per_minute)
        self._rate = self.budget
        self._floor = max(self.budget * min_fraction, 1.0)
        self._window = 60.0 + slack
        self._clock = clock
        self._sleep = sleep or _sleep
        self._lock = threading.Lock()
        # Grants go out at anchor + k * interval: multiplied, not summed, so float error
        # never squeezes a 401st grant into a minute. Re-anchored when idle or the rate moves.
        self._anchor = float("-inf")
        self._k = 0
        self.grants: deque[float] = deque(maxlen=history)
        self.throttled = 0  # 429s seen
        self.waited = 0.0  # seconds spent waiting, all threads together

    @property
    def rate(self) -> float:
        """The current rate in requests per minute (the budget, or less after 429s)."""
        return self._rate

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Block until this caller may send; return the granted time (``clock()`` scale).

        Reservations are taken in order under the lock and slept outside it, so N threads
        asking at once get N consecutive slots. Raises ``InterruptedError`` when ``cancel``
        is set while waiting.
        """
        with self._lock:
            now = self._clock()
            at = self._anchor + self._k * self._window / self._rate
            if at <= now:
                self._anchor, self._k, at = now, 0, now
            self._k += 1
            self.grants.append(at)
            delay = at - now
            self.waited += delay
        if delay > 0 and self._sleep(delay, cancel):
            raise InterruptedError("cancelled while waiting for the rate limiter")
        return at

    def on_throttled(self, retry_after: float | None = None) -> None:
        """A 429 came back: halve the rate and hold every worker for a cool-down."""
        with self._lock:
            self.throttled += 1
            booked = self._next_grant()  # at the old rate: slots already handed out stand
            self._rate = max(self._rate * DECREASE_FACTOR, self._floor)
            pause = retry_after if retry_after is not None else self._window / self._rate
            self._anchor, self._k = max(booked, self._clock() + pause), 0

    def on_success(self) -> None:
        """A request went through: give back a step of the rate lost to 429s."""
        if self._rate < self.budget:
            with self._lock:
                self._anchor, self._k = self._next_grant(), 0
                step = (self.budget - self._floor) / RECOVERY_STEPS
                self._rate = min(self.budget, self._rate + step)

    def _next_grant(self) -> float:
        return self._anchor + self._k * self._window / self._rate


def _sleep(seconds: float, cancel: threading.Event | None) -> bool:
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


class InFlightGauge:
    """Counts requests in flight and remembers the peak (to check a concurrency bound)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self) -> InFlightGauge:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.current -= 1


class ThrottledAdapter(BaseAdapter):
    """A transport adapter that pays the limiter before each send and reports 429s to it.

    It delegates to the session's own adapter (keeping its connection pool and settings);
    ``cancel`` lets a task kill interrupt a worker waiting for its slot. The in-flight gauge
    counts until the response's headers arrive (``stream=True``) or its body (otherwise).
    """

    def __init__(
        self,
        inner: BaseAdapter,
        limiter: RateLimiter | None,
        *,
        cancel: threading.Event | None = None,
        gauge: InFlightGauge | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.limiter = limiter
        self.cancel = cancel
        self.gauge = gauge or InFlightGauge()

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        if self.limiter is not None:
            self.limiter.acquire(self.cancel)
        with self.gauge:
            response = self.inner.send(request, *args, **kwargs)
        if self.limiter is not None:
            if response.status_code == 429:
                self.limiter.on_throttled(parse_retry_after(response.headers.get("Retry-After")))
            elif response.status_code < 500:
                self.limiter.on_success()
        return response

    def close(self) -> None:
        self.inner.close()


def throttle_session(
    session: Any,
    base_url: str,
    limiter: RateLimiter | None,
    *,
    cancel: threading.Event | None = None,
) -> ThrottledAdapter:
    """Route every request to ``base_url`` through a :class:`ThrottledAdapter`; return it.

    Idempotent: a session already throttled gets its adapter's limiter and cancel replaced.
    """
    prefix = base_url.rstrip("/") + "/"
    current = session.get_adapter(prefix)
    if isinstance(current, ThrottledAdapter):
        current.limiter, current.cancel = limiter, cancel
        return current
    adapter = ThrottledAdapter(current, limiter, cancel=cancel)
    session.mount(prefix, adapter)
    return adapter
