"""SEIHook against a real HTTP server on 127.0.0.1 (the ``server`` fixture in conftest.py)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import requests

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIError,
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
)
from airflow_provider_sei.hooks import stream as stream_module
from airflow_provider_sei.hooks.retry import RetryPolicy, parse_retry_after
from airflow_provider_sei.hooks.sei import ExportResult, ReportStream, SEIHook
from airflow_provider_sei.hooks.settings import account_id_from_key, normalise_base_url
from airflow_provider_sei.hooks.stream import parse_filename
from airflow_provider_sei.models import ContributorReportRequest, TeamReportRequest

REPORTS = "/v2/insights/teams/reports"
BIG = b"".join(b"team-%06d,%d,%d\n" % (i, i * 7, i % 13) for i in range(200_000))  # ~4 MB


def team_request() -> TeamReportRequest:
    return TeamReportRequest.build(
        collection_id="123",
        date_start="2024-01-01",
        date_end="2024-03-31",
        productivity_metrics=["pr_velocity_per_dev", "CODING_DAYS_PER_DEV"],
    )


def contributor_request() -> ContributorReportRequest:
    return ContributorReportRequest.build(
        collection_id="1", date_start="2025-11-03", date_end="2025-11-30", include_ratings=True
    )


class Sinks:
    """``open_sink`` for ``export_report``: a fresh BytesIO per attempt, all kept."""

    def __init__(self) -> None:
        self.opened: list[io.BytesIO] = []
        self.writes = 0

    @contextmanager
    def __call__(self) -> Iterator[Sinks]:
        self.opened.append(io.BytesIO())
        yield self

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self.opened[-1].write(data)

    @property
    def last(self) -> bytes:
        return self.opened[-1].getvalue()


@pytest.fixture
def waits() -> list[float]:
    """The waits the retry policy chose (recorded instead of slept)."""
    return []


@pytest.fixture
def policy(waits: list[float]) -> RetryPolicy:
    return RetryPolicy(max_retries=3, backoff_initial=0.01, jitter=0, sleep=waits.append)


@pytest.fixture
def hook(server, make_conn, policy) -> SEIHook:
    return SEIHook(make_conn(host=server.url), retry_policy=policy, timeout=5)


def assert_no_key(api_key: str, *texts: object) -> None:
    for text in texts:
        assert api_key not in str(text)


def chain(exc: BaseException) -> list[str]:
    """The text of an exception and of every exception it was raised from."""
    texts = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


# --- request shape -----------------------------------------------------------------------


def test_export_sends_headers_path_query_and_body(server, hook, api_key):
    server.script(server.csv("a,b\n1,2\n", filename="team_report.csv"))
    sinks = Sinks()

    result = hook.export_team_report(team_request(), sinks)

    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == REPORTS
    assert req.query == {"format": "csv"}
    assert req.headers["x-api-key"] == api_key
    assert "authorization" not in req.headers
    assert req.headers["harness-account"] == "acct123"  # derived from pat.<account>.…
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "text/csv"
    assert req.json() == team_request().to_json()
    assert result == ExportResult("team_report.csv", 8, "text/csv", 1)
    assert sinks.last == b"a,b\n1,2\n"


def test_contributor_body(server, hook):
    hook.export_contributor_report(contributor_request(), Sinks())
    assert server.requests[0].json() == contributor_request().to_json()


def test_export_methods_check_the_body_type(hook):
    with pytest.raises(TypeError, match="TeamReportRequest"):
        hook.export_team_report(contributor_request(), Sinks())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ContributorReportRequest"):
        hook.export_contributor_report(team_request(), Sinks())  # type: ignore[arg-type]


def test_apikey_scheme_and_configured_account(server, make_conn, policy, api_key):
    conn_id = make_conn(host=server.url, auth_scheme="ApiKey", account_id="configured")
    SEIHook(conn_id, retry_policy=policy).export_report(team_request(), Sinks())

    headers = server.requests[0].headers
    assert headers["authorization"] == f"ApiKey {api_key}"
    assert "x-api-key" not in headers
    assert headers["harness-account"] == "configured"


def test_no_account_header_for_a_plain_key(server, make_conn, policy):
    conn_id = make_conn(host=server.url, password="plain-key-without-account")
    SEIHook(conn_id, retry_policy=policy).export_report(team_request(), Sinks())
    assert "harness-account" not in server.requests[0].headers
    assert server.requests[0].headers["x-api-key"] == "plain-key-without-account"


def test_scope_query_parameters(server, make_conn, policy):
    conn_id = make_conn(host=server.url, project_identifier="myproject", org_identifier="default")
    hook = SEIHook(conn_id, retry_policy=policy)
    hook.export_report(team_request(), Sinks())
    server.script(server.respond(200, "[]", {"Content-Type": "application/json"}))
    hook.list_org_trees()

    expected = {"projectIdentifier": "myproject", "orgIdentifier": "default"}
    assert server.requests[0].query == {"format": "csv", **expected}
    assert server.requests[1].query == expected


def test_base_url_with_path_and_trailing_slash(server, make_conn, policy):
    hook = SEIHook(make_conn(host=f"{server.url}/gateway/sei/api/"), retry_policy=policy)
    assert hook.base_url == f"{server.url}/gateway/sei/api"
    hook.export_report(team_request(), Sinks())
    assert server.requests[0].path == "/gateway/sei/api" + REPORTS


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, "https://app.harness.io/gateway/sei/api"),
        ("", None, None, "https://app.harness.io/gateway/sei/api"),
        (
            "https://app.harness.io/gateway/sei/api/",
            None,
            None,
            "https://app.harness.io/gateway/sei/api",
        ),
        (
            "https://accounts.eu.harness.io/sei/api",
            None,
            None,
            "https://accounts.eu.harness.io/sei/api",
        ),
        ("app.harness.io/prod1/sei/api", None, None, "https://app.harness.io/prod1/sei/api"),
        ("sei.internal.example", "sei/api", 8443, "https://sei.internal.example:8443/sei/api"),
        ("http://127.0.0.1:9000", None, None, "http://127.0.0.1:9000"),
    ],
)
def test_normalise_base_url(host, schema, port, expected):
    assert normalise_base_url(host, schema, port) == expected


@pytest.mark.parametrize(
    "host", ["ftp://example.com", "https://", "https://h/api?x=1", "https://u:p@h"]
)
def test_normalise_base_url_rejects(host):
    with pytest.raises(SEIInvalidRequestError, match="host"):
        normalise_base_url(host)


def test_account_id_from_key():
    assert account_id_from_key("pat.acc.tok.secret") == "acc"
    assert account_id_from_key("sat.acc.tok.secret") == "acc"
    assert account_id_from_key("xyz.acc.tok.secret") is None
    assert account_id_from_key("pat.acc.secret") is None


# --- streaming ---------------------------------------------------------------------------


def test_multi_megabyte_body_streams_in_chunks(server, hook):
    server.script(server.csv(BIG))
    sinks = Sinks()

    result = hook.export_report(team_request(), sinks, chunk_size=256 * 1024)

    assert result.bytes == len(BIG)
    assert sinks.last == BIG
    assert sinks.writes >= len(BIG) // (256 * 1024)


def test_stream_report_yields_chunks_and_counts_bytes(server, hook):
    server.script(server.chunked([BIG[:1_000_000], BIG[1_000_000:]]))

    with hook.stream_report(team_request()) as stream:
        assert isinstance(stream, ReportStream)
        assert stream.content_length is None  # chunked
        sizes = [len(chunk) for chunk in stream.iter_chunks(64 * 1024)]

    assert len(sizes) > 10
    assert max(sizes) <= 64 * 1024 + 16 * 1024  # one socket read past chunk_size at most
    assert sum(sizes) == stream.bytes_read == len(BIG)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="team report.csv"', "team report.csv"),
        ("attachment; filename=team_report.csv", "team_report.csv"),
        ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.csv", "résumé.csv"),
        ("attachment; filename=\"a.csv\"; filename*=UTF-8''b.csv", "b.csv"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\evil.csv"', "evil.csv"),
        ("attachment", None),
        (None, None),
    ],
)
def test_parse_filename(header, expected):
    assert parse_filename(header) == expected


def test_filename_reaches_the_result(server, hook):
    server.script(
        server.respond(
            200,
            "x\n",
            {
                "Content-Type": "text/csv",
                "Content-Disposition": "attachment; filename*=UTF-8''t%C3%A9am.csv",
            },
        )
    )
    assert hook.export_report(team_request(), Sinks()).filename == "téam.csv"


@pytest.mark.parametrize(
    "content_type",
    ["text/csv; charset=utf-8", "application/csv", "text/plain", "application/octet-stream"],
)
def test_csv_like_content_types_accepted(server, hook, content_type):
    server.script(server.csv("a\n1\n", content_type=content_type))
    assert hook.export_report(team_request(), Sinks()).bytes == 4


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_empty_body_accepted_whatever_its_type(server, hook, content_type):
    server.script(server.respond(200, b"", {"Content-Type": content_type}))
    sinks = Sinks()
    assert hook.export_report(team_request(), sinks).bytes == 0
    assert sinks.last == b""


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", "<html><body>Please log in</body></html>"),
        ("application/json", '{"status": "error", "message": "format not supported"}'),
    ],
)
def test_html_or_json_200_rejected_without_retry(server, hook, content_type, body):
    server.script(server.respond(200, body, {"Content-Type": content_type}))
    sinks = Sinks()

    with pytest.raises(SEIResponseError, match="Expected a CSV report") as info:
        hook.export_report(team_request(), sinks)

    assert body[:20] in str(info.value)
    assert len(server.requests) == 1
    assert sinks.opened == []  # nothing written for a wrong body


# --- retries -----------------------------------------------------------------------------


def test_429_then_200(server, hook, waits):
    server.script(server.api_error(429, "slow down"))
    result = hook.export_report(team_request(), Sinks())
    assert len(server.requests) == 2
    assert result.attempts == 2
    assert waits == [0.01]


def test_503_twice_then_200_backs_off_exponentially(server, hook, waits):
    server.script(server.api_error(503, "busy"), server.api_error(503, "busy"))
    hook.export_report(team_request(), Sinks())
    assert len(server.requests) == 3
    assert waits == [0.01, 0.02]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_retried(server, hook, status):
    server.script(server.respond(status, "oops"))
    assert hook.export_report(team_request(), Sinks()).attempts == 2


@pytest.mark.parametrize(("retry_after", "wait"), [("7", 7.0), ("0", 0.0), ("3600", 60.0)])
def test_retry_after_seconds_honoured_and_capped(server, hook, waits, retry_after, wait):
    server.script(server.api_error(429, "slow down", retry_after=retry_after))
    hook.export_report(team_request(), Sinks())
    assert waits == [wait]


def test_retry_after_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_retry_log_line(server, hook, logs):
    server.script(server.api_error(429, "slow down"))
    hook.export_report(team_request(), Sinks())
    (line,) = [line for line in logs().splitlines() if "retrying" in line]
    assert "attempt 1/4" in line
    assert "HTTP 429" in line
    assert "retrying in 0.01 s" in line


def test_exhausted_retries_raise_status_and_message(server, hook, waits):
    server.default = server.api_error(503, "Service temporarily unavailable")

    with pytest.raises(SEIAPIError) as info:
        hook.export_report(team_request(), Sinks())

    assert info.value.status_code == 503
    assert info.value.message == "Service temporarily unavailable"
    assert len(server.requests) == 4  # max_retries=3
    assert len(waits) == 3


def test_text_error_body_quoted_as_excerpt(server, hook):
    server.script(
        server.respond(400, "bad   request\n" + "x" * 5000, {"Content-Type": "text/plain"})
    )
    with pytest.raises(SEIAPIError) as info:
        hook.export_report(team_request(), Sinks())
    assert info.value.message.startswith("bad request xxx")
    assert len(info.value.message) < 400


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_never_retried(server, hook, status, waits):
    server.default = server.api_error(status, f"nope {status}")

    with pytest.raises(SEIAPIError) as info:
        hook.export_report(team_request(), Sinks())

    assert (info.value.status_code, info.value.message) == (status, f"nope {status}")
    assert len(server.requests) == 1
    assert waits == []


def test_redirect_not_followed(server, hook):
    server.default = server.respond(302, "", {"Location": "https://elsewhere.example/login"})
    with pytest.raises(SEIAPIError, match=r"elsewhere\.example"):
        hook.export_report(team_request(), Sinks())
    assert len(server.requests) == 1


def test_read_timeout_retried(server, make_conn, policy):
    server.script(server.stall())
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, timeout=0.3)
    assert hook.export_report(team_request(), Sinks()).attempts == 2
    assert len(server.requests) == 2


def test_read_timeout_exhausted(server, make_conn, policy):
    server.default = server.stall()
    hook = SEIHook(
        make_conn(host=server.url),
        retry_policy=RetryPolicy(max_retries=1, backoff_initial=0.01, sleep=policy.sleep),
        timeout=0.2,
    )
    with pytest.raises(SEIError, match=r"127\.0\.0\.1:\d+ sent nothing for 0\.2 s"):
        hook.export_report(team_request(), Sinks())
    assert len(server.requests) == 2


def test_connection_refused(make_conn, policy, closed_port, waits, api_key, logs):
    hook = SEIHook(make_conn(host=f"http://127.0.0.1:{closed_port}"), retry_policy=policy)

    with pytest.raises(SEIError) as info:
        hook.export_report(team_request(), Sinks())

    assert f"127.0.0.1:{closed_port}" in str(info.value)
    assert not isinstance(info.value, SEIAPIError)
    assert len(waits) == 3
    text = logs()
    assert text.count("retrying in") == 3
    assert_no_key(api_key, *chain(info.value), text)


def test_cut_body_retried_with_a_fresh_sink(server, hook):
    body = BIG[:500_000]
    server.script(server.truncated(body, send=200_000), server.csv(body))
    sinks = Sinks()

    result = hook.export_report(team_request(), sinks, chunk_size=64 * 1024)

    assert len(server.requests) == 2
    assert len(sinks.opened) == 2
    assert 0 < len(sinks.opened[0].getvalue()) <= 200_000
    assert sinks.last == body
    assert (result.bytes, result.attempts) == (len(body), 2)


def test_chunked_body_broken_mid_stream_retried(server, hook):
    body = BIG[:300_000]
    server.script(server.chunked_cut(body, send=100_000), server.chunked([body]))
    sinks = Sinks()
    assert hook.export_report(team_request(), sinks).attempts == 2
    assert sinks.last == body


def test_cut_body_exhausted_raises_incomplete_read(server, hook):
    server.default = server.truncated(b"x" * 1000, send=10)
    with pytest.raises(SEIIncompleteReadError) as info:
        hook.export_report(team_request(), Sinks())
    assert (info.value.expected, info.value.received) == (1000, 10)
    assert len(server.requests) == 4


def test_stream_report_leaves_a_cut_body_to_the_caller(server, hook):
    server.script(server.truncated(b"x" * 1000, send=10))
    with hook.stream_report(team_request()) as stream, pytest.raises(SEIIncompleteReadError):
        b"".join(stream.iter_chunks())
    assert len(server.requests) == 1


def test_stream_report_retries_before_the_body(server, hook):
    server.script(server.api_error(503, "busy"))
    with hook.stream_report(team_request()) as stream:
        assert b"".join(stream.iter_chunks()) == b"team,value\nA,1\n"
    assert len(server.requests) == 2


def _hook_whose_clock_jumps_past_max_elapsed(server, make_conn, monkeypatch):
    hook = SEIHook(make_conn(host=server.url), retry_policy=RetryPolicy(max_elapsed=100))
    clock = iter([0.0] + [1000.0] * 10)  # the deadline is 100 s after the first reading
    monkeypatch.setattr(stream_module, "now", lambda: next(clock))
    monkeypatch.setattr("airflow_provider_sei.hooks.sei.now", stream_module.now)
    return hook


def test_slow_drip_stopped_by_max_elapsed(server, make_conn, monkeypatch):
    server.script(server.drip(b"team,value\n", total=10_000))
    hook = _hook_whose_clock_jumps_past_max_elapsed(server, make_conn, monkeypatch)

    with pytest.raises(SEIError, match="max_elapsed") as info:
        hook.export_report(team_request(), Sinks())

    assert not isinstance(info.value, SEIResponseError)
    assert len(server.requests) == 1


def test_a_dripping_org_tree_listing_is_stopped_by_max_elapsed(server, make_conn, monkeypatch):
    server.script(server.drip(b'[{"refId": 1, "name": "Root"}', total=10_000))
    hook = _hook_whose_clock_jumps_past_max_elapsed(server, make_conn, monkeypatch)

    with pytest.raises(SEIError, match="max_elapsed"):
        hook.list_org_tree_teams(1)
    assert len(server.requests) == 1


# --- secrets -----------------------------------------------------------------------------


def _echo_key(server, api_key):
    return server.respond(
        401, json.dumps({"message": f"invalid key {api_key}"}), {"Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    "scenario", ["401-echo", "503-exhausted", "html-200-echo", "cut-exhausted", "redirect"]
)
def test_api_key_never_in_errors_repr_or_logs(server, hook, api_key, logs, scenario):
    responders = {
        "401-echo": _echo_key(server, api_key),
        "503-exhausted": server.api_error(503, "busy"),
        "html-200-echo": server.respond(
            200, f"<html>{api_key}</html>", {"Content-Type": "text/html"}
        ),
        "cut-exhausted": server.truncated(b"y" * 100, send=5),
        "redirect": server.respond(302, "", {"Location": f"https://x.example/?k={api_key}"}),
    }
    server.default = responders[scenario]

    with pytest.raises(SEIError) as info:
        hook.export_report(team_request(), Sinks())

    text = logs()
    assert "Exported" not in text
    if scenario in ("503-exhausted", "cut-exhausted"):
        assert text.count("retrying in") == 3  # the log lines were captured, and are clean
    assert_no_key(api_key, *chain(info.value), repr(hook), text)
    if scenario in ("401-echo", "html-200-echo", "redirect"):
        assert "***" in str(info.value)  # the server's echo of the key is redacted


def test_settings_repr_hides_key(hook, api_key):
    assert_no_key(api_key, repr(hook.settings), repr(hook), repr(hook.get_conn()))


# --- org trees ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        [{"id": 1, "name": "Root"}],
        {"teams": [{"id": 1, "name": "Root"}]},
        {"content": [{"id": 1, "name": "Root"}], "totalPages": 1},
        {"data": [{"id": 1, "name": "Root"}]},
    ],
)
def test_list_org_trees_shapes(server, hook, body):
    server.script(server.respond(200, json.dumps(body), {"Content-Type": "application/json"}))
    assert hook.list_org_trees() == [{"id": 1, "name": "Root"}]
    assert server.requests[0].method == "GET"
    assert server.requests[0].path == "/v2/org-trees"
    assert server.requests[0].headers["accept"] == "application/json"


def test_list_org_tree_teams_retries(server, hook):
    teams = [{"refId": 123, "name": "Payments"}]
    server.script(server.api_error(503, "busy"), server.respond(200, json.dumps({"teams": teams})))
    assert hook.list_org_tree_teams(42) == teams
    assert [r.path for r in server.requests] == ["/v2/org-trees/42/teams"] * 2


def test_list_org_trees_rejects_other_json(server, hook):
    server.script(server.respond(200, json.dumps({"count": 3})))
    with pytest.raises(SEIResponseError):
        hook.list_org_trees()


# --- test_connection ---------------------------------------------------------------------


def test_test_connection_success(server, hook):
    server.script(server.respond(200, "[]", {"Content-Type": "application/json"}))
    ok, message = hook.test_connection()
    assert ok
    assert server.url in message
    assert server.requests[0].path == "/v2/org-trees"


@pytest.mark.parametrize("status", [401, 403])
def test_test_connection_wrong_key(server, hook, status, api_key):
    server.default = server.api_error(status, "Invalid API key")
    ok, message = hook.test_connection()
    assert not ok
    assert "Authentication failed" in message
    assert "Invalid API key" in message
    assert len(server.requests) == 1
    assert_no_key(api_key, message)


def test_test_connection_unreachable(make_conn, closed_port):
    hook = SEIHook(make_conn(host=f"http://127.0.0.1:{closed_port}"))
    ok, message = hook.test_connection()
    assert not ok
    assert f"127.0.0.1:{closed_port}" in message
    assert "Authentication" not in message


def test_test_connection_stalled_host(server, make_conn):
    server.default = server.stall()
    ok, message = SEIHook(make_conn(host=server.url), timeout=0.2).test_connection()
    assert not ok
    assert f"{server.url.removeprefix('http://')} sent nothing for 0.2 s" in message
    assert len(server.requests) == 1


def test_test_connection_other_status_not_retried(server, hook):
    server.default = server.api_error(503, "maintenance")
    ok, message = hook.test_connection()
    assert (ok, len(server.requests)) == (False, 1)
    assert "503" in message
    assert "maintenance" in message


def test_test_connection_html_page(server, hook):
    server.default = server.respond(200, "<html></html>", {"Content-Type": "text/html"})
    ok, message = hook.test_connection()
    assert not ok
    assert "Base URL" in message


def test_test_connection_without_key(server, make_conn):
    ok, message = SEIHook(make_conn(host=server.url, password=None)).test_connection()
    assert not ok
    assert "API key" in message
    assert server.requests == []


# --- connection extras -------------------------------------------------------------------


def test_extras_from_strings(make_conn, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conn_id = make_conn(
        timeout="12.5",
        connect_timeout="3",
        max_retries="2.0",
        backoff_max="10",
        max_elapsed="120",
        verify=str(bundle),
        proxies='{"https": "http://user:pw@proxy.example:3128"}',
        project_identifier="",
        account_id="null",
    )
    hook = SEIHook(conn_id)
    settings = hook.settings

    assert hook.timeout == (3.0, 12.5)
    assert (hook.retry_policy.max_retries, hook.retry_policy.backoff_max) == (2, 10.0)
    assert hook.retry_policy.max_elapsed == 120.0
    assert settings.verify == str(bundle)
    assert settings.proxies == {"https": "http://user:pw@proxy.example:3128"}
    assert settings.project_identifier is None
    assert settings.account_id == "acct123"  # "null" from a form means unset
    session = hook.get_conn()
    assert session.verify == str(bundle)
    assert session.proxies["https"] == "http://user:pw@proxy.example:3128"


def test_extras_defaults(make_conn):
    hook = SEIHook(make_conn())
    assert hook.base_url == "https://app.harness.io/gateway/sei/api"
    assert hook.timeout == (10.0, 300.0)
    assert hook.retry_policy == RetryPolicy()
    assert hook.settings.verify is True
    assert hook.settings.auth_scheme == "x-api-key"


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("True", True), (False, False), ("0", False)]
)
def test_verify_booleans(make_conn, value, expected):
    assert SEIHook(make_conn(verify=value)).get_conn().verify is expected


def test_legacy_prefixed_extras(make_conn):
    hook = SEIHook(make_conn(**{"extra__harness_sei__auth_scheme": "apikey"}))
    assert hook.settings.auth_scheme == "apikey"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"auth_scheme": "bearer"}, "auth_scheme"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_retries": "-1"}, "max_retries"),
        ({"max_retries": "two"}, "max_retries"),
        ({"verify": "/no/such/ca.pem"}, "verify"),
        ({"proxies": "not json"}, "proxies"),
        ({"proxies": '["http://p"]'}, "proxies"),
        ({"max_elapsed": "-5"}, "max_elapsed"),
    ],
)
def test_invalid_extras_named(make_conn, extra, field):
    with pytest.raises(SEIInvalidRequestError) as info:
        SEIHook(make_conn(**extra)).get_conn()
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_hook_overrides(make_conn):
    policy = RetryPolicy(max_retries=0)
    hook = SEIHook(make_conn(timeout="30"), retry_policy=policy, timeout=2)
    assert hook.retry_policy is policy
    assert hook.timeout == (2.0, 2.0)


def test_env_var_json_connection_default_id(server, monkeypatch, api_key):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEI_DEFAULT",
        json.dumps(
            {
                "conn_type": "harness_sei",
                "host": server.url,
                "password": api_key,
                "extra": {"auth_scheme": "apikey", "max_retries": "0"},
            }
        ),
    )
    hook = SEIHook()
    assert hook.sei_conn_id == "sei_default"
    hook.export_report(team_request(), Sinks())
    assert server.requests[0].headers["authorization"] == f"ApiKey {api_key}"
    assert hook.retry_policy.max_retries == 0


def test_env_var_uri_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEI_URI",
        "harness-sei://:pat.acc9.tok.sec@sei.example.com:8443/gateway/sei/api?auth_scheme=apikey&max_retries=1",
    )
    hook = SEIHook("sei_uri")
    assert hook.base_url == "https://sei.example.com:8443/gateway/sei/api"
    assert hook.settings.auth_scheme == "apikey"
    assert hook.settings.account_id == "acc9"
    assert hook.retry_policy.max_retries == 1


# --- session -----------------------------------------------------------------------------


def test_one_session_shared_by_threads(server, make_conn, policy):
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, pool_maxsize=4)
    sessions, results = [], []

    def work() -> None:
        sessions.append(hook.get_conn())
        results.append(hook.export_report(team_request(), Sinks()).bytes)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(s) for s in sessions}) == 1
    assert results == [15] * 8
    adapter = hook.get_conn().get_adapter(server.url)
    assert adapter.max_retries.total == 0
    assert adapter._pool_maxsize == 4


def test_missing_key_raises_before_any_request(server, make_conn):
    hook = SEIHook(make_conn(host=server.url, password=""))
    with pytest.raises(SEIError, match="no API key"):
        hook.export_report(team_request(), Sinks())
    assert server.requests == []


def test_retry_policy_validation():
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff_initial=10, backoff_max=1)


def test_retry_policy_backoff_with_jitter():
    policy = RetryPolicy(backoff_initial=1, backoff_max=60, jitter=0.5)
    for n, base in [(1, 1), (2, 2), (3, 4), (7, 60)]:
        assert base <= policy.backoff(n) <= min(60, base * 1.5)
    assert policy.is_retryable(requests.ConnectTimeout())
    assert not policy.is_retryable(SEIAPIError(501, "not implemented"))
