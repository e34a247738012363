"""Response validation, end to end: Content-Type, Content-Length and the CSV's shape.

The emulator cannot send a CSV whose rows disagree with its header, nor arbitrary
Content-Types, so these runs use ``tiny_server`` (see ``tiny_server.py``). Each case is a
real DAG run; a rejected response leaves the previous export byte-identical and no temporary
file behind.
"""

from __future__ import annotations

import pytest

from airflow_provider_sei.operators.reports import SEITeamReportOperator

from .conftest import record
from .helpers import (
    LOGICAL_DATE,
    PREVIOUS,
    TEAM_KWARGS,
    leftovers,
    one_task_dag,
)
from .tiny_server import Reply

HEADER = b"Collection Name,PR Velocity per Developer,Coding Days per Developer\n"


GOOD_ROWS = b"Team A,1.5,3\nTeam B,2,4\n"
CASES: dict[str, tuple[Reply, str, int, str]] = {
    # id: (reply, final state, requests, a piece of the error / "rows=N" on success)
    "csv-ok": (Reply(HEADER + GOOD_ROWS), "success", 1, "rows=2"),
    "csv-quoted-commas-and-newlines-ok": (
        Reply(HEADER + b'"Team, with comma",1,2\n"Team\nwith newline",3,4\n'), "success", 1,
        "rows=2"),
    "csv-no-final-newline-ok": (Reply(HEADER + b"Team A,1,2"), "success", 1, "rows=1"),
    "row-with-too-many-fields": (Reply(HEADER + b"Team A,1,2\nTeam B,1,2,3\n"), "failed", 1,
                                 "data row 2 (header excluded) has 4 fields, the header 3"),
    "row-with-too-few-fields": (Reply(HEADER + b"Team A,1\nTeam B,1,2\n"), "failed", 1,
                                "data row 1 (header excluded) has 2 fields"),
    "last-row-cut-short": (Reply(HEADER + b"Team A,1,2\nTeam B,1"), "failed", 1,
                           "data row 2 (header excluded) has 2 fields"),
    "blank-line-inside": (Reply(HEADER + b"Team A,1,2\n\nTeam B,1,2\n"), "failed", 1,
                          "data row 2 (header excluded) is empty"),
    "unterminated-quote": (Reply(HEADER + b'Team A,1,2\n"Team B,1,2\n'), "failed", 1,
                           "unterminated quoted field"),
    "content-type-xml": (Reply(HEADER + GOOD_ROWS, "application/xml"), "failed", 1,
                         "Expected a CSV report but got application/xml"),
    # No Content-Type at all: the body must then show itself a report (its header names the
    # collection column or a metric asked for): this one does.
    "content-type-missing-ok": (Reply(HEADER + GOOD_ROWS, None), "success", 1, "rows=2"),
    "content-type-missing-not-a-report": (Reply(b"Sign in\n\nto continue\n", None), "failed", 1,
                                          "The response is not a report"),
    "content-type-html": (Reply(b"<html><body>Sign in</body></html>", "text/html"), "failed", 1,
                          "Expected a CSV report but got text/html"),
    "content-length-longer-than-body": (Reply(HEADER + GOOD_ROWS, length=len(HEADER) + 500),
                                        "failed", 3, "cut short"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_response_is_validated(case, tiny_server, run_dag, recorder, tmp_path):
    reply, state, hits, expected = CASES[case]
    tiny_server.reply = reply
    target = tmp_path / "team.csv"
    target.write_bytes(PREVIOUS)
    dag_id = "validate_" + case.replace("-", "_")
    dag = one_task_dag(dag_id, SEITeamReportOperator, destination=f"file://{target}", **TEAM_KWARGS)

    dag_run = run_dag(dag, LOGICAL_DATE)

    run = recorder.of(dag_id)
    error = "" if run.exception is None else f"{type(run.exception).__name__}: {run.exception}"
    record("validation", {"case": case, "state": run_dag.states(dag_run)["export"],
                          "requests": tiny_server.hits, "error": error})  # fmt: skip
    assert run_dag.states(dag_run) == {"export": state}
    assert tiny_server.hits == hits
    assert leftovers(tmp_path, keep="team.csv") == []
    if state == "success":
        summary = run_dag.xcom(dag_run, "export")
        assert f"rows={summary['rows']}" == expected
        assert summary["bytes"] == len(reply.body)
        assert target.read_bytes() == reply.body
    else:
        assert expected in error
        assert target.read_bytes() == PREVIOUS


def test_an_html_page_labelled_text_plain_is_rejected(tiny_server, run_dag, recorder, tmp_path):
    page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body>Sign in</body>\n"
    tiny_server.reply = Reply(page, "text/plain")
    target = tmp_path / "team.csv"
    target.write_bytes(PREVIOUS)
    dag = one_task_dag(
        "validate_html_as_text_plain",
        SEITeamReportOperator,
        destination=f"file://{target}",
        **TEAM_KWARGS,
    )
    dag_run = run_dag(dag, LOGICAL_DATE)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert target.read_bytes() == PREVIOUS
