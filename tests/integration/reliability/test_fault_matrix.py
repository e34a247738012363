"""The fault matrix: every failure the SEI service can throw at an export, end to end.

Each row is a real DAG run (``dag.test()``) of ``SEITeamReportOperator`` against the emulator
with a scripted fault, with fast retry settings (``FAST_EXTRAS``: 2 retries, 0.05 s initial
backoff). The destination is pre-seeded with a previous good export. Each row asserts whether
the failure was retried, the final task state, the number of requests, that a failed run left
the destination byte-identical and no temporary file behind, and that a recovered run wrote
exactly the bytes the server sends. The measured figures go to ``docs/reliability.md``
(``scripts/reliability_table.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sei_emulator import Fault, Faults

from airflow_provider_sei.models import TeamReportRequest
from airflow_provider_sei.operators.reports import SEITeamReportOperator

from .conftest import record
from .helpers import (
    LOGICAL_DATE,
    PREVIOUS,
    REPORTS_PATH,
    SECRETS,
    TEAM_KWARGS,
    LocalFolder,
    S3Folder,
    one_task_dag,
    requests_served,
    retry_lines,
)

ATTEMPTS = 3  # FAST_EXTRAS: max_retries 2


@dataclass(frozen=True)
class Row:
    """One fault scenario and what must happen.

    :param group: the fault as the issue names it (rows of one group share it).
    :param script: the emulator's scripted faults, one per request, in order.
    :param state: the final task state.
    :param requests: report requests the emulator must see.
    :param error: a piece of the task's exception text (failed rows).
    :param extras: connection extras on top of the fast defaults.
    """

    id: str
    group: str
    script: tuple[Fault, ...]
    state: str
    requests: int
    error: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def retried(self) -> bool:
        return self.requests > 1


def _transient(group: str, fault: Fault, error: str, **extras: Any) -> list[Row]:
    """A retried fault: recovering after one, and exhausting every attempt."""
    slug = group.split(" ")[0]
    return [
        Row(f"{slug}-recovers", group, (fault,), "success", 2, extras=extras,
            note="recovers after 1 fault"),
        Row(f"{slug}-exhausted", group, (fault,) * ATTEMPTS, "failed", ATTEMPTS, error, extras,
            note=f"{ATTEMPTS} faults: retries exhausted"),
    ]  # fmt: skip


def _final(group: str, fault: Fault, error: str, **extras: Any) -> Row:
    """A fault never retried: one request, the task fails."""
    return Row(group.split(" ")[0], group, (fault,), "failed", 1, error, extras,
               note="not retried")  # fmt: skip


STALL_EXTRAS = {"timeout": 0.3}
ROWS: list[Row] = [
    Row("baseline", "no fault", (), "success", 1, note="the reference run"),
    *_transient("429 (no Retry-After)", Fault.status(429), "SEI API error 429"),
    Row("429-ra-recovers", "429 + Retry-After: 1", (Fault.status(429, retry_after=1),),
        "success", 2, note="waits the 1 s the server asked for"),
    Row("429-ra-exhausted", "429 + Retry-After: 1", (Fault.status(429, retry_after=1),) * ATTEMPTS,
        "failed", ATTEMPTS, "SEI API error 429", note=f"{ATTEMPTS} faults: retries exhausted"),
    *_transient("500", Fault.status(500), "SEI API error 500"),
    *_transient("502", Fault.status(502), "SEI API error 502"),
    *_transient("503", Fault.status(503), "SEI API error 503"),
    *_transient("504", Fault.status(504), "SEI API error 504"),
    Row("503-then-429-recovers", "503, then 429", (Fault.status(503), Fault.status(429)),
        "success", ATTEMPTS, note=f"recovers after {ATTEMPTS - 1} faults, on the last attempt"),
    *_transient("reset (connection reset before the response)", Fault.reset(),
                "Could not connect"),
    *_transient("stall (read timeout: 1 s stall, timeout 0.3 s)", Fault.stall(1.0),
                "read timeout", **STALL_EXTRAS),
    *_transient("truncate (body cut short of Content-Length)", Fault.truncate(0.5),
                "cut short"),
    *_transient("chunked-cut (chunked body cut mid-stream)", Fault.chunked_cut(0.5),
                "cut short"),
    _final("html (200 with an HTML body)", Fault.wrong_body("html"), "Expected a CSV report"),
    _final("json (200 with a JSON body)", Fault.wrong_body("json"), "Expected a CSV report"),
    _final("400 (JSON error)", Fault.status(400, "collectionId is invalid"),
           "collectionId is invalid"),
    _final("401 (JSON error)", Fault.status(401, "Invalid API key"), "SEI API error 401"),
    _final("403 (JSON error)", Fault.status(403, "Not allowed"), "SEI API error 403"),
    _final("404 (JSON error)", Fault.status(404, "No such collection"), "SEI API error 404"),
    Row("drip", "drip (64 B every 20 ms)", (Fault.drip(64, 0.02),), "success", 1,
        note="slow but steady: completes"),
    Row("drip-past-read-timeout", "drip (64 B every 0.6 s, timeout 0.3 s)",
        (Fault.drip(64, 0.6),) * ATTEMPTS, "failed", ATTEMPTS, "read timeout", STALL_EXTRAS,
        note="each read times out: retried, exhausted"),
    Row("drip-past-max-elapsed", "drip (16 B every 0.1 s, max_elapsed 1 s)",
        (Fault.drip(16, 0.1),), "failed", 1, "max_elapsed", {"max_elapsed": 1},
        note="the total time bound stops it; not retried"),
]  # fmt: skip


#: Rows repeated with an S3 destination: failures mid-stream and before it, and a recovery.
S3_ROW_IDS = ("500-exhausted", "truncate-exhausted", "chunked-cut-exhausted",
              "chunked-cut-recovers", "html")  # fmt: skip


@pytest.fixture(scope="module")
def expected_report(rel_emulator: Any) -> bytes:
    """The bytes the emulator sends for the rows' request, fetched directly."""
    from .helpers import SECRET_KEY

    body = TeamReportRequest.build(**TEAM_KWARGS).to_json()
    response = requests.post(
        rel_emulator.base_url + REPORTS_PATH,
        params={"format": "csv"},
        json=body,
        headers={"x-api-key": SECRET_KEY},
        timeout=10,
    )
    response.raise_for_status()
    assert response.content.count(b"\n") > 1
    return response.content


def check_row(row: Row, where: Any, run_dag: Any, emu: Any, recorder: Any, capfd: Any,
              seen: list[str], expected_report: bytes) -> None:  # fmt: skip
    """Run ``row`` against destination ``where``, record its figures, assert its outcome."""
    emu.set_faults(Faults(script=list(row.script)))
    suffix = "" if isinstance(where, LocalFolder) else "-s3"
    dag_id = f"fault_{row.id}{suffix}".replace("-", "_")
    dag = one_task_dag(dag_id, SEITeamReportOperator, destination=where.uri(), **TEAM_KWARGS)

    dag_run = run_dag(dag, LOGICAL_DATE)

    state = run_dag.states(dag_run)["export"]
    run = recorder.of(dag_id)
    served = requests_served(emu, len(row.script), at_least=row.requests)
    out, err = capfd.readouterr()
    seen.append(out + err)
    retries = retry_lines(out + err)
    error = "" if run.exception is None else f"{type(run.exception).__name__}: {run.exception}"
    written = where.read()
    left = where.leftovers()
    record(
        "faults",
        {
            "id": row.id + suffix,
            "group": row.group,
            "note": row.note,
            "retried": bool(retries),
            "state": state,
            "requests": served,
            "seconds": round(run.seconds, 2),
            "waits": [r["wait"] for r in retries],
            "retry_log": [f"attempt {r['attempt']}/{r['max']}: {r['what']}" for r in retries],
            "destination": "untouched" if written == PREVIOUS else (
                "new report" if written == expected_report else "CHANGED"),
            "store": where.name,
            "leftovers": left,
            "error": error,
            "extras": row.extras,
        }
    )  # fmt: skip

    assert state == row.state
    assert run.outcome == row.state
    assert served == row.requests
    assert bool(retries) == row.retried
    assert len(retries) == row.requests - 1  # one log line per retry, none otherwise
    assert left == []  # no temporary file (or open upload), whatever happened
    if row.state == "success":
        assert written == expected_report  # exactly the bytes the server sends
        assert run.exception is None
    else:
        assert written == PREVIOUS  # byte-identical to the previous good export
        assert row.error in error
        for secret in SECRETS:
            assert secret not in error
            assert secret not in repr(run.exception)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_fault(
    row, run_dag, rel_conn, emu, recorder, tmp_path, capfd, no_key_in_output, expected_report
):
    rel_conn.set(**row.extras)
    where = LocalFolder(tmp_path / "out")
    check_row(row, where, run_dag, emu, recorder, capfd, no_key_in_output, expected_report)


S3_ROWS = [row for row in ROWS if row.id in S3_ROW_IDS]


@pytest.mark.parametrize("row", S3_ROWS, ids=[row.id + "-s3" for row in S3_ROWS])
def test_fault_on_s3(
    row, run_dag, rel_conn, emu, recorder, s3, capfd, no_key_in_output, expected_report
):
    """The same rows with an S3 destination (a real endpoint: moto's server mode)."""
    rel_conn.set(**row.extras)
    where = S3Folder(s3)
    check_row(row, where, run_dag, emu, recorder, capfd, no_key_in_output, expected_report)
