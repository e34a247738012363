"""Progress lines: at a steady interval, with bytes, rows and rate; thread-safe for fan-outs."""

from __future__ import annotations

import logging
import threading

import pytest

from airflow_provider_sei.progress import ExportProgress, FanoutProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="sei.progress.test")
    return logging.getLogger("sei.progress.test")


def test_export_progress_logs_once_per_interval(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = ExportProgress(log, "file:///out.csv", interval=10, clock=clock)
    for second in range(1, 31):  # one 1 MiB chunk a second for 30 s
        clock.now = float(second)
        progress.update(1 << 20, rows=second * 100)
    assert progress.lines == 3
    assert caplog.messages == [
        f"file:///out.csv: {mib}.0 MiB, {mib * 100:,} rows, 1.0 MiB/s so far"
        for mib in (10, 20, 30)
    ]


def test_export_progress_without_rows_and_before_the_first_interval(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = ExportProgress(log, "x", interval=10, clock=clock)
    clock.now = 9.99
    progress.update(1 << 20)
    assert caplog.messages == []  # the first line comes after one whole interval
    clock.now = 10.0
    progress.update(1 << 20)
    assert caplog.messages == ["x: 2.0 MiB, 0.2 MiB/s so far"]


def test_export_progress_reset_starts_over(log: logging.Logger) -> None:
    clock = Clock()
    progress = ExportProgress(log, "x", interval=10, clock=clock)
    progress.update(5)
    clock.now = 3.0
    progress.reset()
    assert (progress.bytes, progress.rows, progress.started) == (0, None, 3.0)


def test_fanout_progress_counts_from_threads_and_logs_failures(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = FanoutProgress(log, total=400, interval=10, clock=clock)

    def work(offset: int) -> None:
        for i in range(100):
            if offset == 0 and i == 0:
                progress.team_failed("1001", RuntimeError("boom"))
            else:
                progress.team_done(str(offset + i), nbytes=10, rows=1)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (progress.done, progress.failed, progress.bytes, progress.rows) == (400, 1, 3990, 399)
    assert "Team 1001 failed: boom" in caplog.messages
    assert progress.lines == 0  # the clock never moved: no periodic line
    clock.now = 20.0
    progress.finish()
    assert caplog.messages[-1].startswith("Teams 400/400 done, 1 failed; 0.0 MiB, 399 rows; 20.0")
