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

The hook's transport (:class:`~airflow_provider_sei.hooks.transport.SEIAdapter`) pays it
before every request it sends -- retries, polls and org-tree listings included -- and reports
each status to it.

Why not a library: ``pyrate-limiter`` (and ``requests-ratelimiter`` on top of it) are bucket
limiters: they let a full bucket out at once and never slow down on a 429. Measured in
``docs/benchmarks.md`` against Harness's 400-per-minute limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        min_fraction: float = 0.1,
        slack: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float, threading.Event | None], bool] | None = None,
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
        self.throttled = 0  # 429s seen
        self.waited = 0.0  # seconds spent waiting, all threads together

    @property
    def rate(self) -> float:
        """The current rate in requests per minute (the budget, or less after 429s)."""
        return self._rate

    def acquire(
        self, cancel: threading.Event | None = None, max_wait: float | None = None
    ) -> float:
        """Block until this caller may send; return the granted time (``clock()`` scale).

        Reservations are taken in order under the lock and slept outside it, so N threads
        asking at once get N consecutive slots. Raises ``InterruptedError`` when ``cancel``
        is set while waiting, and ``TimeoutError`` (taking no slot) when the next slot is more
        than ``max_wait`` seconds away: a call's time bound holds while it waits here too.
        """
        at, delay = self.reserve(max_wait)
        if delay > 0 and self._sleep(delay, cancel):
            raise InterruptedError("cancelled while waiting for the rate limiter")
        return at

    def reserve(self, max_wait: float | None = None) -> tuple[float, float]:
        """Take the next slot without waiting: ``(granted time, seconds to wait for it)``.

        For callers that wait their own way (a trigger's ``asyncio.sleep``). Raises
        ``TimeoutError``, taking no slot, when it is more than ``max_wait`` seconds away.
        """
        with self._lock:
            now = self._clock()
            at = self._anchor + self._k * self._window / self._rate
            if at <= now:
                self._anchor, self._k, at = now, 0, now
            if max_wait is not None and at - now > max_wait:
                raise TimeoutError(f"the next request slot is {at - now:.1f} s away")
            self._k += 1
            delay = at - now
            self.waited += delay
        return at, delay

    def on_throttled(self, retry_after: float | None = None) -> None:
        """Handle a 429 that came back: halve the rate and hold every worker for a cool-down."""
        with self._lock:
            self.throttled += 1
            booked = self._next_grant()  # at the old rate: slots already handed out stand
            self._rate = max(self._rate * DECREASE_FACTOR, self._floor)
            pause = retry_after if retry_after is not None else self._window / self._rate
            self._anchor, self._k = max(booked, self._clock() + pause), 0

    def on_success(self) -> None:
        """Handle a request that went through: give back a step of the rate lost to 429s."""
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
