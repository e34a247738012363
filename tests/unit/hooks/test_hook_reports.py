"""``SEIHook.download_report`` (the legacy reports endpoint), org trees and ``test_connection``,
against a real HTTP server on 127.0.0.1 (the ``server`` fixture)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading

import pytest
from hostile import response

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIDestinationError,
    SEIError,
    SEIIncompleteReadError,
    SEIResponseError,
    SEITLSError,
)
from airflow_provider_sei.hooks.errors import AUTH_HINT, COLLECTION_HINT
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.sei import OutputOptions, SEIHook

from .conftest import SMALL_REPORT
from .support import (
    BIG,
    REPORTS,
    ROWS,
    Pipe,
    assert_no_key,
    chain,
    compress,
    compressed_prefix,
    contributor_request,
    http_encoding,
    row_boundary,
    team_request,
    temp_files,
)

FALLBACK = "sei-team-123-2024-01-01-2024-03-31.csv"
PREVIOUS = b"Collection Name,value\nthe previous good report,1\n"


@pytest.fixture
def folder(tmp_path):
    """A destination folder holding the previous run's good report."""
    (tmp_path / FALLBACK).write_bytes(PREVIOUS)
    return tmp_path


def published(folder) -> bytes:
    return (folder / FALLBACK).read_bytes()


# -- request shape -----------------------------------------------------------------------------


def test_the_request_headers_path_query_and_body(server, hook, api_key, tmp_path):
    server.script(server.csv(ROWS, filename="team_report.csv"))
    result = hook.download_report(team_request(), f"{tmp_path}/")

    (req,) = server.requests
    assert (req.method, req.path, req.query) == ("POST", REPORTS, {"format": "csv"})
    assert req.headers["x-api-key"] == api_key
    assert "authorization" not in req.headers
    assert req.headers["harness-account"] == "acct123"  # derived from pat.<account>.…
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "text/csv"
    assert req.headers["accept-encoding"] == "gzip, deflate"  # what Body decodes, nothing else
    assert req.headers["user-agent"].startswith("airflow-provider-sei/")
    assert req.json() == team_request().to_json()
    assert (tmp_path / "team_report.csv").read_bytes() == ROWS
    assert result.uri == f"file://{tmp_path}/team_report.csv"
    assert result.filename == "team_report.csv"
    assert (result.bytes, result.downloaded_bytes) == (len(ROWS), len(ROWS))
    assert (result.rows, result.columns) == (20_000, ["Collection Name", "value"])
    assert (result.attempts, result.content_type, result.written) == (1, "text/csv", True)


def test_contributor_body(server, hook, tmp_path):
    hook.download_report(contributor_request(), tmp_path / "c.csv")
    assert server.requests[0].json() == contributor_request().to_json()


def test_apikey_scheme_and_configured_account(server, make_conn, policy, api_key, tmp_path):
    conn_id = make_conn(host=server.url, auth_scheme="ApiKey", account_id="configured")
    SEIHook(conn_id, retry_policy=policy).download_report(team_request(), tmp_path / "r.csv")

    headers = server.requests[0].headers
    assert headers["authorization"] == f"ApiKey {api_key}"
    assert "x-api-key" not in headers
    assert headers["harness-account"] == "configured"


def test_no_account_header_for_a_plain_key(server, make_conn, policy, tmp_path):
    conn_id = make_conn(host=server.url, password="plain-key-without-account")
    SEIHook(conn_id, retry_policy=policy).download_report(team_request(), tmp_path / "r.csv")
    assert "harness-account" not in server.requests[0].headers
    assert server.requests[0].headers["x-api-key"] == "plain-key-without-account"


def test_scope_query_parameters(server, make_conn, policy, tmp_path):
    conn_id = make_conn(host=server.url, project_identifier="myproject", org_identifier="default")
    hook = SEIHook(conn_id, retry_policy=policy)
    hook.download_report(team_request(), tmp_path / "r.csv")
    server.script(server.respond(200, "[]", {"Content-Type": "application/json"}))
    hook.list_org_trees()

    expected = {"projectIdentifier": "myproject", "orgIdentifier": "default"}
    assert server.requests[0].query == {"format": "csv", **expected}
    assert server.requests[1].query == expected


def test_base_url_with_path_and_trailing_slash(server, make_conn, policy, tmp_path):
    hook = SEIHook(make_conn(host=f"{server.url}/gateway/sei/api/"), retry_policy=policy)
    assert hook.base_url == f"{server.url}/gateway/sei/api"
    hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.requests[0].path == "/gateway/sei/api" + REPORTS


# -- streaming and what is published -------------------------------------------------------------


def test_a_multi_megabyte_report_is_written_whole(server, hook, tmp_path):
    server.script(server.chunked([BIG[:1_000_000], BIG[1_000_000:]]))
    result = hook.download_report(team_request(), tmp_path / "big.csv")
    assert (tmp_path / "big.csv").read_bytes() == BIG
    assert (result.bytes, result.rows) == (len(BIG), 200_000)


@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw-deflate"])
def test_a_compressed_report_is_decoded_into_a_plain_file(server, hook, tmp_path, kind):
    wire = compress(ROWS, kind)
    headers = {"Content-Type": "text/csv", "Content-Encoding": http_encoding(kind)}
    server.script(response(200, headers, wire, framing="close"))
    result = hook.download_report(team_request(), tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_bytes() == ROWS
    assert (result.bytes, result.downloaded_bytes) == (len(ROWS), len(wire))


@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw-deflate"])
def test_a_compressed_report_cut_at_a_row_boundary_is_retried_never_published(
    server, hook, folder, kind
):
    cut = compressed_prefix(ROWS, row_boundary(ROWS, len(ROWS) // 2), kind)
    headers = {"Content-Type": "text/csv", "Content-Encoding": http_encoding(kind)}
    server.default = response(200, headers, cut, framing="close")
    with pytest.raises(SEIIncompleteReadError, match="stream has no end"):
        hook.download_report(team_request(), f"{folder}/")
    assert server.hits == 4  # retried: max_retries=3
    assert published(folder) == PREVIOUS
    assert temp_files(folder) == []


def test_a_cut_report_is_retried_and_the_retry_published(server, hook, folder, waits):
    server.script(server.truncated(ROWS, send=100_000), server.csv(ROWS, filename=None))
    result = hook.download_report(team_request(), f"{folder}/")
    assert (server.hits, result.attempts, waits) == (2, 2, [0.01])
    assert published(folder) == ROWS
    assert temp_files(folder) == []


def test_a_chunked_report_broken_mid_stream_is_retried(server, hook, tmp_path):
    server.script(server.chunked_cut(ROWS, send=100_000), server.chunked([ROWS]))
    assert hook.download_report(team_request(), tmp_path / "r.csv").attempts == 2
    assert (tmp_path / "r.csv").read_bytes() == ROWS


def test_a_cut_report_exhausted_raises_incomplete_read_and_keeps_the_previous(server, hook, folder):
    server.default = server.truncated(b"x" * 1000, send=10)
    with pytest.raises(SEIIncompleteReadError) as info:
        hook.download_report(team_request(), f"{folder}/")
    assert (info.value.expected, info.value.received) == (1000, 10)
    assert server.hits == 4
    assert published(folder) == PREVIOUS
    assert temp_files(folder) == []


def test_a_close_delimited_report_is_refused_at_once_and_never_published(server, hook, folder):
    server.default = response(200, {"Content-Type": "text/csv"}, ROWS, framing="close")
    with pytest.raises(SEIResponseError, match="neither a Content-Length nor chunked") as info:
        hook.download_report(team_request(), f"{folder}/")
    assert not isinstance(info.value, SEIIncompleteReadError)
    assert server.hits == 1  # no retry can prove a close-delimited body
    assert published(folder) == PREVIOUS
    assert temp_files(folder) == []


def test_a_content_length_that_cuts_a_row_fails_the_csv_check(server, hook, folder):
    short = row_boundary(ROWS, 50_000) + 4  # "team-0" of the next row
    server.default = response(200, {"Content-Type": "text/csv"}, ROWS, content_length=short)
    with pytest.raises(SEIResponseError, match="data row"):
        hook.download_report(team_request(), f"{folder}/")
    assert published(folder) == PREVIOUS


def test_a_file_object_destination_is_rewound_for_the_retry(server, hook):
    handle = io.BytesIO(b"kept:")
    handle.seek(0, io.SEEK_END)
    server.script(server.truncated(ROWS, send=100_000), server.csv(ROWS))
    result = hook.download_report(team_request(), handle)
    assert handle.getvalue() == b"kept:" + ROWS
    assert (result.attempts, result.uri) == (2, None)


def test_a_destination_that_cannot_seek_back_is_not_retried_into(server, hook, waits):
    """A retry would append a whole report to the partial one: the export fails instead."""
    pipe = Pipe()
    server.script(server.truncated(ROWS, send=100_000), server.csv(ROWS))
    with pytest.raises(SEIDestinationError, match="cannot seek back") as info:
        hook.download_report(team_request(), pipe)
    assert isinstance(info.value.__context__, SEIIncompleteReadError)  # what happened first
    assert (server.hits, waits) == (1, [])
    assert 0 < len(pipe.data) <= 100_000


@pytest.mark.parametrize(
    ("header", "used"),
    [
        ("attachment; filename=team_report.csv", "team_report.csv"),
        ("attachment; filename*=UTF-8''t%C3%A9am.csv", FALLBACK),  # not a plain report name
        ('attachment; filename="../../x.csv"', "x.csv"),  # the last component, plain
        ('attachment; filename="payload.exe"', FALLBACK),
    ],
)
def test_the_server_file_name_only_when_plain(server, hook, tmp_path, header, used):
    headers = {"Content-Type": "text/csv", "Content-Disposition": header}
    server.script(server.respond(200, SMALL_REPORT, headers))
    result = hook.download_report(team_request(), f"{tmp_path}/")
    assert sorted(p.name for p in tmp_path.iterdir()) == [used]
    assert result.filename == (None if used == FALLBACK else used)


def test_a_file_name_holding_the_key_is_never_used(server, hook, tmp_path, api_key):
    headers = {
        "Content-Type": "text/csv",
        "Content-Disposition": f"attachment; filename={api_key}.csv",
    }
    server.script(server.respond(200, SMALL_REPORT, headers))
    hook.download_report(team_request(), f"{tmp_path}/")
    assert [p.name for p in tmp_path.iterdir()] == [FALLBACK]


@pytest.mark.parametrize(
    "content_type",
    ["text/csv; charset=utf-8", "application/csv", "text/plain", "application/octet-stream"],
)
def test_csv_like_content_types_accepted(server, hook, tmp_path, content_type):
    server.script(server.csv(SMALL_REPORT, content_type=content_type))
    assert hook.download_report(team_request(), tmp_path / "r.csv").bytes == len(SMALL_REPORT)


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_an_empty_body_is_an_empty_report_whatever_its_type(server, hook, tmp_path, content_type):
    server.script(server.respond(200, b"", {"Content-Type": content_type}))
    result = hook.download_report(team_request(), tmp_path / "r.csv")
    assert (result.bytes, result.rows) == (0, 0)
    assert (tmp_path / "r.csv").read_bytes() == b""


def test_an_empty_report_is_not_written_when_asked(server, hook, folder):
    server.script(server.csv(b"Collection Name,value\n"))
    result = hook.download_report(
        team_request(), f"{folder}/", output=OutputOptions(write_empty=False)
    )
    assert (result.written, result.uri, result.rows) == (False, None, 0)
    assert published(folder) == PREVIOUS


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", "<html><body>Please log in</body></html>"),
        ("application/json", '{"status": "error", "message": "format not supported"}'),
    ],
)
def test_html_or_json_200_rejected_without_retry(server, hook, folder, content_type, body):
    server.script(server.respond(200, body, {"Content-Type": content_type}))
    with pytest.raises(SEIResponseError, match="Expected a CSV report") as info:
        hook.download_report(team_request(), f"{folder}/")
    assert body[:20] in str(info.value)
    assert server.hits == 1
    assert published(folder) == PREVIOUS


def test_overwrite_false_fails_before_any_request(server, hook, folder):
    with pytest.raises(SEIDestinationError, match="already exists"):
        hook.download_report(
            team_request(), folder / FALLBACK, output=OutputOptions(overwrite=False)
        )
    assert server.hits == 0


def test_a_missing_local_folder_that_cannot_be_created_fails_before_any_request(
    server, hook, tmp_path
):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SEIDestinationError):
        hook.download_report(team_request(), f"{tmp_path}/file/sub/")
    assert server.hits == 0


# -- retries -----------------------------------------------------------------------------------


def test_429_then_200(server, hook, waits, tmp_path):
    server.script(server.api_error(429, "slow down"))
    result = hook.download_report(team_request(), tmp_path / "r.csv")
    assert (server.hits, result.attempts, waits) == (2, 2, [0.01])


def test_503_twice_then_200_backs_off_exponentially(server, hook, waits, tmp_path):
    server.script(server.api_error(503, "busy"), server.api_error(503, "busy"))
    hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.hits == 3
    assert waits == [0.01, 0.02]


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_server_errors_retried(server, hook, tmp_path, status):
    server.script(server.respond(status, "oops"))
    assert hook.download_report(team_request(), tmp_path / "r.csv").attempts == 2


@pytest.mark.parametrize(("retry_after", "wait"), [("7", 7.0), ("0", 0.0), ("3600", 60.0)])
def test_retry_after_seconds_honoured_and_capped(server, hook, waits, tmp_path, retry_after, wait):
    server.script(server.api_error(429, "slow down", retry_after=retry_after))
    hook.download_report(team_request(), tmp_path / "r.csv")
    assert waits == [wait]


def test_retry_log_line(server, hook, logs, tmp_path):
    server.script(server.api_error(429, "slow down"))
    hook.download_report(team_request(), tmp_path / "r.csv")
    (line,) = [line for line in logs().splitlines() if "retrying" in line]
    assert "attempt 1/4" in line
    assert "HTTP 429" in line
    assert "retrying in 0.01 s" in line


def test_exhausted_retries_raise_status_and_message(server, hook, waits, tmp_path):
    server.default = server.api_error(503, "Service temporarily unavailable")
    with pytest.raises(SEIAPIError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert info.value.status_code == 503
    assert info.value.message == "Service temporarily unavailable"
    assert (server.hits, len(waits)) == (4, 3)


def test_text_error_body_quoted_as_excerpt(server, hook, tmp_path):
    server.script(
        server.respond(400, "bad   request\n" + "x" * 5000, {"Content-Type": "text/plain"})
    )
    with pytest.raises(SEIAPIError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert info.value.message.startswith("bad request xxx")
    assert len(info.value.message) < 400


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
def test_other_statuses_never_retried(server, hook, status, waits, tmp_path):
    server.default = server.api_error(status, f"nope {status}")
    with pytest.raises(SEIAPIError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert info.value.status_code == status
    assert info.value.message.startswith(f"nope {status}")
    assert (server.hits, waits) == (1, [])


def test_401_and_404_say_what_to_fix(server, hook, tmp_path):
    server.script(server.api_error(401, "Unauthorized"), server.api_error(404, "Not found"))
    with pytest.raises(SEIAPIError, match="auth_scheme"):
        hook.download_report(team_request(), tmp_path / "r.csv")
    with pytest.raises(SEIAPIError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert info.value.message == f"Not found -- {COLLECTION_HINT}"


def test_redirect_not_followed(server, hook, tmp_path):
    server.default = server.respond(302, "", {"Location": "https://elsewhere.example/login"})
    with pytest.raises(SEIAPIError, match=r"elsewhere\.example"):
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.hits == 1


def test_read_timeout_retried(server, make_conn, policy, tmp_path):
    server.script(server.stall())
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, timeout=0.3)
    assert hook.download_report(team_request(), tmp_path / "r.csv").attempts == 2
    assert server.hits == 2


def test_read_timeout_exhausted(server, make_conn, tmp_path):
    server.default = server.stall()
    policy = RetryPolicy(max_retries=1, backoff_initial=0.01, sleep=lambda s: None)
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, timeout=0.2)
    with pytest.raises(SEIConnectionError, match=r"127\.0\.0\.1:\d+ sent nothing for 0\.2 s"):
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.hits == 2


def test_connection_refused(make_conn, policy, closed_port, waits, api_key, logs, tmp_path):
    hook = SEIHook(make_conn(host=f"http://127.0.0.1:{closed_port}"), retry_policy=policy)
    with pytest.raises(SEIConnectionError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert f"127.0.0.1:{closed_port}" in str(info.value)
    assert len(waits) == 3
    text = logs()
    assert text.count("retrying in") == 3
    assert_no_key(api_key, *chain(info.value), text)


@pytest.fixture
def plain_http_port():
    """A plain-HTTP server that answers anything, a TLS ClientHello too, with a 400."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                accepted.append(1)
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
    listener.close()
    thread.join(2)


def test_tls_to_a_plain_http_server_fails_at_once_saying_https_was_assumed(
    plain_http_port, make_conn, policy, waits, tmp_path
):
    port, accepted = plain_http_port
    hook = SEIHook(make_conn(host=f"127.0.0.1:{port}"), retry_policy=policy)  # no scheme
    with pytest.raises(SEITLSError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert "https:// was assumed because the Base URL has no scheme" in str(info.value)
    assert f"write http://127.0.0.1:{port}" in str(info.value)
    assert (len(accepted), waits) == (1, [])  # no retry changes a wrong scheme


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    ["401-echo", "503-exhausted", "html-200-echo", "cut-exhausted", "redirect", "csv-header-echo"],
)
def test_api_key_never_in_errors_repr_or_logs(server, hook, api_key, logs, tmp_path, scenario):
    replies = {
        "401-echo": server.respond(
            401,
            json.dumps({"message": f"invalid key {api_key}"}),
            {"Content-Type": "application/json"},
        ),
        "503-exhausted": server.api_error(503, "busy"),
        "html-200-echo": server.respond(
            200, f"<html>{api_key}</html>", {"Content-Type": "text/html"}
        ),
        "cut-exhausted": server.truncated(b"y" * 100, send=5),
        "redirect": server.respond(302, "", {"Location": f"https://x.example/?k={api_key}"}),
        "csv-header-echo": server.csv(f"not,{api_key}\n1,2\n"),
    }
    server.default = replies[scenario]

    with pytest.raises(SEIError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")

    text = logs()
    assert "Exported" not in text
    if scenario in ("503-exhausted", "cut-exhausted"):
        assert text.count("retrying in") == 3  # the log lines were captured, and are clean
    assert_no_key(api_key, *chain(info.value), repr(hook), text)
    if scenario in ("401-echo", "html-200-echo", "redirect", "csv-header-echo"):
        assert "***" in str(info.value)  # the server's echo of the key is redacted
    assert list(tmp_path.iterdir()) == []


# -- org trees ---------------------------------------------------------------------------------


def test_list_org_trees(server, hook):
    server.script(server.respond(200, json.dumps([{"id": 1, "name": "Root"}]),
                                 {"Content-Type": "application/json"}))  # fmt: skip
    assert hook.list_org_trees() == [{"id": 1, "name": "Root"}]
    (req,) = server.requests
    assert (req.method, req.path, req.headers["accept"]) == (
        "GET",
        "/v2/org-trees",
        "application/json",
    )


@pytest.mark.parametrize(
    "body", [{"teams": [{"id": 1}]}, {"count": 3}, [{"name": "no id"}], "not json at all"]
)
def test_list_org_trees_rejects_anything_but_an_array_of_trees(server, hook, body):
    text = body if isinstance(body, str) else json.dumps(body)
    server.script(server.respond(200, text, {"Content-Type": "application/json"}))
    with pytest.raises(SEIResponseError):
        hook.list_org_trees()
    assert server.hits == 1


def test_list_org_tree_teams_retries(server, hook):
    teams = [{"refId": 123, "name": "Payments"}]
    server.script(server.api_error(503, "busy"), server.respond(200, json.dumps(teams)))
    assert hook.list_org_tree_teams(42) == teams
    assert [r.path for r in server.requests] == ["/v2/org-trees/42/teams"] * 2


def test_an_org_tree_id_is_one_path_segment(server, hook):
    server.script(server.respond(200, "[]"))
    hook.list_org_tree_teams("../../reports")
    assert server.requests[0].target.startswith("/v2/org-trees/..%2F..%2Freports/teams")


def test_a_json_answer_larger_than_the_cap_is_refused(server, hook, monkeypatch):
    from airflow_provider_sei.hooks import sei

    monkeypatch.setattr(sei, "MAX_JSON_BYTES", 1000)
    server.script(server.respond(200, json.dumps([{"id": i} for i in range(500)])))
    with pytest.raises(SEIResponseError, match="more than 1000 bytes"):
        hook.list_org_trees()


# -- test_connection ---------------------------------------------------------------------------


def test_test_connection_success(server, hook):
    server.script(server.respond(200, "[]", {"Content-Type": "application/json"}))
    ok, message = hook.test_connection()
    assert ok
    assert server.url in message
    assert server.requests[0].path == "/v2/org-trees"


@pytest.mark.parametrize("status", [401, 403])
def test_test_connection_wrong_key(server, hook, status, api_key):
    server.default = server.api_error(status, f"Invalid API key {api_key}")
    ok, message = hook.test_connection()
    assert not ok
    assert AUTH_HINT in message
    assert "Invalid API key ***" in message
    assert server.hits == 1
    assert_no_key(api_key, message)


def test_test_connection_unreachable(make_conn, closed_port):
    hook = SEIHook(make_conn(host=f"http://127.0.0.1:{closed_port}"))
    ok, message = hook.test_connection()
    assert not ok
    assert f"127.0.0.1:{closed_port}" in message
    assert "auth" not in message.lower()


def test_test_connection_stalled_host(server, make_conn):
    server.default = server.stall()
    ok, message = SEIHook(make_conn(host=server.url), timeout=0.2).test_connection()
    assert not ok
    assert f"{server.url.removeprefix('http://')} sent nothing for 0.2 s" in message
    assert server.hits == 1


def test_test_connection_other_status_not_retried(server, hook):
    server.default = server.api_error(503, "maintenance")
    ok, message = hook.test_connection()
    assert (ok, server.hits) == (False, 1)
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


def test_test_connection_with_a_bad_key_character(server, make_conn, api_key):
    ok, message = SEIHook(make_conn(host=server.url, password=api_key + "\u5bc6")).test_connection()
    assert not ok
    assert "password (API key)" in message
    assert_no_key(api_key, message)
    assert server.requests == []


# -- one session, many threads -----------------------------------------------------------------


def test_one_session_shared_by_threads(server, make_conn, policy, tmp_path):
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, pool_maxsize=4)
    sessions, results = [], []

    def work(n: int) -> None:
        sessions.append(hook.get_conn())
        results.append(hook.download_report(team_request(), tmp_path / f"{n}.csv").bytes)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(s) for s in sessions}) == 1
    assert results == [len(SMALL_REPORT)] * 8
    adapter = hook.get_conn().get_adapter(server.url)
    assert adapter.max_retries.total == 0
    assert adapter._pool_maxsize == 4
