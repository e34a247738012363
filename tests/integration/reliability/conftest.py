"""Fixtures of the hardening suite: its own emulator holding a known, distinctive API key.

Every test here talks to ``rel_emulator`` (an :class:`SEIEmulator` whose only accepted key is
``SECRET_KEY``) through ``sei_default``, set as an env var by ``rel_conn`` with *fast retry
settings* (``FAST_EXTRAS``: ``backoff_initial`` 0.05 s, so a retry waits 0.05-0.1 s instead of
Harness-friendly seconds). Because every DAG run of the suite uses the key, the autouse
``no_key_in_output`` guard checks, after every test, that the key appears nowhere in what the
test printed (stdout/stderr, file-descriptor level) or logged (every logger at DEBUG, urllib3's
connection logging included).

Measurements: tests call ``record(section, row)``; when ``SEI_RELIABILITY_RESULTS``
names a file, the rows are written there as JSON at the end of the session, and
``scripts/reliability_table.py`` turns them into the table of ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .helpers import (
    FAST_EXTRAS,
    RESULTS_ENV,
    SECRET_KEY,
    SECRET_PART,
    Recorder,
)

_RESULTS: dict[str, list[dict[str, Any]]] = {}


def record(section: str, row: dict[str, Any]) -> None:
    """Keep one measured row of a table of ``docs/reliability.md`` (``faults``, ...)."""
    _RESULTS.setdefault(section, []).append(row)


@pytest.fixture(scope="session", autouse=True)
def _write_results() -> Iterator[None]:
    yield
    target = os.environ.get(RESULTS_ENV)
    if target and _RESULTS:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({**_RESULTS, "fast_extras": FAST_EXTRAS}, handle, indent=2)


# -- the emulator and the connection -----------------------------------------------------------


@pytest.fixture(scope="session")
def rel_emulator() -> Iterator[Any]:
    from sei_emulator import SEIEmulator

    with SEIEmulator(port=0, api_key=SECRET_KEY) as emulator:
        yield emulator


@pytest.fixture
def emu(rel_emulator: Any) -> Iterator[Any]:
    """The suite's emulator with no faults and an empty request log."""
    from sei_emulator import Faults

    rel_emulator.set_faults(Faults())
    rel_emulator.reset()
    yield rel_emulator
    rel_emulator.set_faults(Faults())


@pytest.fixture
def rel_conn(emu: Any, make_sei_conn: Callable[..., Any]) -> Any:
    """``sei_default`` pointing at ``rel_emulator``, with fast retries; ``set(**extras)``."""
    return make_sei_conn(emu.base_url, SECRET_KEY, **FAST_EXTRAS)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Times both report operators' ``execute`` and keeps its exception (see ``Recorder``)."""
    from airflow_provider_sei.operators.reports import (
        SEIContributorReportOperator,
        SEITeamReportOperator,
    )

    return Recorder().watch(monkeypatch, SEITeamReportOperator, SEIContributorReportOperator)


@pytest.fixture(scope="session")
def _tiny_server() -> Iterator[Any]:
    from .tiny_server import serve

    with serve() as server:
        yield server


@pytest.fixture
def tiny_server(_tiny_server: Any, rel_conn: Any) -> Any:
    """``tiny_server.py``'s server, with ``sei_default`` (fast retries) pointing at it."""
    _tiny_server.hits = 0
    rel_conn.base_url = _tiny_server.url
    rel_conn.set()
    return _tiny_server


# -- the leak guard --------------------------------------------------------------------------------


class _Collector(logging.Handler):
    """Keeps every record's fully formatted text (message, arguments and traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception as exc:  # a record that cannot format is still a record to see
            self.texts.append(f"<unformattable {record.msg!r} {record.args!r}: {exc}>")


@pytest.fixture
def all_logs() -> Iterator[_Collector]:
    """Every log record of the test, at DEBUG, on every logger (urllib3's included)."""
    collector = _Collector()
    root = logging.getLogger()
    old_level = root.level
    noisy = [logging.getLogger(name) for name in ("urllib3", "requests", "airflow", "fsspec")]
    old = [(lg, lg.level) for lg in noisy]
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    for lg in noisy:
        lg.setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        root.setLevel(old_level)
        for lg, level in old:
            lg.setLevel(level)


@pytest.fixture(autouse=True)
def no_key_in_output(
    capfd: pytest.CaptureFixture[str], all_logs: _Collector
) -> Iterator[list[str]]:
    """After each test: neither the key nor its secret part in any output or log record.

    What a test reads from ``capfd`` itself is kept too (``readouterr`` is teed), and a test
    may add any other text to scan to the yielded list.
    """
    seen: list[str] = []
    read = capfd.readouterr

    def tee() -> Any:
        result = read()
        seen.extend(result)
        return result

    capfd.readouterr = tee  # type: ignore[method-assign]
    yield seen
    out, err = read()
    sinks = {"stdout": out, "stderr": err, "log records": "\n".join(all_logs.texts),
             "output read by the test": "\n".join(seen)}  # fmt: skip
    for name, text in sinks.items():
        for secret in (SECRET_KEY, SECRET_PART):
            assert secret not in text, f"the API key leaked into {name}"
