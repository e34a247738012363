"""The shared requests-per-minute budget: pacing, 429 slow-down, cancellation.

The transport's side (every request pays, 429s reported) is in ``test_transport.py``.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from airflow_provider_sei.hooks.ratelimit import RateLimiter


class FakeClock:
    """A clock that only moves when someone sleeps on it: no real waiting, no timing."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float, cancel: threading.Event | None) -> bool:
        with self._lock:
            self.now += seconds
        return bool(cancel and cancel.is_set())


def limiter(rpm: float, clock: FakeClock, **kwargs: object) -> RateLimiter:
    kwargs.setdefault("slack", 0.0)
    return RateLimiter(rpm, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def max_in_window(grants: list[float], window: float = 60.0) -> int:
    """The most grants inside any half-open window [t, t + window)."""
    grants = sorted(grants)
    best, start = 0, 0
    for end, at in enumerate(grants):
        while grants[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_grants_are_evenly_spaced_at_the_budget() -> None:
    clock = FakeClock()
    rl = limiter(120, clock)
    times = [rl.acquire() for _ in range(10)]
    assert times == pytest.approx([i * 0.5 for i in range(10)])
    assert rl.waited == pytest.approx(sum(i * 0.5 - (i - 1) * 0.5 for i in range(1, 10)))


def test_idle_time_is_not_banked_as_a_burst() -> None:
    clock = FakeClock()
    rl = limiter(60, clock)
    rl.acquire()
    clock.now = 100.0  # a long idle spell
    assert [rl.acquire() for _ in range(3)] == pytest.approx([100.0, 101.0, 102.0])


def test_threads_never_exceed_the_budget_in_any_minute() -> None:
    clock = FakeClock()
    rl = limiter(400, clock, slack=1.0)

    granted: list[float] = []

    def work() -> None:
        for _ in range(60):
            granted.append(rl.acquire())  # list.append is atomic

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grants = sorted(granted)
    assert len(grants) == 480
    # Even a server that counts our requests up to 0.99 s late sees at most 400 a minute.
    assert max_in_window(grants, 60.99) <= 400
    gaps = [b - a for a, b in itertools.pairwise(grants)]
    assert min(gaps) == pytest.approx(61 / 400)


def test_a_429_halves_the_rate_pauses_everyone_and_successes_recover() -> None:
    clock = FakeClock()
    rl = limiter(400, clock)
    rl.acquire()
    rl.on_throttled()
    assert rl.rate == 200
    assert rl.throttled == 1
    # The next grant waits out one interval of the halved rate.
    assert rl.acquire() == pytest.approx(60 / 200)
    for _ in range(100):
        rl.on_success()
    assert rl.rate == 400


def test_a_429_keeps_the_slots_already_booked_and_slows_the_next_ones() -> None:
    clock = FakeClock()
    rl = RateLimiter(60, clock=clock, sleep=lambda s, c: False, slack=0)  # book, never wait
    assert [rl.acquire() for _ in range(10)] == pytest.approx(range(10))
    rl.on_throttled()  # at t=0, with slots booked up to t=9
    assert rl.acquire() == pytest.approx(10.0)  # the next free slot, not a doubled schedule
    assert rl.acquire() == pytest.approx(12.0)  # then at the halved rate


def test_retry_after_sets_the_pause_and_the_floor_holds() -> None:
    clock = FakeClock()
    rl = limiter(400, clock, min_fraction=0.25)
    for _ in range(10):
        rl.on_throttled(retry_after=7)
    assert rl.rate == 100
    assert rl.acquire() == pytest.approx(7.0)


def test_cancel_interrupts_a_wait() -> None:
    clock = FakeClock()
    rl = limiter(1, clock)
    cancel = threading.Event()
    rl.acquire(cancel)
    cancel.set()
    with pytest.raises(InterruptedError):
        rl.acquire(cancel)


@pytest.mark.parametrize("bad", [0, -5])
def test_budget_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(bad)


def test_reserve_takes_a_slot_without_waiting() -> None:
    clock = FakeClock()
    rl = limiter(60, clock)
    assert rl.reserve() == (0.0, 0.0)
    assert rl.reserve() == pytest.approx((1.0, 1.0))
    assert rl.reserve() == pytest.approx((2.0, 2.0))
    assert clock.now == 0.0  # nobody slept: the caller waits its own way (asyncio.sleep)
    assert rl.waited == pytest.approx(3.0)


def test_cancel_interrupts_a_real_wait_at_once() -> None:
    rl = RateLimiter(1)  # the real clock and sleep: the second slot is 61 s away
    cancel = threading.Event()
    rl.acquire(cancel)
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(InterruptedError):
        rl.acquire(cancel)
    assert 0.1 <= time.monotonic() - started < 2.0


def test_a_slot_beyond_max_wait_is_refused_and_not_taken() -> None:
    clock = FakeClock()
    rl = limiter(60, clock)  # a slot a second
    assert rl.acquire(max_wait=5) == 0.0
    with pytest.raises(TimeoutError):
        rl.acquire(max_wait=0.5)  # the next slot is 1 s away
    assert clock.now == 0.0  # nothing slept
    assert rl.acquire(max_wait=5) == pytest.approx(1.0)  # the refused slot was not consumed
