"""The V2 export jobs: create, status (sync and async), wait, download, list."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest
from hostile import HostileServer, json_error, json_response, response

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIExportJobError,
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
    SEITimeoutError,
)
from airflow_provider_sei.hooks.errors import EXPORT_HINT
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.sei import OutputOptions, SEIHook
from airflow_provider_sei.metrics import ExportType
from airflow_provider_sei.models import ExportJob, ExportJobRequest

from .support import ROWS, assert_no_key, chain, compressed_prefix, row_boundary, temp_files

EXPORTS = "/v2/insights/efficiency/exports"
STATUS = f"{EXPORTS}/exp_1"
DOWNLOAD = f"{STATUS}/download"
SCOPE = {"projectIdentifier": "proj", "orgIdentifier": "org"}


def export_request() -> ExportJobRequest:
    return ExportJobRequest.build(
        export_type="efficiency",
        date_start="2024-01-01",
        date_end="2024-12-31",
        granularity="monthly",
        team_id="456",
    )


def job(**changes: object) -> ExportJob:
    values = {"export_id": "exp_1", "export_type": ExportType.EFFICIENCY, **changes}
    return ExportJob(**values)  # type: ignore[arg-type]


@pytest.fixture
def v2(server, make_conn, policy):
    """A hook on ``server`` with the V2 identifiers; ``v2(**extras)`` for other extras."""

    def make(**extras: object) -> SEIHook:
        extras = {"project_identifier": "proj", "org_identifier": "org", **extras}
        return SEIHook(make_conn(host=server.url, **extras), retry_policy=policy, timeout=5)

    return make


# -- create ------------------------------------------------------------------------------------


def test_create_202_is_a_new_job_sent_as_the_pages_say(server, v2, api_key):
    server.route(EXPORTS, json_response({"exportId": "exp_1", "status": "QUEUED"}, status=202))
    created = v2().create_export(export_request())

    assert (created.export_id, created.status, created.reused) == ("exp_1", "QUEUED", False)
    (req,) = server.requests
    assert (req.method, req.path, req.query) == ("POST", EXPORTS, SCOPE)
    assert req.headers["authorization"] == f"ApiKey {api_key}"  # V2's documented scheme
    assert "x-api-key" not in req.headers
    assert req.headers["harness-account"] == "acct123"
    assert req.json() == export_request().to_json(org_identifier="org", project_identifier="proj")
    assert req.json()["scope"] == {
        "teamId": "456",
        "orgIdentifier": "org",
        "projectIdentifier": "proj",
    }


def test_create_200_is_an_identical_job_reused(server, v2):
    answer = {"exportId": "exp_1", "message": "Using existing export with identical parameters"}
    server.route(EXPORTS, json_response(answer, status=200))
    created = v2().create_export(export_request())
    assert (created.export_id, created.reused, created.status) == ("exp_1", True, None)


def test_create_without_an_export_id_is_an_unexpected_answer(server, v2):
    server.route(EXPORTS, json_response({"status": "QUEUED"}, status=202))
    with pytest.raises(SEIResponseError, match="without an exportId"):
        v2().create_export(export_request())


def test_create_400_names_what_to_check_and_is_not_retried(server, v2, waits):
    server.route(EXPORTS, json_error(400, "orgIdentifier is invalid"))
    with pytest.raises(SEIAPIError) as info:
        v2().create_export(export_request())
    assert info.value.message == f"orgIdentifier is invalid -- {EXPORT_HINT}"
    assert (server.hits, waits) == (1, [])


@pytest.mark.parametrize("scheme", ["x-api-key", "apikey"])
def test_an_explicit_auth_scheme_applies_to_v2_and_legacy_alike(
    server, v2, api_key, scheme, tmp_path
):
    from .support import team_request

    hook = v2(auth_scheme=scheme)
    server.route(EXPORTS, json_response({"exportId": "exp_1"}, status=202))
    hook.create_export(export_request())
    hook.download_report(team_request(), tmp_path / "r.csv")
    for req in server.requests:
        if scheme == "apikey":
            assert req.headers["authorization"] == f"ApiKey {api_key}"
            assert "x-api-key" not in req.headers
        else:
            assert req.headers["x-api-key"] == api_key
            assert "authorization" not in req.headers


# -- identifiers are required before any request -----------------------------------------------


@pytest.mark.parametrize(
    ("extras", "named"),
    [
        (["project_identifier"], "project_identifier"),
        (["org_identifier"], "org_identifier"),
        (["project_identifier", "org_identifier"], "project_identifier and org_identifier"),
    ],
)
@pytest.mark.parametrize("call", ["create", "get", "wait", "download", "list", "aget"])
def test_v2_identifiers_are_required_before_any_request(server, v2, tmp_path, extras, named, call):
    hook = v2(**{key: "" for key in extras})  # an empty extra is an unset one
    calls = {
        "create": lambda: hook.create_export(export_request()),
        "get": lambda: hook.get_export(job()),
        "wait": lambda: hook.wait_for_export(job(), sleep=lambda s: False),
        "download": lambda: hook.download_export(job(download_url="/dl"), tmp_path / "r.csv"),
        "list": lambda: hook.list_exports("efficiency"),
        "aget": lambda: asyncio.run(hook.aget_export(job())),
    }
    with pytest.raises(SEIInvalidRequestError) as info:
        calls[call]()
    assert info.value.field == named
    assert "extras" in str(info.value)
    assert server.hits == 0
    assert list(tmp_path.iterdir()) == []


# -- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "Processing", "COMPLETED", "failed", "cancelled"])
def test_statuses_are_read_in_any_case(server, v2, status):
    server.route(STATUS, json_response({"exportId": "exp_1", "status": status}))
    polled = v2().get_export(job(reused=True))
    assert polled.status == status.upper()
    assert polled.reused  # what the create answer said is kept
    (req,) = server.requests
    assert (req.method, req.query) == ("GET", SCOPE)


def test_the_flat_status_shape(server, v2):
    answer = {
        "exportId": "exp_1",
        "status": "COMPLETED",
        "createdAt": "2025-05-13T10:00:00Z",
        "completedAt": "2025-05-13T10:05:00Z",
        "downloadUrl": f"{DOWNLOAD}",
    }
    server.route(STATUS, json_response(answer))
    polled = v2().get_export(job())
    assert (polled.status, polled.download_url, polled.finished) == ("COMPLETED", DOWNLOAD, True)
    assert polled.completed_at == "2025-05-13T10:05:00Z"


def test_the_nested_status_shape(server, v2):
    answer = {
        "exportId": "exp_1",
        "status": "completed",
        "download": {
            "url": "/v2/insights/sprints/exports/exp_1/download",
            "filename": "sprint-2024.csv.gz",
            "contentType": "application/gzip",
            "sizeBytes": 245672,
            "compression": "gzip",
        },
    }
    server.route(STATUS, json_response(answer))
    polled = v2().get_export(job())
    assert polled.download_url == "/v2/insights/sprints/exports/exp_1/download"
    assert (polled.filename, polled.size_bytes, polled.compression) == (
        "sprint-2024.csv.gz",
        245672,
        "gzip",
    )


def test_an_export_id_is_one_path_segment(server, v2):
    server.default = json_response({"exportId": "../x", "status": "QUEUED"})
    v2().get_export(job(export_id="../x"))
    assert server.requests[0].target.startswith(f"{EXPORTS}/..%2Fx?")


def test_a_status_echoing_the_key_is_redacted(server, v2, api_key):
    answer = {"exportId": "exp_1", "status": "FAILED", "message": f"bad key {api_key}"}
    server.route(STATUS, json_response(answer))
    polled = v2().get_export(job())
    assert polled.message == "bad key ***"


def test_polls_retry_like_every_call(server, v2, waits):
    server.route(
        STATUS, json_error(503, "busy"), json_response({"exportId": "exp_1", "status": "QUEUED"})
    )
    assert v2().get_export(job()).status == "QUEUED"
    assert (server.hits, waits) == (2, [0.01])


# -- waiting -----------------------------------------------------------------------------------


def test_wait_polls_until_completed(server, v2):
    for status in ("QUEUED", "PROCESSING", "COMPLETED"):
        server.route(STATUS, json_response({"exportId": "exp_1", "status": status}))
    slept: list[float] = []
    done = v2().wait_for_export(job(), poll_interval=7, sleep=lambda s: slept.append(s) or False)
    assert done.status == "COMPLETED"
    assert slept == [7, 7]
    assert server.hits == 3


@pytest.mark.parametrize("status", ["FAILED", "cancelled"])
def test_wait_raises_for_a_failed_job_with_its_reason_redacted(server, v2, api_key, status):
    answer = {"exportId": "exp_1", "status": status, "message": f"quota for {api_key}"}
    server.route(STATUS, json_response(answer))
    with pytest.raises(SEIExportJobError) as info:
        v2().wait_for_export(job(), sleep=lambda s: False)
    assert (info.value.export_id, info.value.status) == ("exp_1", status.upper())
    assert info.value.message == "quota for ***"
    assert_no_key(api_key, *chain(info.value))


def test_wait_gives_up_after_max_wait(server, v2):
    server.default = json_response({"exportId": "exp_1", "status": "PROCESSING"})
    started = time.monotonic() - 100  # the job was created 100 s ago
    with pytest.raises(SEITimeoutError, match="max_wait=60"):
        v2().wait_for_export(job(), max_wait=60, started=started, sleep=lambda s: False)
    assert server.hits == 1


def test_wait_stops_when_cancelled(server, v2):
    server.default = json_response({"exportId": "exp_1", "status": "QUEUED"})
    hook = v2()
    hook.cancel.set()
    with pytest.raises(SEITimeoutError, match="Stopped waiting"):
        hook.wait_for_export(job(), poll_interval=600)
    assert server.hits == 1


def test_polls_pay_the_rate_limiter(server, make_conn, policy):
    clock = {"now": 0.0}

    def sleep(seconds: float, cancel: object) -> bool:
        clock["now"] += seconds
        return False

    limiter = RateLimiter(60, slack=0, clock=lambda: clock["now"], sleep=sleep)
    conn_id = make_conn(host=server.url, project_identifier="proj", org_identifier="org")
    hook = SEIHook(conn_id, retry_policy=policy, rate_limiter=limiter)
    for status in ("QUEUED", "PROCESSING", "COMPLETED"):
        server.route(STATUS, json_response({"exportId": "exp_1", "status": status}))
    hook.wait_for_export(job(), poll_interval=0.001, sleep=lambda s: False)
    assert server.hits == 3
    assert clock["now"] == pytest.approx(2.0)  # three polls, one a second: two waits


# -- the async status (the trigger's) ----------------------------------------------------------


def test_aget_export_reads_the_same_answer(server, v2, api_key):
    answer = {"exportId": "exp_1", "status": "completed", "download": {"url": DOWNLOAD}}
    server.route(STATUS, json_response(answer))
    polled = asyncio.run(v2().aget_export(job(reused=True)))
    assert (polled.status, polled.download_url, polled.reused) == ("COMPLETED", DOWNLOAD, True)
    (req,) = server.requests
    assert req.query == SCOPE
    assert req.headers["authorization"] == f"ApiKey {api_key}"
    assert req.headers["harness-account"] == "acct123"


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The seconds ``asyncio.sleep`` was asked to wait (it yields to the loop, no more)."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return waits


def test_aget_export_retries_like_the_sync_call(server, v2, slept):
    server.route(STATUS, json_error(429, "slow"), json_error(503, "busy"),
                 json_response({"exportId": "exp_1", "status": "QUEUED"}))  # fmt: skip
    assert asyncio.run(v2().aget_export(job())).status == "QUEUED"
    assert server.hits == 3
    assert slept == [0.01, 0.02]


def test_aget_export_tells_the_rate_limiter_about_a_429(server, v2, slept):
    server.route(STATUS, json_error(429, "slow"),
                 json_response({"exportId": "exp_1", "status": "QUEUED"}))  # fmt: skip
    hook = v2()
    hook.rate_limiter = RateLimiter(600)
    assert asyncio.run(hook.aget_export(job())).status == "QUEUED"
    assert hook.rate_limiter.throttled == 1  # the other polls slow down, as the sync ones do
    assert hook.rate_limiter.rate < 600


def test_aget_export_does_not_retry_a_401_and_redacts_its_echo(server, v2, api_key):
    server.default = json_error(401, f"key {api_key} revoked")
    with pytest.raises(SEIAPIError) as info:
        asyncio.run(v2().aget_export(job()))
    assert info.value.status_code == 401
    assert "key *** revoked" in info.value.message
    assert "auth_scheme" in info.value.message
    assert_no_key(api_key, *chain(info.value))
    assert server.hits == 1


def test_aget_export_is_bounded_by_max_elapsed_headers_included(server, make_conn):
    policy = RetryPolicy(max_retries=3, backoff_initial=0.01, max_elapsed=1.5)
    conn_id = make_conn(host=server.url, project_identifier="proj", org_identifier="org")
    hook = SEIHook(conn_id, retry_policy=policy, timeout=1.0)
    server.default = json_response({"exportId": "exp_1", "status": "QUEUED"}, drip_headers=(1, 0.2))
    started = time.monotonic()
    with pytest.raises(SEITimeoutError, match=r"max_elapsed=1\.5"):
        asyncio.run(hook.aget_export(job()))
    assert 1.5 <= time.monotonic() - started < 2.5
    assert server.hits == 1


def test_aget_export_unreachable(make_conn, closed_port, policy):
    conn_id = make_conn(
        host=f"http://127.0.0.1:{closed_port}", project_identifier="p", org_identifier="o"
    )
    with pytest.raises(SEIConnectionError, match=f"127.0.0.1:{closed_port}"):
        asyncio.run(SEIHook(conn_id, retry_policy=policy).aget_export(job()))


def test_aget_export_pays_the_rate_limiter(server, make_conn, policy, slept):
    """Each async poll takes the limiter's next slot and waits for it with asyncio."""
    limiter = RateLimiter(60, slack=0, clock=lambda: 0.0)  # a clock that stands still
    conn_id = make_conn(host=server.url, project_identifier="proj", org_identifier="org")
    hook = SEIHook(conn_id, retry_policy=policy, rate_limiter=limiter)
    server.default = json_response({"exportId": "exp_1", "status": "QUEUED"})

    async def three() -> None:
        for _ in range(3):
            await hook.aget_export(job())

    asyncio.run(three())
    assert server.hits == 3
    assert [s for s in slept if s] == [1.0, 2.0]  # slots at 0, 1 and 2 s
    assert limiter.waited == 3.0


# -- download ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DOWNLOAD, DOWNLOAD.lstrip("/")], ids=["absolute path", "relative"])
def test_download_follows_a_relative_url_with_the_key(server, v2, api_key, tmp_path, url):
    server.route(DOWNLOAD, response(200, {"Content-Type": "text/csv"}, ROWS))
    result = v2().download_export(job(download_url=url), tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_bytes() == ROWS
    (req,) = server.requests
    assert (req.path, req.query) == (DOWNLOAD, SCOPE)
    assert req.headers["authorization"] == f"ApiKey {api_key}"
    assert (result.rows, result.attempts) == (20_000, 1)


def test_download_without_a_url_uses_the_documented_path(server, v2, tmp_path):
    server.route(DOWNLOAD, response(200, {"Content-Type": "text/csv"}, ROWS))
    v2().download_export(job(), tmp_path / "r.csv")
    assert server.requests[0].path == DOWNLOAD


def test_download_from_another_host_goes_without_the_key(server, v2, api_key, tmp_path):
    with HostileServer() as storage:
        storage.route("/bucket/exp_1.csv", response(200, {"Content-Type": "text/csv"}, ROWS))
        url = f"{storage.url}/bucket/exp_1.csv?X-Amz-Signature=abc"
        v2().download_export(job(download_url=url), tmp_path / "r.csv")
        (req,) = storage.requests
    assert (tmp_path / "r.csv").read_bytes() == ROWS
    assert server.hits == 0
    for name, value in req.headers.items():
        assert api_key not in value, name
    assert "authorization" not in req.headers
    assert "x-api-key" not in req.headers
    assert "harness-account" not in req.headers
    assert req.query == {"X-Amz-Signature": "abc"}  # a signed URL left as signed


def test_download_from_the_same_origin_by_absolute_url_gets_the_key(server, v2, api_key, tmp_path):
    server.route(DOWNLOAD, response(200, {"Content-Type": "text/csv"}, ROWS))
    v2().download_export(job(download_url=server.url + DOWNLOAD), tmp_path / "r.csv")
    assert server.requests[0].headers["authorization"] == f"ApiKey {api_key}"


def test_a_download_redirect_is_not_followed(server, v2, api_key, tmp_path):
    server.route(DOWNLOAD, response(302, {"Location": "https://elsewhere.example/x.csv"}))
    with pytest.raises(SEIAPIError, match="elsewhere"):
        v2().download_export(job(), tmp_path / "r.csv")
    assert server.hits == 1


def test_a_gz_file_download_is_decoded_into_a_plain_csv(server, v2, tmp_path):
    wire = gzip.compress(ROWS, mtime=0)
    server.route(DOWNLOAD, response(200, {"Content-Type": "application/gzip"}, wire))
    result = v2().download_export(job(), tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_bytes() == ROWS
    assert (result.downloaded_bytes, result.bytes) == (len(wire), len(ROWS))


def test_a_gz_file_download_is_kept_as_downloaded_for_csv_gz(server, v2, tmp_path):
    wire = gzip.compress(ROWS, mtime=0)
    server.route(DOWNLOAD, response(200, {"Content-Type": "application/x-gzip"}, wire))
    result = v2().download_export(
        job(), tmp_path / "r.csv.gz", output=OutputOptions(output_format="csv.gz")
    )
    assert (tmp_path / "r.csv.gz").read_bytes() == wire
    assert (result.rows, result.output_format) == (20_000, "csv.gz")


def test_a_cut_gz_file_download_is_retried_and_never_published(server, v2, tmp_path, waits):
    cut = compressed_prefix(ROWS, row_boundary(ROWS, 100_000))
    target = tmp_path / "r.csv"
    target.write_bytes(b"previous\n")
    server.default = response(200, {"Content-Type": "application/gzip"}, cut)
    with pytest.raises(SEIIncompleteReadError, match="gzip stream has no end"):
        v2().download_export(job(), target)
    assert server.hits == 4
    assert target.read_bytes() == b"previous\n"
    assert temp_files(tmp_path) == []


def test_a_download_takes_the_server_file_name_only_when_plain(server, v2, tmp_path):
    server.route(DOWNLOAD, response(200, {"Content-Type": "text/csv"}, ROWS), response(
        200, {"Content-Type": "text/csv"}, ROWS))  # fmt: skip
    hook = v2()
    hook.download_export(job(filename="developer-insights-2024.csv"), f"{tmp_path}/a/")
    hook.download_export(job(filename="authorized_keys"), f"{tmp_path}/b/")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["developer-insights-2024.csv"]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["sei-efficiency-exp_1.csv"]


# -- list --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["array", "exports", "items"])
def test_list_exports_reads_every_shape(server, v2, shape):
    items = [{"exportId": "a", "status": "COMPLETED"}, {"exportId": "b", "status": "queued"}, {}]
    body = items if shape == "array" else {shape: items, "page": 0}
    server.route(EXPORTS, json_response(body))
    jobs = v2().list_exports("efficiency", status="COMPLETED", team_id=456, limit=500, page=-1)
    assert [(j.export_id, j.status) for j in jobs] == [("a", "COMPLETED"), ("b", "QUEUED")]
    (req,) = server.requests
    assert req.query == {
        **SCOPE,
        "limit": "100",
        "page": "0",
        "status": "COMPLETED",
        "teamId": "456",
    }


def test_list_exports_rejects_another_shape(server, v2):
    server.route(EXPORTS, json_response({"total": 3}))
    with pytest.raises(SEIResponseError, match="a list of export jobs"):
        v2().list_exports("efficiency")


def test_list_exports_names_a_wrong_type_before_any_request(server, v2):
    with pytest.raises(SEIInvalidRequestError):
        v2().list_exports("velocity")
    assert server.hits == 0


def test_json_answers_are_checked(server, v2):
    server.route(STATUS, response(200, {"Content-Type": "application/json"}, b"<html>oops</html>"))
    with pytest.raises(SEIResponseError, match="did not answer JSON: <html>oops"):
        v2().get_export(job())
