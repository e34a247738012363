"""What the hardening tests share: one-task DAGs, a run recorder, destinations, scans."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pendulum

#: The secret part of the key, assembled at run time: Airflow stores the source of the file
#: that defines a DAG (``dag_code``), and a literal here would be found by the DB scan.
SECRET_PART = "-".join(["Zq7", "SECRET", "k3y", "8f1e2d9c4b"])
#: The key every test of this suite uses: distinctive, so that any leak is found by a grep.
#: A ``pat.<account>.<token>.<secret>`` key, so the account id is derived from it too. Every
#: character of it may stand in a plain report file name (``[A-Za-z0-9._-]``).
SECRET_KEY = "pat.relacct01.reltok02." + SECRET_PART
SECRETS = (SECRET_KEY, SECRET_PART)
#: A second key whose secret segment changes when URL-encoded (``+``, ``=``, ``!``), for the
#: tests of a server echoing the key back in its encoded forms.
HOSTILE_PART = "".join(["Hq4+", "HOSTILE=", "s3cr3t!", "7d6c5b"])
HOSTILE_KEY = "pat.hostacct01.hosttok02." + HOSTILE_PART
SEI_CONN_ENV = "AIRFLOW_CONN_HARNESS_SEI_DEFAULT"
RESULTS_ENV = "SEI_RELIABILITY_RESULTS"

#: Retry settings that keep the suite fast; the doc says so next to every figure.
FAST_EXTRAS: dict[str, Any] = {
    "max_retries": 2,
    "backoff_initial": 0.05,
    "backoff_max": 1,
    "timeout": 5,
    "connect_timeout": 2,
    "max_elapsed": 30,
}

START = pendulum.datetime(2024, 1, 1, tz="UTC")
LOGICAL_DATE = pendulum.datetime(2024, 2, 1, tz="UTC")
#: What the destination holds before each run: a previous good export.
PREVIOUS = b"Collection Name,Old Metric\nprevious good export,1\n"
REPORTS_PATH = "/v2/insights/teams/reports"
TEAM_KWARGS: dict[str, Any] = {
    "collection_id": "123",
    "date_start": "2024-01-01",
    "date_end": "2024-01-31",
}
#: The provider's own file name for ``TEAM_KWARGS`` in a folder destination.
FALLBACK_NAME = "sei-team-123-2024-01-01-2024-01-31.csv"
#: A report the provider accepts for ``TEAM_KWARGS`` (the header names the collection column).
HEADER = b"Collection Name,PR Velocity per Developer,Coding Days per Developer\n"
GOOD_ROWS = b"Team A,1.5,3\nTeam B,2,4\n"
GOOD_REPORT = HEADER + GOOD_ROWS

_RETRY_LINE = re.compile(
    r"failed \(attempt (?P<attempt>\d+)/(?P<max>\d+): (?P<what>.*?)\); "
    r"retrying in (?P<wait>[\d.]+) s"
)


def secret_forms(key: str) -> dict[str, str]:
    """Every form of ``key`` a scan looks for: whole, its secret segment, URL- and JSON-encoded.

    A scanned text is also searched with its whitespace removed, which finds a key split by a
    line break (see :func:`find_secrets`).
    """
    segment = key.split(".")[-1] if key.startswith(("pat.", "sat.")) else None
    forms = {"key": key}
    if segment:
        forms["secret segment"] = segment
    for name, value in list(forms.items()):
        forms[f"{name}, quote"] = quote(value, safe="")
        forms[f"{name}, quote_plus"] = quote_plus(value)
    return {name: value for name, value in forms.items() if value}


def find_secrets(sinks: dict[str, str], key: str) -> list[str]:
    """``"sink: form"`` for every form of ``key`` found in a sink (whitespace ignored too)."""
    forms = secret_forms(key)
    found = []
    for sink, text in sinks.items():
        folded = re.sub(r"\s+", "", text)
        for name, form in forms.items():
            if form in text or form.lower() in text.lower() or form in folded:
                found.append(f"{sink}: {name}")
    return found


#: ``dag.test()``'s in-process supervisor logs every message of the task at DEBUG, the
#: values given to ``mask_secret`` included (``InProcessSupervisorComms.send``: "Sending
#: request ... msg=MaskSecret(value='<the secret>')"). A real worker's supervisor omits that
#: body ("Received message from task runner (body omitted)"). So this Airflow line, and only
#: it, is left out of the scans; the scans count how many they left out.
_MASK_ECHO = re.compile(r"^.*Sending request.*msg=MaskSecret\(.*$\n?", re.MULTILINE)


def without_mask_echo(text: str) -> tuple[str, int]:
    """``text`` without ``dag.test()``'s DEBUG echo of ``mask_secret`` calls; and their count."""
    return _MASK_ECHO.subn("", text)


# -- recording task runs ---------------------------------------------------------------------


@dataclass
class RunRecord:
    """What the tries of one task did: when the last ran, how it ended, what it raised.

    :param tries: tries seen (a try renders the task's fields, then executes it).
    :param cpu: CPU seconds the last try's thread spent (rendering and executing).
    """

    tries: int = 0
    started: float | None = None
    ended: float | None = None
    cpu: float = 0.0
    outcome: str | None = None
    exception: BaseException | None = None
    exceptions: list[BaseException] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.started is None or self.ended is None:
            return float("nan")
        return self.ended - self.started


@dataclass
class Recorder:
    """Counts, times and keeps the exception of each try of a watched operator, per DAG id.

    ``dag.test()`` runs tasks in this thread, so wrapping ``render_template_fields`` (the start
    of a try: an invalid template fails there) and ``execute`` (its end) on the classes sees
    every try. Failure callbacks would be simpler, but on Airflow 3.1 an in-process run does
    not hand them the exception.
    """

    runs: dict[str, RunRecord] = field(default_factory=dict)

    def of(self, dag_id: str) -> RunRecord:
        return self.runs.setdefault(dag_id, RunRecord())

    def watch(self, monkeypatch: Any, *classes: type) -> Recorder:
        for cls in classes:
            monkeypatch.setattr(cls, "render_template_fields", self._render(cls))
            monkeypatch.setattr(cls, "execute", self._execute(cls))
        return self

    def _render(self, cls: type) -> Any:
        original = cls.render_template_fields

        def render_template_fields(op: Any, context: Any, jinja_env: Any = None) -> Any:
            run = self.of(context["dag"].dag_id)
            run.tries += 1
            run.started, run.ended, run.outcome, run.exception = time.monotonic(), None, None, None
            run.cpu = -time.thread_time()
            try:
                return original(op, context, jinja_env)
            except BaseException as exc:
                self._end(run, exc)
                raise

        return render_template_fields

    def _execute(self, cls: type) -> Any:
        original = cls.execute

        def execute(op: Any, context: Any) -> Any:
            run = self.of(context["dag"].dag_id)
            try:
                result = original(op, context)
            except BaseException as exc:
                self._end(run, exc)
                raise
            self._end(run, None)
            return result

        return execute

    @staticmethod
    def _end(run: RunRecord, exc: BaseException | None) -> None:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        run.ended = time.monotonic()
        run.cpu += time.thread_time()
        if exc is None:
            run.outcome = "success"
            return
        run.outcome = "skipped" if isinstance(exc, AirflowSkipException) else "failed"
        run.exception = exc
        run.exceptions.append(exc)


def one_task_dag(dag_id: str, operator_cls: type, *, retries: int = 0, **kwargs: Any) -> Any:
    """A DAG holding one export task, ``export``; Airflow retries it ``retries`` times, at once."""
    from datetime import timedelta

    from airflow.sdk import DAG

    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        operator_cls(task_id="export", retries=retries, retry_delay=timedelta(0), **kwargs)
    return dag


def try_number(dag_run: Any, task_id: str = "export") -> int:
    """The task instance's ``try_number`` as the metadata DB holds it after the run."""
    (ti,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    return int(ti.try_number)


def exception_texts(exc: BaseException | None) -> str:
    """``str`` and ``repr`` of an exception and of every exception in its chain."""
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), *map(str, getattr(exc, "args", ()))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


# -- the servers' requests -----------------------------------------------------------------


def script_reports(hostile: Any, *replies: Any) -> None:
    """Script a hostile server's replies to the next report requests, in order."""
    hostile.route(REPORTS_PATH, *replies, method="POST")


def served(hostile: Any) -> int:
    """Report requests a hostile server received."""
    return len(hostile.requests_to(REPORTS_PATH))


def report_requests(emu: Any) -> list[Any]:
    return [r for r in emu.requests if r.path == REPORTS_PATH]


def requests_served(emu: Any, script_len: int, *, at_least: int = 0, wait_s: float = 5) -> int:
    """Report requests the emulator saw: scripted faults taken plus normal requests.

    A stalled or dripping request is recorded only when its handler finishes, but its fault
    is taken from the script at once: counting both makes the figure exact without waiting.
    Normal requests are recorded just after their last byte: wait briefly for ``at_least``.
    """
    deadline = time.monotonic() + wait_s
    while True:
        taken = script_len - len(emu.pending_script)
        normal = [r for r in report_requests(emu) if r.fault is None]
        if taken + len(normal) >= at_least or time.monotonic() > deadline:
            return taken + len(normal)
        time.sleep(0.02)


def first_request_at(emu: Any, run: RunRecord, wait_s: float = 5) -> float:
    """When the first report request of ``run``'s try had been read (``time.monotonic()``).

    The documented time bound counts from there: what runs before it (rendering, the connection
    lookup, the destination's check) is not the export's HTTP work, and on a loaded machine it
    alone can take a noticeable share of a test's small ``max_elapsed``. A stalled request is
    recorded when its handler ends, so a previous test's may arrive after the reset: only
    requests received after the try began count, waiting briefly for one.
    """
    assert run.started is not None
    deadline = time.monotonic() + wait_s
    while True:
        seen = [r.received for r in report_requests(emu) if r.received >= run.started]
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert seen, "the emulator recorded no report request of this try"
    return min(seen)


def retry_lines(text: str) -> list[dict[str, Any]]:
    """The hook's retry log lines found in ``text``: attempt, max, what failed, wait."""
    return [
        {
            "attempt": int(m["attempt"]),
            "max": int(m["max"]),
            "what": m["what"],
            "wait": float(m["wait"]),
        }
        for m in _RETRY_LINE.finditer(text)
    ]


def leftovers(folder: Path, keep: str | set[str]) -> list[str]:
    """Every file in ``folder`` (recursively) but ``keep``: temporary files left behind."""
    kept = {keep} if isinstance(keep, str) else keep
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name not in kept
    )


# -- destinations ----------------------------------------------------------------------------


@dataclass
class LocalFolder:
    """The destination as a local file, pre-seeded with the previous good export."""

    folder: Path
    name: str = "local file"

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "report.csv").write_bytes(PREVIOUS)

    def uri(self) -> str:
        return f"file://{self.folder}/report.csv"

    def read(self) -> bytes:
        return (self.folder / "report.csv").read_bytes()

    def leftovers(self) -> list[str]:
        return leftovers(self.folder, keep="report.csv")


@dataclass
class S3Folder:
    """The destination as an S3 object (moto server), pre-seeded with the previous export."""

    s3: Any
    name: str = "S3 object"

    def __post_init__(self) -> None:
        self.s3.client().put_object(Bucket=self.s3.bucket, Key="out/report.csv", Body=PREVIOUS)

    def uri(self) -> str:
        return f"s3://aws_default@{self.s3.bucket}/out/report.csv"

    def read(self) -> bytes:
        return self.s3.read("out/report.csv")

    def leftovers(self) -> list[str]:
        """Other keys, and multipart uploads left open."""
        keys = [k for k in self.s3.keys() if k != "out/report.csv"]  # noqa: SIM118 (a list)
        return keys + [f"open upload {key}" for key in self.s3.uploads()]


# -- memory ----------------------------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)


@dataclass
class PeakRSS:
    """The growth of this process's peak resident set size over a block, in MiB.

    Linux resets the peak (``VmHWM``) when ``5`` is written to ``/proc/self/clear_refs``; where
    that is not allowed, a thread samples ``VmRSS`` every 5 ms instead (``exact`` False).
    The task of a ``dag.test()`` run runs in this process, so its growth is in the figure.
    """

    before_mib: float = 0.0
    peak_mib: float = 0.0
    exact: bool = True

    @property
    def growth_mib(self) -> float:
        return max(0.0, self.peak_mib - self.before_mib)

    @contextlib.contextmanager
    def measure(self) -> Iterator[PeakRSS]:
        import gc

        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
        except OSError:
            self.exact = False
        self.before_mib = _status_kib("VmRSS") / 1024
        stop = threading.Event()
        samples = [self.before_mib]

        def sample() -> None:
            while not stop.wait(0.005):
                samples.append(_status_kib("VmRSS") / 1024)

        sampler = None if self.exact else threading.Thread(target=sample, daemon=True)
        if sampler is not None:
            sampler.start()
        try:
            yield self
        finally:
            stop.set()
            if sampler is not None:
                sampler.join()
            self.peak_mib = _status_kib("VmHWM") / 1024 if self.exact else max(samples)


# -- one export run --------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one DAG run of an export task ended.

    :param tries: the task instance's ``try_number`` after the run (tries it took).
    :param wall: seconds of the whole ``dag.test()`` call.
    """

    dag_id: str
    state: str
    tries: int
    run: RunRecord
    dag_run: Any
    wall: float

    @property
    def exception(self) -> BaseException | None:
        return self.run.exception

    @property
    def error(self) -> str:
        exc = self.run.exception
        return "" if exc is None else f"{type(exc).__name__}: {exc}"

    @property
    def cause(self) -> BaseException | None:
        """The provider's exception under an ``AirflowFailException`` (else the exception)."""
        exc = self.run.exception
        return exc.__cause__ if exc is not None and exc.__cause__ is not None else exc


def export_run(
    run_dag: Any,
    recorder: Recorder,
    dag_id: str,
    *,
    retries: int = 0,
    operator: type | None = None,
    **kwargs: Any,
) -> Outcome:
    """Run a one-task DAG exporting with ``kwargs`` (``TEAM_KWARGS`` unless given)."""
    if operator is None:
        from airflow_provider_sei.operators.reports import SEITeamReportOperator

        operator = SEITeamReportOperator
        kwargs = {**TEAM_KWARGS, **kwargs}
    dag = one_task_dag(dag_id, operator, retries=retries, **kwargs)
    started = time.monotonic()
    dag_run = run_dag(dag, LOGICAL_DATE)
    wall = time.monotonic() - started
    state = run_dag.states(dag_run)["export"]
    return Outcome(dag_id, state, try_number(dag_run), recorder.of(dag_id), dag_run, wall)


# -- where a secret could land -----------------------------------------------------------------


def db_dump() -> str:
    """Every row of every table of the metadata DB, as SQL text."""
    import sqlite3

    from airflow import settings

    path = settings.engine.url.database
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def run_rows(dag_run: Any) -> dict[str, list[str]]:
    """The run's XCom values and rendered template fields, as stored (not deserialized)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id
            )
        ).all()
        rtifs = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_run.dag_id,
                RenderedTaskInstanceFields.run_id == dag_run.run_id,
            )
        ).all()
        return {
            "xcom": [f"{x.key}={x.value!r}" for x in xcoms],
            "rendered_fields": [repr(r.rendered_fields) for r in rtifs],
        }


def airflow_home() -> Path:
    import os

    return Path(os.environ["AIRFLOW_HOME"])


def log_files() -> str:
    """The text of every file under ``AIRFLOW_HOME/logs`` (task log files, when written)."""
    logs = airflow_home() / "logs"
    texts = [p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()]
    return "\n".join(texts)


def file_names(*folders: Path) -> str:
    """Every path under ``folders``, one a line: a file named after a secret is a leak too."""
    return "\n".join(str(p) for folder in folders if folder.exists() for p in folder.rglob("*"))


def sinks_of(
    outcome: Outcome, out: str, err: str, logs: list[str], *folders: Path
) -> dict[str, str]:
    """Every place a DAG run could have put a secret, as text, by name."""
    rows = run_rows(outcome.dag_run)
    printed, _ = without_mask_echo(out)
    return {
        "stdout (task log, DEBUG)": printed,
        "stderr": err,
        "log records (DEBUG, every logger)": "\n".join(logs),
        "task log files": log_files(),
        "exception str/repr/args, whole chain": "\n".join(
            exception_texts(exc) for exc in outcome.run.exceptions
        ),
        "xcom": "\n".join(rows["xcom"]),
        "rendered fields": "\n".join(rows["rendered_fields"]),
        "metadata DB dump": db_dump(),
        "file names": file_names(*folders, airflow_home() / "logs"),
    }


def outcome_row(outcome: Outcome, **fields: Any) -> dict[str, Any]:
    """A results row (``record``): the run's state, tries, try time and error, then ``fields``."""
    return {
        "state": outcome.state,
        "tries": outcome.tries,
        "seconds": round(outcome.run.seconds, 2),
        "error": outcome.error,
        **fields,
    }
