"""The API key in every form a hostile server can send it back, never leaving the hook (issue 11).

Each case is a real DAG run (``dag.test()``) against ``tests/hostile.py``'s server, which
echoes the key it received -- URL-encoded in a 401 message, its ``pat.`` secret segment
alone, split by a line break in an HTML 403 page, inside a redirect's ``Location``, inside
the ``Content-Disposition`` file name, in a proxy's 200 page -- or with a connection whose key
cannot be sent at all (a ``\\r\\n`` inside it, a non-Latin-1 character). After the run every
place a secret could land is searched for every form of the key (``helpers.secret_forms``:
whole, secret segment, ``quote``, ``quote_plus``; and each with whitespace removed from the
text, which finds a key split over two lines): the task log at DEBUG and stdout/stderr, every
log record, task log files, the exception of every try (``str``, ``repr``, ``args``, whole
chain), XCom, rendered fields, the whole metadata DB (asset events included), and the names of
the files written. The key used is a distinctive one whose URL-encoded forms differ from it
(``+``, ``=``, ``!``), assembled at run time so no DAG source holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from airflow.sdk import Asset
from hostile import Request, csv, json_error, redirect, response

from .conftest import record
from .helpers import (
    FALLBACK_NAME,
    GOOD_REPORT,
    HOSTILE_KEY,
    REPORTS_PATH,
    SECRET_KEY,
    export_run,
    find_secrets,
    outcome_row,
    secret_forms,
    sinks_of,
)


def sent_key(request: Request) -> str:
    """The key the client sent, from ``x-api-key`` or ``Authorization: ApiKey``."""
    return request.headers.get("x-api-key") or request.headers["authorization"].split(" ", 1)[1]


def _html_403(key: str) -> list[Any]:
    page = (
        f"<html>\n<body><h1>403 Forbidden</h1>\n<p>The key {key[:31]}\n{key[31:]} may not "
        "read this collection.</p></body>\n</html>\n"
    )
    return response(403, {"Content-Type": "text/html; charset=utf-8"}, page)


def _rfc5987(key: str) -> list[Any]:
    disposition = f"attachment; filename*=UTF-8''team-{quote(key, safe='')}.csv"
    return response(
        200, {"Content-Type": "text/csv", "Content-Disposition": disposition}, GOOD_REPORT
    )


def _proxy_page(key: str) -> list[Any]:
    page = f"Access denied by proxy policy (error 1003) for x-api-key: {key}\nContact IT.\n"
    return response(200, {"Content-Type": "text/plain"}, page)


@dataclass(frozen=True)
class Echo:
    """A server that sends the key back.

    :param form: which form of the key it sends, and where.
    :param reply: the reply, given the key the client sent.
    :param state: the task's final state; ``tries``: the tries it takes (``retries=2``).
    :param message: a piece of the task's error (failed runs).
    """

    form: str
    key: str
    reply: Callable[[str], list[Any]]
    state: str
    tries: int = 1
    message: str = ""


ECHOES: dict[str, Echo] = {
    "401-url-encoded": Echo(
        "quote(key) in a 401's JSON message", HOSTILE_KEY,
        lambda k: json_error(401, f"Invalid API key {quote(k, safe='')}"),
        "failed", 1, "SEI API error 401"),
    "401-quote-plus": Echo(
        "quote_plus(key) in a 401's JSON message", HOSTILE_KEY,
        lambda k: json_error(401, f"rejected: x-api-key={quote_plus(k)}"),
        "failed", 1, "SEI API error 401"),
    "401-secret-segment": Echo(
        "the pat. secret segment alone in a 401's JSON message", HOSTILE_KEY,
        lambda k: json_error(401, f"token secret {k.rsplit('.', 1)[1]} was revoked"),
        "failed", 1, "SEI API error 401"),
    "403-html-split-by-newline": Echo(
        "the key split by a line break in a 403's HTML page", HOSTILE_KEY, _html_403,
        "failed", 1, "SEI API error 403"),
    "302-location": Echo(
        "quote(key) in a 302's Location", HOSTILE_KEY,
        lambda k: redirect(302, f"https://sso.example.invalid/login?apikey={quote(k, safe='')}"),
        "failed", 1, "redirected to"),
    "500-retried": Echo(
        "the key in a 500's JSON message, on every attempt and try", HOSTILE_KEY,
        lambda k: json_error(500, f"upstream refused {k}"),
        "failed", 3, "SEI API error 500"),
    "content-disposition": Echo(
        "the key in the Content-Disposition file name (a plain report name otherwise)",
        SECRET_KEY, lambda k: csv(GOOD_REPORT, filename=f"team-{k}.csv"), "success"),
    "content-disposition-rfc5987": Echo(
        "quote(key) in an RFC 5987 filename*", HOSTILE_KEY, _rfc5987, "success"),
    "200-proxy-page": Echo(
        "the key in a proxy's 200 text/plain page", HOSTILE_KEY, _proxy_page,
        "failed", 1, "The response is not a report"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ECHOES), ids=list(ECHOES))
def test_the_key_echoed_back_never_leaves_the_hook(
    case, hostile, rel_conn, run_dag, recorder, tmp_path, capfd, all_logs, masked
):
    echo = ECHOES[case]
    rel_conn.api_key = echo.key
    rel_conn.set(max_retries=0 if echo.tries > 1 else 2)
    hostile.default = lambda request: echo.reply(sent_key(request))
    out = tmp_path / "out"
    out.mkdir()
    asset = Asset(name="sei_team_exports", uri="file:///sei/team-exports")

    outcome = export_run(
        run_dag,
        recorder,
        f"secret_echo_{case}".replace("-", "_"),
        retries=2,
        destination=f"file://{out}/",
        outlets=[asset],
    )

    stdout, stderr = capfd.readouterr()
    sinks = sinks_of(outcome, stdout, stderr, all_logs.texts, tmp_path)
    leaks = find_secrets(sinks, echo.key)
    record(
        "redaction",
        outcome_row(
            outcome,
            case=case,
            form=echo.form,
            requests=len(hostile.requests),
            sinks=sorted(sinks),
            leaks=leaks,
        ),
    )
    assert leaks == []
    assert outcome.state == echo.state
    assert outcome.tries == echo.tries
    assert len(hostile.requests_to(REPORTS_PATH)) == echo.tries
    assert echo.message in outcome.error
    key = echo.key
    for form in (key, key.rsplit(".", 1)[1], quote(key, safe=""), quote_plus(key)):
        assert form in masked  # and task logs mask each, wherever else it turns up
    if echo.state == "success":
        summary = run_dag.xcom(outcome.dag_run, "export")
        assert summary["filename"] is None  # the server's name was not used
        assert summary["uri"] == f"file://{out}/{FALLBACK_NAME}"
        assert sorted(p.name for p in out.iterdir()) == [FALLBACK_NAME]
    else:
        assert "***" in outcome.error  # the echo was there, and was removed
        assert list(out.iterdir()) == []


BAD_KEYS = {
    # id: (the key as pasted into the connection, the key it was meant to be, what is wrong)
    "crlf-inside": (HOSTILE_KEY[:31] + "\r\n" + HOSTILE_KEY[31:], HOSTILE_KEY,
                    "the connection's key with a \\r\\n inside"),
    "non-latin-1": (HOSTILE_KEY + "\u20ac", HOSTILE_KEY,
                    "the connection's key with a non-Latin-1 character (\u20ac)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_KEYS), ids=list(BAD_KEYS))
def test_a_key_that_cannot_be_sent_is_rejected_without_being_repeated(
    case, hostile, rel_conn, run_dag, recorder, tmp_path, capfd, all_logs
):
    """Issue 11: requests' ``InvalidHeader`` quoted a ``\\r\\n`` key in its repr, and a
    non-Latin-1 key sat in an exception's args. Now the connection settings refuse both,
    naming the field and never the value, before any request; the task fails once."""
    pasted, meant, what = BAD_KEYS[case]
    rel_conn.api_key = pasted
    rel_conn.set()

    outcome = export_run(
        run_dag,
        recorder,
        f"secret_bad_key_{case}".replace("-", "_"),
        retries=2,
        destination=f"file://{tmp_path}/out/team.csv",
    )

    stdout, stderr = capfd.readouterr()
    sinks = sinks_of(outcome, stdout, stderr, all_logs.texts, tmp_path)
    leaks = find_secrets(sinks, meant) + [
        f"{sink}: the pasted key" for sink, text in sinks.items() if pasted in text
    ]
    record(
        "redaction",
        outcome_row(
            outcome,
            case=f"key-{case}",
            form=what,
            requests=len(hostile.requests),
            sinks=sorted(sinks),
            leaks=leaks,
        ),
    )
    assert leaks == []
    assert outcome.state == "failed"
    assert outcome.tries == 1
    assert hostile.requests == []
    assert "Invalid password (API key): '<not shown>'" in outcome.error
    assert "printable ASCII" in outcome.error


def test_the_scan_finds_every_form_it_looks_for():
    """The scan itself, on texts that hold each form: a scan that finds nothing proves
    nothing unless it would have found the leak."""
    forms = secret_forms(HOSTILE_KEY)
    assert set(forms) == {
        "key",
        "key, quote",
        "key, quote_plus",
        "secret segment",
        "secret segment, quote",
        "secret segment, quote_plus",
    }
    assert forms["key, quote"] != HOSTILE_KEY  # the encoded forms differ from the key
    for name, form in forms.items():
        assert find_secrets({"sink": f"text {form} text"}, HOSTILE_KEY), name
        split = f"{form[:9]}\n  {form[9:]}"
        assert find_secrets({"sink": split}, HOSTILE_KEY), name
    assert find_secrets({"sink": "*** and *** only"}, HOSTILE_KEY) == []
