"""What the hardening tests share: one-task DAGs, a run recorder, and readers of the outcome."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum

#: The secret part of the key, assembled at run time: Airflow stores the source of the file
#: that defines a DAG (``dag_code``), and a literal here would be found by the DB scan.
SECRET_PART = "-".join(["Zq7", "SECRET", "k3y", "8f1e2d9c4b"])
#: The key every test of this suite uses: distinctive, so that any leak is found by a grep.
#: A ``pat.<account>.<token>.<secret>`` key, so the account id is derived from it too.
SECRET_KEY = "pat.relacct01.reltok02." + SECRET_PART
SECRETS = (SECRET_KEY, SECRET_PART)
SEI_CONN_ENV = "AIRFLOW_CONN_SEI_DEFAULT"
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

_RETRY_LINE = re.compile(
    r"failed \(attempt (?P<attempt>\d+)/(?P<max>\d+): (?P<what>[^)]*)\); "
    r"retrying in (?P<wait>[\d.]+) s"
)


@dataclass
class RunRecord:
    """What one task's ``execute`` did: when it ran, how it ended, the exception it raised."""

    started: float | None = None
    ended: float | None = None
    outcome: str | None = None
    exception: BaseException | None = None

    @property
    def seconds(self) -> float:
        if self.started is None or self.ended is None:
            return float("nan")
        return self.ended - self.started


@dataclass
class Recorder:
    """Times the operators' ``execute`` and keeps its exception, per DAG id.

    ``dag.test()`` runs tasks in this process, so wrapping ``execute`` on the class (with
    ``watch``) sees every run. Failure callbacks would be simpler, but on Airflow 3.1 an
    in-process run does not hand them the exception.
    """

    runs: dict[str, RunRecord] = field(default_factory=dict)

    def of(self, dag_id: str) -> RunRecord:
        return self.runs.setdefault(dag_id, RunRecord())

    def watch(self, monkeypatch: Any, *classes: type) -> Recorder:
        from airflow_provider_sei._compat import AirflowSkipException

        for cls in classes:
            original = cls.execute

            def execute(op: Any, context: Any, _original: Any = original) -> Any:
                run = self.of(context["dag"].dag_id)
                run.started = time.monotonic()
                try:
                    result = _original(op, context)
                except AirflowSkipException as exc:
                    run.outcome, run.exception = "skipped", exc
                    raise
                except BaseException as exc:
                    run.outcome, run.exception = "failed", exc
                    raise
                finally:
                    run.ended = time.monotonic()
                run.outcome = "success"
                return result

            monkeypatch.setattr(cls, "execute", execute)
        return self


def one_task_dag(dag_id: str, operator_cls: type, **kwargs: Any) -> Any:
    """A DAG holding one export task, ``export``, that Airflow never retries itself."""
    from airflow.sdk import DAG

    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        operator_cls(task_id="export", retries=0, **kwargs)
    return dag


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


def leftovers(folder: Path, keep: str) -> list[str]:
    """Every file in ``folder`` (recursively) but ``keep``: temporary files left behind."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != keep)
