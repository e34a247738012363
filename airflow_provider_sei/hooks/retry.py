"""Retry policy of the SEI hook: one immutable value object, run by tenacity.

The hook's transport never retries on its own (its adapter has ``max_retries=0``), so each
attempt is counted once, here. What is retried: the statuses in ``retry_statuses`` (408, 429,
500, 502, 503, 504), connection errors but TLS failures, connect and read timeouts, and bodies
cut short.

:meth:`RetryPolicy.is_retryable` is the single source of "may another attempt succeed": the
hook retries what it says, and the operators fail a task at once (``AirflowFailException``,
no task retries) for what it does not.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import tenacity

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIIncompleteReadError,
    SEITimeoutError,
    SEITLSError,
)
from airflow_provider_sei.hooks.form import (
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_ELAPSED,
    DEFAULT_MAX_RETRIES,
)

T = TypeVar("T")


#: 408 and 429 are the only 4xx a client may repeat unchanged; 501 and 505 never change.
def now() -> float:
    """Read the clock of every time bound (``time.monotonic``): the one the whole hook uses."""
    return time.monotonic()


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How transient SEI API failures are retried.

    :param max_retries: retries after the first attempt (0 disables retrying).
    :param backoff_initial: the first wait in seconds; it doubles on every retry.
    :param backoff_max: no single wait is longer, ``Retry-After`` included.
    :param jitter: up to this fraction of each wait is added at random (0 to 1).
    :param max_elapsed: bound in seconds on one call: attempts, waits and download together.
    :param retry_statuses: HTTP statuses worth another attempt.
    :param sleep: how to wait (tests pass a recorder instead of ``time.sleep``).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = 1.0
    backoff_max: float = DEFAULT_BACKOFF_MAX
    jitter: float = 0.5
    max_elapsed: float = DEFAULT_MAX_ELAPSED
    retry_statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if self.backoff_initial <= 0 or self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"need 0 < backoff_initial <= backoff_max, got {self.backoff_initial!r}"
                f" and {self.backoff_max!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        if self.max_elapsed <= 0:
            raise ValueError(f"max_elapsed must be > 0, got {self.max_elapsed!r}")

    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first one included."""
        return self.max_retries + 1

    def backoff(self, retry_number: int) -> float:
        """Return the wait before retry ``retry_number`` (1-based), jitter included, capped."""
        base = self.backoff_initial * 2 ** (retry_number - 1)
        return min(self.backoff_max, base * (1 + self.jitter * random.random()))

    def wait_for(self, error: BaseException | None, retry_number: int) -> float:
        """Return the wait before retry ``retry_number``: the server's ``Retry-After`` if it sent
        one."""
        retry_after = error.retry_after if isinstance(error, SEIAPIError) else None
        if retry_after is not None:
            return min(self.backoff_max, retry_after)
        return self.backoff(retry_number)

    def is_retryable(self, error: BaseException | None) -> bool:
        """Whether another attempt (by the hook, or a task retry) may succeed after ``error``."""
        if isinstance(error, SEIAPIError):
            return error.status_code in self.retry_statuses
        if isinstance(error, (requests.exceptions.SSLError, SEITLSError)):
            return False  # a wrong scheme, port or certificate: no retry changes it
        return isinstance(
            error,
            (
                requests.ConnectionError,
                requests.Timeout,
                SEIConnectionError,
                SEIIncompleteReadError,
                SEITimeoutError,
            ),
        )

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str,
        logger: logging.Logger | Any,
        deadline: float | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, fails for good, or the policy gives up.

        The last error is re-raised as it is; ``what`` (a method and URL, never a secret) names
        the call in the one log line written before each retry.

        :param deadline: a :func:`now` value: no wait ends after it, so no attempt
            starts after it. Default: ``max_elapsed`` from now.
        """
        return self._retrying(tenacity.Retrying, what, logger, deadline)(fn)

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        what: str,
        logger: logging.Logger | Any,
        deadline: float | None = None,
    ) -> T:
        """:meth:`call` for a coroutine function (a trigger's poll); waits with asyncio."""
        return await self._retrying(tenacity.AsyncRetrying, what, logger, deadline)(fn)

    def _retrying(self, kind: Any, what: str, logger: Any, deadline: float | None) -> Any:
        until = deadline if deadline is not None else now() + self.max_elapsed
        options: dict[str, Any] = {}
        if kind is tenacity.Retrying:
            options["sleep"] = self.sleep
        return kind(
            retry=tenacity.retry_if_exception(self.is_retryable),
            stop=tenacity.stop_after_attempt(self.max_attempts) | _OutOfTime(until),
            wait=self._tenacity_wait,
            before_sleep=lambda state: _log_retry(logger, what, self.max_attempts, state),
            reraise=True,
            **options,
        )

    def _tenacity_wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.wait_for(error, state.attempt_number)


class _OutOfTime(tenacity.stop.stop_base):
    """Stop when the next wait would end at or after ``until`` (a :func:`now` value)."""

    def __init__(self, until: float) -> None:
        self.until = until

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return now() + (retry_state.upcoming_sleep or 0.0) >= self.until


def _log_retry(
    logger: logging.Logger | Any, what: str, max_attempts: int, state: tenacity.RetryCallState
) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "%s failed (attempt %d/%d: %s); retrying in %.2f s",
        what,
        state.attempt_number,
        max_attempts,
        describe_error(error),
        wait,
    )


def describe_error(error: BaseException | None) -> str:
    """Return a short, secret-free description of a failed attempt for the retry log line."""
    if isinstance(error, SEIAPIError):
        return f"HTTP {error.status_code}"
    if isinstance(error, SEIIncompleteReadError):
        return str(error)
    return type(error).__name__


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
