"""Proposed changes to modules the benchmarks measure, as monkeypatches applied in a child.

A change to a module owned by someone else is measured here before it is proposed: a bench
child applies it (``--patch NAME``) before it imports the operators, and the stream or phase
benchmark puts it side by side with the code as it is (``bench/run.py --prototypes NAME``).
Each prototype's docstring says what it changes and why; the diff to propose is in the
benchmark notes.
"""

from __future__ import annotations

import collections
import heapq
import threading
import time
from collections.abc import Callable
from typing import Any

PROTOTYPES: dict[str, Callable[[], None]] = {}


def prototype(function: Callable[[], None]) -> Callable[[], None]:
    """Register ``function`` as the prototype named after it (``_`` becomes ``-``)."""
    PROTOTYPES[function.__name__.replace("_", "-")] = function
    return function


def apply(name: str) -> None:
    """Apply the prototype ``name``; an unknown name fails with the known ones."""
    try:
        PROTOTYPES[name]()
    except KeyError:
        raise SystemExit(f"unknown prototype {name!r}: one of {sorted(PROTOTYPES)}") from None


# -- the rate limiter: a sliding window, as Harness counts ---------------------------------------


class WindowRateLimiter:
    """At most ``requests_per_minute`` sends in any ``60 + slack`` seconds: a sliding log.

    Harness counts calls per key over a sliding minute, so a fan-out may send its first
    minute's budget at once and then one request each time its oldest send leaves the window
    (the floor for ``n`` requests is ``60 x (ceil(n / rate) - 1)`` seconds, not the
    ``n / rate`` minutes of evenly spaced sends). A 429 means the server counts more than we
    do (another job on the key, a lower limit than the budget): the limit drops to the sends
    of the last window less one -- once per burst, not once per 429 -- and climbs back by a
    twentieth of the budget per window without one. ``Retry-After`` holds every sender.

    Same interface as :class:`airflow_provider_sei.hooks.ratelimit.RateLimiter`.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        min_fraction: float = 0.1,
        slack: float = 1.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float, threading.Event | None], bool] | None = None,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, got {requests_per_minute!r}")
        self.budget = float(requests_per_minute)
        self._most = max(1, int(requests_per_minute))
        self._limit = self._most
        self._floor = max(1, int(self._most * min_fraction))
        self._step = max(1, self._most // 20)
        self._window = 60.0 + slack
        self._clock = clock or time.monotonic
        self._sleep = sleep or _sleep
        self._lock = threading.Lock()
        self._sends: collections.deque[float] = collections.deque()  # granted, oldest first
        self._hold = float("-inf")  # no grant before this (a Retry-After)
        self._changed = float("-inf")  # when the limit last dropped or rose
        self.throttled = 0
        self.waited = 0.0

    @property
    def rate(self) -> float:
        """The current limit, in requests per sliding minute."""
        return float(self._limit)

    def acquire(
        self, cancel: threading.Event | None = None, max_wait: float | None = None
    ) -> float:
        at, delay = self.reserve(max_wait)
        if delay > 0 and self._sleep(delay, cancel):
            raise InterruptedError("cancelled while waiting for the rate limiter")
        return at

    def reserve(self, max_wait: float | None = None) -> tuple[float, float]:
        with self._lock:
            now = self._clock()
            sends = self._sends
            while sends and (sends[0] <= now - self._window or len(sends) > self._most):
                sends.popleft()
            at = max(now, self._hold)
            if len(sends) >= self._limit:  # the window is full: wait for a send to leave it
                at = max(at, sends[-self._limit] + self._window)
            if max_wait is not None and at - now > max_wait:
                raise TimeoutError(f"the next request slot is {at - now:.1f} s away")
            sends.append(at)
            delay = at - now
            self.waited += delay
        return at, delay

    def on_throttled(self, retry_after: float | None = None) -> None:
        with self._lock:
            self.throttled += 1
            now = self._clock()
            counted = sum(1 for at in self._sends if now - self._window < at <= now)
            if counted - 1 < self._limit:
                self._limit = max(self._floor, counted - 1)
                self._changed = now
            if retry_after is not None:
                self._hold = max(self._hold, now + retry_after)

    def on_success(self) -> None:
        if self._limit < self._most and self._clock() - self._changed >= self._window:
            with self._lock:
                self._limit = min(self._most, self._limit + self._step)
                self._changed = self._clock()


def _sleep(seconds: float, cancel: threading.Event | None) -> bool:
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


@prototype
def window_limiter() -> None:
    """Replace the hook's rate limiter with :class:`WindowRateLimiter` (``hooks/ratelimit.py``)."""
    from airflow_provider_sei.hooks import ratelimit, sei

    ratelimit.RateLimiter = WindowRateLimiter  # type: ignore[misc,assignment]
    sei.RateLimiter = WindowRateLimiter  # type: ignore[misc,assignment]


# -- the fixed cost of an attempt ----------------------------------------------------------------


class _Watchdog:
    """One daemon thread for every deadline of the process, asleep until the earliest one."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, Any]] = []  # (at, order, deadline): a heap
        self._order = 0
        self._thread: threading.Thread | None = None

    def add(self, deadline: Any) -> None:
        with self._wake:
            self._order += 1
            heapq.heappush(self._due, (deadline.at, self._order, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sei-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        from airflow_provider_sei.hooks.transport import now

        while True:
            with self._wake:
                while self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                wait = self._due[0][0] - now()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                deadline = heapq.heappop(self._due)[2]
            deadline._expire()


@prototype
def shared_watchdog() -> None:
    """One thread watches every deadline (``hooks/transport.py``, ``Deadline``).

    ``Deadline`` starts a ``threading.Timer`` per attempt: a new thread, whose start waits
    until the thread runs -- about 0.1 ms on an idle core, milliseconds on a busy one. One
    long-lived thread asleep on a heap of deadlines costs a heap push per attempt.
    """
    from airflow_provider_sei.hooks import transport

    watchdog = _Watchdog()

    def __init__(self: transport.Deadline, at: float) -> None:
        self.at = at
        self.expired = False
        self.cancelled = False
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        watchdog.add(self)

    def cancel(self: transport.Deadline) -> None:
        self.cancelled = True
        with self._lock:
            self._sockets.clear()

    transport.Deadline.__init__ = __init__  # type: ignore[method-assign]
    transport.Deadline.cancel = cancel  # type: ignore[method-assign]
