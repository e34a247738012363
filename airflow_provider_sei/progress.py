"""Progress lines for long exports: bytes and rows so far and the rate, at a steady interval.

:class:`ExportProgress` is called from a write loop with each chunk's size; it reads the clock
once per call and logs only when ``interval`` seconds have passed, so it costs nothing
measurable per 1 MiB chunk. :class:`FanoutProgress` does the same for a fan-out, from many
threads: teams done / total, failures, bytes and rows.

The hook's download loop calls ``update`` with every chunk written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

MiB = 1 << 20

#: Seconds between two progress lines.
DEFAULT_INTERVAL = 10.0


def _mib(nbytes: float) -> str:
    return f"{nbytes / MiB:,.1f} MiB"


class ExportProgress:
    """Logs ``label: 123.4 MiB, 5,678 rows so far, 85.2 MiB/s`` every ``interval`` seconds.

    :param log: a logger (``self.log`` of an operator or hook).
    :param label: what is being exported, e.g. the destination URI.
    :param interval: seconds between two lines; the first comes after one interval.
    :param clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        log: Any,
        label: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.label = label
        self.interval = interval
        self._clock = clock
        self.lines = 0  # progress lines logged
        self.reset()

    def reset(self) -> None:
        """Start over (the hook retries a broken download from its first byte)."""
        self.bytes = 0
        self.rows: int | None = None
        self.started = self._clock()
        self._due = self.started + self.interval

    def update(self, nbytes: int, rows: int | None = None) -> None:
        """Count ``nbytes`` more; ``rows`` is the total so far when the caller knows it."""
        self.bytes += nbytes
        if rows is not None:
            self.rows = rows
        now = self._clock()
        if now >= self._due:
            self._due = now + self.interval
            self.lines += 1
            self.log.info("%s: %s so far", self.label, self._describe(now))

    def _describe(self, now: float) -> str:
        parts = [_mib(self.bytes)]
        if self.rows is not None:
            parts.append(f"{self.rows:,} rows")
        elapsed = now - self.started
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        parts.append(f"{_mib(rate)}/s")
        return ", ".join(parts)


class FanoutProgress:
    """Thread-safe progress of a fan-out: teams done / total, failures, bytes and rows.

    Failures are logged at once (as warnings); the rest every ``interval`` seconds.
    """

    def __init__(
        self,
        log: Any,
        total: int,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self.done = 0
        self.failed = 0
        self.bytes = 0
        self.rows = 0
        self.started = clock()
        self._due = self.started + interval
        self.lines = 0

    def team_done(self, team: str, nbytes: int, rows: int) -> None:
        """One team exported."""
        with self._lock:
            self.done += 1
            self.bytes += nbytes
            self.rows += rows
            line = self._due_line()
        if line:
            self.log.info("%s", line)

    def team_failed(self, team: str, error: BaseException) -> None:
        """One team failed (after the hook's retries); logged now."""
        with self._lock:
            self.done += 1
            self.failed += 1
            line = self._due_line()
        self.log.warning("Team %s failed: %s", team, error)
        if line:
            self.log.info("%s", line)

    def finish(self) -> None:
        """Log the final tally."""
        with self._lock:
            line = self._line(self._clock())
        self.log.info("%s (finished)", line)

    def _due_line(self) -> str | None:
        now = self._clock()
        if now < self._due:
            return None
        self._due = now + self.interval
        self.lines += 1
        return self._line(now)

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return (
            f"Teams {self.done}/{self.total} done, {self.failed} failed; "
            f"{_mib(self.bytes)}, {self.rows:,} rows; "
            f"{self.done / elapsed:.1f} teams/s, {_mib(self.bytes / elapsed)}/s"
        )
