"""Failures that fail fast and say what to fix; 200s that are no report; input; 1xx (issue 11).

Every task here has ``retries=2`` (``retry_delay`` 0), and the connection ``max_retries=0``,
so the task's ``try_number`` counts Airflow's tries and the hostile server's request count
equals them. ``dag.test()`` runs a task's retries itself (Airflow 3.3's ``DAG.test`` loop
schedules an ``up_for_retry`` task again and bumps its ``try_number``): what a retry cannot
change ends ``failed`` after exactly one try, with the fix in the message; what a retry may
change keeps its three.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hostile import Hold, csv, json_error, response

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.hooks.errors import AUTH_HINT, COLLECTION_HINT
from airflow_provider_sei.models import parse_id

from .conftest import record
from .helpers import (
    GOOD_REPORT,
    HEADER,
    PREVIOUS,
    REPORTS_PATH,
    LocalFolder,
    export_run,
    outcome_row,
    served,
)


@pytest.fixture(autouse=True)
def _one_attempt_per_try(rel_conn: Any) -> None:
    """Every ``set()`` of the connection in this module: one attempt per try, 0.5 s timeout."""
    rel_conn.defaults = {**rel_conn.defaults, "max_retries": 0, "timeout": 0.5}
    rel_conn.set()


# -- statuses and transport faults, against the hostile server ----------------------------------


@dataclass(frozen=True)
class Answer:
    """What the server does on every request, and what must follow.

    :param tries: the task's tries (1: failed fast; 3: both task retries used).
    :param message: pieces of the task's error.
    """

    reply: Any
    tries: int
    message: tuple[str, ...] = ()


ANSWERS: dict[str, Answer] = {
    "401": Answer(json_error(401, "Invalid API key"), 1, ("SEI API error 401", AUTH_HINT)),
    "403": Answer(json_error(403, "Not allowed"), 1, ("SEI API error 403", AUTH_HINT)),
    "404 (a team name for an id)": Answer(
        json_error(404, "Collection not found"), 1, ("SEI API error 404", COLLECTION_HINT)),
    "400": Answer(json_error(400, "collectionId is invalid"), 1, ("collectionId is invalid",)),
    "501": Answer(json_error(501, "Not implemented"), 1, ("SEI API error 501",)),
    "503": Answer(json_error(503, "Try later"), 3, ("SEI API error 503",)),
    "429": Answer(json_error(429, "Too many requests"), 3, ("SEI API error 429",)),
    "408": Answer(json_error(408, "Request timeout"), 3, ("SEI API error 408",)),
    "cut body (Content-Length lies)": Answer(
        csv(GOOD_REPORT, content_length=len(GOOD_REPORT) + 100), 3, ("cut short",)),
    "read timeout (nothing sent)": Answer([Hold()], 3, ("read timeout",)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ANSWERS), ids=list(ANSWERS))
def test_what_no_retry_changes_fails_after_one_try(case, hostile, run_dag, recorder, tmp_path):
    answer = ANSWERS[case]
    store = LocalFolder(tmp_path / "out")
    hostile.default = answer.reply

    dag_id = "fast_" + "".join(c if c.isalnum() else "_" for c in case)
    outcome = export_run(run_dag, recorder, dag_id, retries=2, destination=store.uri())

    record("fail_fast", outcome_row(outcome, condition=case, requests=served(hostile)))
    assert outcome.state == "failed"
    assert outcome.tries == answer.tries
    assert outcome.run.tries == answer.tries
    assert served(hostile) == answer.tries
    for piece in answer.message:
        assert piece in outcome.error
    assert ("AirflowFailException" in outcome.error) == (answer.tries == 1)
    assert store.read() == PREVIOUS
    assert store.leftovers() == []


# -- connections and destinations: nothing is requested -----------------------------------------


def test_an_unknown_sei_connection_fails_after_one_try(hostile, run_dag, recorder, tmp_path):
    store = LocalFolder(tmp_path / "out")
    outcome = export_run(
        run_dag,
        recorder,
        "fast_unknown_sei_conn",
        retries=2,
        destination=store.uri(),
        harness_sei_conn_id="no_such_sei",
    )
    record(
        "fail_fast",
        outcome_row(outcome, condition="unknown harness_sei_conn_id", requests=served(hostile)),
    )
    assert (outcome.state, outcome.tries, served(hostile)) == ("failed", 1, 0)
    assert "no_such_sei" in outcome.error
    assert "create the connection" in outcome.error
    assert store.read() == PREVIOUS


def test_an_unknown_destination_connection_fails_after_one_try(hostile, s3, run_dag, recorder):
    """Issue 11: an unknown ``dest_conn_id`` fell back to default AWS credentials and failed
    three times with ``gaierror``."""
    outcome = export_run(
        run_dag,
        recorder,
        "fast_unknown_dest_conn",
        retries=2,
        destination=f"s3://{s3.bucket}/out/team.csv",
        dest_conn_id="no_such_aws",
    )
    record(
        "fail_fast",
        outcome_row(outcome, condition="unknown dest_conn_id", requests=served(hostile)),
    )
    assert (outcome.state, outcome.tries, served(hostile)) == ("failed", 1, 0)
    assert "with connection 'no_such_aws' failed: the connection is not defined" in outcome.error
    assert s3.keys() == []


def test_a_missing_bucket_fails_after_one_try_before_any_request(hostile, s3, run_dag, recorder):
    missing = f"{s3.bucket}-missing"
    outcome = export_run(
        run_dag,
        recorder,
        "fast_missing_bucket",
        retries=2,
        destination=f"s3://aws_default@{missing}/out/team.csv",
    )
    record(
        "fail_fast",
        outcome_row(outcome, condition="s3:// to a missing bucket", requests=served(hostile)),
    )
    assert (outcome.state, outcome.tries, served(hostile)) == ("failed", 1, 0)
    assert f"Writing s3://{missing}/out/team.csv with connection 'aws_default' failed" in (
        outcome.error
    )
    assert missing not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_aws_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``aws_default`` connection at all; boto's default chain leads to a closed port on
    127.0.0.1 (so nothing reaches real AWS), tried once (boto's own retries would add ~10 s)."""
    import s3fs

    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def test_s3_without_any_aws_connection_fails_after_one_try(
    hostile, no_aws_connection, run_dag, recorder
):
    """Issue 11: ``s3://`` with no AWS connection at all failed three times with ``gaierror``."""
    outcome = export_run(
        run_dag,
        recorder,
        "fast_no_aws_connection",
        retries=2,
        destination="s3://sei-reports/out/team.csv",
    )
    record(
        "fail_fast",
        outcome_row(
            outcome, condition="s3:// with no AWS connection at all", requests=served(hostile)
        ),
    )
    assert (outcome.state, outcome.tries, served(hostile)) == ("failed", 1, 0)
    assert "Writing s3://sei-reports/out/team.csv (no connection id) failed" in outcome.error


BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
    b"Connection: close\r\n\r\nBad Request\n"
)


@dataclass
class PlainHTTPServer:
    """A plain-HTTP server that answers whatever arrives -- a TLS ClientHello included --
    with ``400 Bad Request``, as nginx or any HTTP/1.1 server does."""

    connections: int = 0
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            self.connections += 1
            with sock:
                sock.settimeout(5)
                try:
                    sock.recv(65536)
                    sock.sendall(BAD_REQUEST)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self._listener.close()


def test_tls_on_a_plain_http_server_says_https_was_assumed(rel_conn, run_dag, recorder, tmp_path):
    """Issue 11: a host without a scheme gets ``https://``; against a plain-HTTP server that
    was a bare ``SSLError``, retried. Now one try, and the message says what was assumed."""
    server = PlainHTTPServer()
    try:
        rel_conn.base_url = f"127.0.0.1:{server.port}"  # no scheme
        rel_conn.set()
        store = LocalFolder(tmp_path / "out")
        outcome = export_run(
            run_dag, recorder, "fast_tls_on_plain_http", retries=2, destination=store.uri()
        )
    finally:
        server.close()
    record(
        "fail_fast",
        outcome_row(
            outcome,
            condition="a host without a scheme on a plain-HTTP server (TLS)",
            requests=server.connections,
        ),
    )
    assert (outcome.state, outcome.tries, server.connections) == ("failed", 1, 1)
    assert "https:// was assumed because the Base URL has no scheme" in outcome.error
    assert f"write http://127.0.0.1:{server.port}" in outcome.error
    assert store.read() == PREVIOUS


# -- input: refused with SEIInvalidRequestError's message, before any request ------------------

IDS = {"superscript-two": "\u00b2", "5000-digits": "9" * 5000, "full-width-digits": "\uff11\uff12"}


@pytest.mark.parametrize("case", list(IDS), ids=list(IDS))
def test_an_id_that_is_not_ascii_digits_fails_once_naming_the_field(
    case, hostile, run_dag, recorder, tmp_path
):
    """Issue 11: ``team_ref_id="²"`` or a 5,000-digit id raised a plain ``ValueError``, so
    the task's retries ran. Now: SEIInvalidRequestError's message, one try, no request."""
    with pytest.raises(SEIInvalidRequestError) as expected:
        parse_id("team_ref_id", IDS[case])
    store = LocalFolder(tmp_path / "out")

    outcome = export_run(
        run_dag,
        recorder,
        f"fast_id_{case}".replace("-", "_"),
        retries=2,
        destination=store.uri(),
        team_ref_id=IDS[case],
    )

    record(
        "fail_fast",
        outcome_row(
            outcome,
            condition=f"team_ref_id={IDS[case][:12]!r}" + ("…" if len(IDS[case]) > 12 else ""),
            requests=served(hostile),
        ),
    )
    assert (outcome.state, outcome.tries, served(hostile)) == ("failed", 1, 0)
    assert outcome.error == f"AirflowFailException: {expected.value}"
    assert isinstance(outcome.cause, SEIInvalidRequestError)
    assert len(outcome.error) < 300  # the 5,000 digits are not repeated
    assert store.read() == PREVIOUS


def test_a_datetime_with_an_offset_is_taken_in_the_dags_timezone(
    hostile, run_dag, recorder, tmp_path
):
    """Issue 11: ``2024-01-01T23:30:00-05:00`` was taken in its own zone (2024-01-01); in the
    DAG's timezone (UTC) it is 2024-01-02 04:30."""
    hostile.default = csv(GOOD_REPORT)
    outcome = export_run(
        run_dag,
        recorder,
        "input_offset_date",
        destination=f"file://{tmp_path}/team.csv",
        date_start="2024-01-01T23:30:00-05:00",
    )
    assert outcome.state == "success"
    (request,) = hostile.requests_to(REPORTS_PATH)
    assert request.json()["dateStart"] == "2024-01-02"


# -- interim responses -------------------------------------------------------------------------

INTERIM = {
    "103 Early Hints": [(103, {"Link": "</app.css>; rel=preload; as=style"})],
    "100 Continue, then two 103s": [
        (100, None),
        (103, {"Link": "</a.js>; rel=preload"}),
        (103, {"Link": "</b.js>; rel=preload"}),
    ],
}


@pytest.mark.parametrize("case", list(INTERIM), ids=list(INTERIM))
def test_interim_responses_before_the_report_are_skipped(case, hostile, store, run_dag, recorder):
    """Issue 11: a ``103 Early Hints`` before the 200 failed the task."""
    headers = {"Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="t.csv"'}
    hostile.default = response(200, headers, GOOD_REPORT, interim=INTERIM[case])

    outcome = export_run(
        run_dag, recorder, f"interim_{len(INTERIM[case])}_{store.name[:2]}", destination=store.uri()
    )

    assert outcome.state == "success"
    assert served(hostile) == 1
    assert store.read() == GOOD_REPORT
    assert store.leftovers() == []


# -- 200s that are no report -------------------------------------------------------------------

UTF16_PAGE = "<!DOCTYPE html>\n<html><body><h1>Sign in</h1></body></html>\n".encode("utf-16")
NOT_REPORTS = {
    # id: (Content-Type, body, a piece of the error)
    "proxy-denial-text-plain": ("text/plain",
                                b"Access denied by proxy policy (error 1003). Your request was "
                                b"blocked by the security gateway.\n", "not a report"),
    "login-page-as-text-csv": ("text/csv",
                               b"<!DOCTYPE html>\n<html><head><title>Sign in - Harness</title>"
                               b"</head>\n<body><form>...</form></body></html>\n", "not a report"),
    "utf-16-html-as-octet-stream": ("application/octet-stream", UTF16_PAGE, "not a report"),
    "blank-lines": ("text/csv", b"\n\n\r\n\n", "not a CSV report"),
    "csv-of-something-else": ("text/csv", b"id,name\n1,alice\n2,bob\n", "not a report"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(NOT_REPORTS), ids=list(NOT_REPORTS))
def test_a_200_that_is_not_a_report_fails_and_leaves_the_destination(
    case, hostile, store, run_dag, recorder
):
    """Issue 11: a proxy's "Access denied" page, a login page sent as ``text/csv``, a UTF-16
    HTML page sent as ``application/octet-stream`` replaced a good report (task success, 0
    rows); a body of blank lines was a report. Now each fails once; the export stays."""
    content_type, body, piece = NOT_REPORTS[case]
    hostile.default = response(200, {"Content-Type": content_type}, body)

    outcome = export_run(
        run_dag,
        recorder,
        f"not_report_{case}_{store.name[:2]}".replace("-", "_"),
        retries=2,
        destination=store.uri(),
    )

    record(
        "not_a_report",
        outcome_row(
            outcome,
            case=case,
            content_type=content_type,
            store=store.name,
            requests=served(hostile),
        ),
    )
    assert outcome.state == "failed"
    assert outcome.tries == 1
    assert served(hostile) == 1
    assert piece in outcome.error
    assert store.read() == PREVIOUS
    assert store.leftovers() == []


def test_a_header_alone_is_an_empty_report_under_if_empty(hostile, run_dag, recorder, tmp_path):
    """``if_empty`` applies to a report with no data rows: a header alone is one, and ``fail``
    fails it once without touching the destination."""
    store = LocalFolder(tmp_path / "out")
    hostile.default = csv(HEADER)
    outcome = export_run(
        run_dag,
        recorder,
        "not_report_header_only",
        retries=2,
        destination=store.uri(),
        if_empty="fail",
    )
    assert (outcome.state, outcome.tries) == ("failed", 1)
    assert "no data rows" in outcome.error
    assert store.read() == PREVIOUS
    assert store.leftovers() == []
