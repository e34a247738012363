"""Fixtures of the hardening suite: servers holding a known, distinctive API key.

Every test here talks to ``rel_emulator`` (an :class:`SEIEmulator` whose only accepted key is
``SECRET_KEY``) or to ``hostile`` (a raw-socket :class:`hostile.HostileServer` of the test's
own making) through ``harness_sei_default``, set as an env var by ``rel_conn`` with *fast
retry settings* (``FAST_EXTRAS``: ``backoff_initial`` 0.05 s, so a retry waits 0.05-0.1 s
instead of Harness-friendly seconds). Because every DAG run of the suite uses the key, the
autouse ``no_key_in_output`` guard checks, after every test, that the key appears nowhere in
what the test printed (stdout/stderr, file-descriptor level: the task log of ``dag.test()``)
or logged (every logger at DEBUG, urllib3's connection logging included, and Airflow's task
loggers at DEBUG too).

Measurements: tests call ``record(section, row)``; when ``SEI_RELIABILITY_RESULTS``
names a file, the rows are written there as JSON at the end of the session, and
``scripts/reliability_table.py`` turns them into the tables of ``docs/reliability.md``.
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
    LocalFolder,
    Recorder,
    S3Folder,
    without_mask_echo,
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
    """``harness_sei_default`` at ``rel_emulator``, with fast retries; ``set(**extras)``."""
    return make_sei_conn(emu.base_url, SECRET_KEY, **FAST_EXTRAS)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Counts, times and keeps the exception of every try of both report operators."""
    from airflow_provider_sei.operators.reports import (
        SEIContributorReportOperator,
        SEITeamReportOperator,
    )

    return Recorder().watch(monkeypatch, SEITeamReportOperator, SEIContributorReportOperator)


@pytest.fixture(scope="session")
def _tiny_server() -> Iterator[Any]:
    from .tiny_server import TinyServer

    with TinyServer() as server:
        yield server


@pytest.fixture
def tiny_server(_tiny_server: Any, rel_conn: Any) -> Any:
    """``tiny_server.py``'s server, with ``harness_sei_default`` (fast retries) pointing at it."""
    _tiny_server.reset()
    rel_conn.base_url = _tiny_server.url
    rel_conn.set()
    return _tiny_server


@pytest.fixture(scope="session")
def _hostile_server() -> Iterator[Any]:
    from hostile import HostileServer

    with HostileServer() as server:
        yield server


@pytest.fixture
def hostile(_hostile_server: Any, rel_conn: Any) -> Iterator[Any]:
    """A raw-socket hostile server with nothing scripted (it answers 404), and
    ``harness_sei_default`` (fast retries) pointing at it; script it with ``route``."""
    from hostile import NOT_SCRIPTED

    _hostile_server.reset()
    _hostile_server.default = NOT_SCRIPTED
    rel_conn.base_url = _hostile_server.url
    rel_conn.set()
    yield _hostile_server
    _hostile_server.reset()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> LocalFolder | S3Folder:
    """The destination, pre-seeded with a previous good export: a local file, then an S3
    object on the moto server (the test runs once with each)."""
    if request.param == "local":
        return LocalFolder(tmp_path / "out")
    return S3Folder(request.getfixturevalue("s3"))


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Everything the hook and its redactor hand to ``mask_secret`` (still registered with the
    real masker): the hook imports it once, the redactor where it registers its forms."""
    import airflow.providers.common.compat.sdk as compat_sdk

    import airflow_provider_sei.hooks.sei as sei_module

    calls: list[Any] = []
    real = compat_sdk.mask_secret

    def spy(secret: Any, name: str | None = None) -> None:
        calls.append(secret)
        real(secret, name)

    monkeypatch.setattr(sei_module, "mask_secret", spy)
    monkeypatch.setattr(compat_sdk, "mask_secret", spy)
    return calls


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
    """Every log record of the test, at DEBUG, on every logger (urllib3's included); Airflow's
    task loggers (structlog, printed to stdout by ``dag.test()``) at DEBUG as well."""
    collector = _Collector()
    structlog_levels = _structlog_levels()
    old_structlog = [dict(levels) for levels in structlog_levels]
    for levels in structlog_levels:
        levels[""] = logging.DEBUG  # the task loggers (structlog) of dag.test(), to stdout
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
        for levels, saved in zip(structlog_levels, old_structlog, strict=True):
            levels.clear()
            levels.update(saved)


def _structlog_levels() -> list[Any]:
    """Airflow's per-logger level tables of its structlog loggers (the Task SDK's and core's)."""
    import contextlib
    import importlib

    tables = []
    for module in ("airflow.sdk._shared.logging.structlog", "airflow._shared.logging.structlog"):
        # Another Airflow version may have neither: stdlib levels only, then.
        with contextlib.suppress(ImportError, AttributeError):
            tables.append(importlib.import_module(module).PER_LOGGER_LEVELS)
    return tables


@pytest.fixture(autouse=True)
def no_key_in_output(
    capfd: pytest.CaptureFixture[str], all_logs: _Collector
) -> Iterator[list[str]]:
    """After each test: neither the key nor its secret part in any output or log record.

    Airflow's own echo of ``mask_secret`` calls at DEBUG is left out (see
    ``helpers.without_mask_echo``): it is ``dag.test()``'s, and no real worker writes it.

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
        text, _ = without_mask_echo(text)
        for secret in (SECRET_KEY, SECRET_PART):
            assert secret not in text, f"the API key leaked into {name}"
