"""``SEIExportTrigger`` against the emulator, in asyncio: one event per run (success, failed,
timeout, error with ``retryable``), the key never in an event, one client per run."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import time
from typing import Any

import httpx
import pytest
from sei_emulator import Fault, Faults, JobFault, V2Settings

from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.models import ExportJob, ExportJobRequest
from airflow_provider_sei.triggers.exports import SEIExportTrigger

KEY = "sei-emulator-key"


def create(export_type: str = "efficiency", **kwargs: Any) -> ExportJob:
    request = ExportJobRequest.build(
        export_type=export_type,
        date_start="2024-01-01",
        date_end="2024-03-31",
        granularity="monthly",
        team_id="123",
        **kwargs,
    )
    return SEIHook().create_export(request)


def trigger_for(job: ExportJob, *, max_wait: float = 10, **kwargs: Any) -> SEIExportTrigger:
    kwargs.setdefault("poll_interval", 0.02)
    return SEIExportTrigger(
        job=job.to_dict(),
        harness_sei_conn_id="harness_sei_default",
        end_time=time.time() + max_wait,
        **kwargs,
    )


def run(trigger: SEIExportTrigger) -> tuple[dict[str, Any], list[Any]]:
    """Run the trigger as the triggerer does; return the first event's payload, and all."""

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    events = asyncio.run(collect())
    assert len(events) == 1  # a trigger of a task yields exactly one event
    return events[0].payload, events


def polls(emulator: Any, job: ExportJob) -> int:
    return emulator.jobs[job.export_id].polls


# -- serialization --------------------------------------------------------------------------


def test_serialize_round_trip():
    job = ExportJob.from_dict(
        {"export_id": "exp_abc", "export_type": "sprint", "status": "QUEUED", "reused": True}
    )
    trigger = SEIExportTrigger(
        job=job.to_dict(),
        harness_sei_conn_id="sei_conn",
        poll_interval=2.5,
        end_time=1_900_000_000.0,
        requests_per_minute=120,
    )
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is SEIExportTrigger
    kwargs = json.loads(json.dumps(kwargs))  # what the triggerer's table stores
    again = cls(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert ExportJob.from_dict(again.job) == job
    assert (again.poll_interval, again.end_time, again.requests_per_minute) == (
        2.5,
        1_900_000_000.0,
        120,
    )
    assert KEY not in json.dumps(kwargs)  # only the conn id travels


# -- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export_type", "settings"),
    [
        ("efficiency", V2Settings(complete_after_polls=2)),
        ("productivity", V2Settings(complete_after_polls=2)),  # lower case, download{}
        ("sprint", V2Settings(complete_after_polls=1)),  # sized download{}, plural URL
        ("ba", V2Settings(complete_after_polls=0, status_case="lower")),
        ("ticket-data", V2Settings(complete_after_polls=1, status_shape="download")),
    ],
)
def test_success_event_carries_the_completed_job(export_type, settings, v2_conn, sei_emulator):
    sei_emulator.set_v2(settings)
    job = create(export_type)
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "success"
    assert payload["retryable"] is False
    done = ExportJob.from_dict(payload["job"])
    assert done.status == "COMPLETED"
    assert done.export_id == job.export_id
    assert done.download_url.endswith(f"/exports/{job.export_id}/download")
    if export_type == "sprint":
        assert "/sprints/" in done.download_url
        assert done.size_bytes == len(sei_emulator.jobs[job.export_id].payload.data)
    assert polls(sei_emulator, job) == (settings.complete_after_polls or 0) + 1
    assert json.loads(json.dumps(payload)) == payload


def test_a_reused_job_stays_reused(v2_conn, sei_emulator):
    first = create()
    second = create()
    assert second.reused
    assert second.export_id == first.export_id
    payload, _ = run(trigger_for(second))
    assert payload["job"]["reused"] is True


@pytest.mark.parametrize("field", ["error", "message"])
def test_failed_job_event_has_the_server_s_reason(field, v2_conn, sei_emulator):
    sei_emulator.set_faults(Faults(jobs=[JobFault.fail("Org tree too large", field=field)]))
    job = create()
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "failed"
    assert payload["job"]["status"] == "FAILED"
    assert payload["message"] == "Org tree too large"


def test_cancelled_job_event(v2_conn, sei_emulator):
    sei_emulator.set_faults(Faults(jobs=[JobFault.cancel()]))
    sei_emulator.set_v2(V2Settings(complete_after_polls=1, status_case="lower"))
    payload, _ = run(trigger_for(create("productivity")))
    assert payload["status"] == "failed"
    assert payload["job"]["status"] == "CANCELLED"


def test_timeout_event_after_end_time(v2_conn, sei_emulator):
    sei_emulator.set_faults(Faults(jobs=[JobFault.never_finish()]))
    job = create()
    started = time.monotonic()
    payload, _ = run(trigger_for(job, max_wait=0.4, poll_interval=0.05))
    elapsed = time.monotonic() - started
    assert payload["status"] == "timeout"
    assert "max_wait" in payload["message"]
    assert "PROCESSING" in payload["message"]
    assert 0.35 <= elapsed < 3.0
    assert payload["job"]["status"] == "PROCESSING"
    assert polls(sei_emulator, job) >= 3


def test_an_end_time_already_past_still_reports_the_job_once(v2_conn, sei_emulator):
    sei_emulator.set_faults(Faults(jobs=[JobFault.never_finish()]))
    job = create()
    payload, _ = run(trigger_for(job, max_wait=-5))
    assert payload["status"] == "timeout"
    assert polls(sei_emulator, job) == 1


def test_transient_errors_are_retried_by_the_hook_policy(v2_conn, sei_emulator):
    job = create()
    sei_emulator.set_faults(Faults(script=[Fault.status(503), Fault.reset()]))
    v2_conn.set(max_retries=2)
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "success"
    assert [r.fault for r in sei_emulator.requests[1:3]] == ["status:503", "reset"]


def test_error_event_is_retryable_when_a_task_retry_may_succeed(v2_conn, sei_emulator):
    job = create()
    v2_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.status(503, "Service Unavailable")]))
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "error"
    assert payload["retryable"] is True
    assert "503" in payload["message"]


def test_error_event_is_not_retryable_for_an_unknown_job(v2_conn, sei_emulator):
    job = ExportJob.from_dict({"export_id": "exp_missing", "export_type": "efficiency"})
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "error"
    assert payload["retryable"] is False
    assert "404" in payload["message"]
    assert "exp_missing" in payload["message"]


def test_error_event_names_the_missing_identifiers(sei_emulator, make_sei_conn):
    make_sei_conn(sei_emulator.base_url, KEY)
    job = ExportJob.from_dict({"export_id": "exp_1", "export_type": "efficiency"})
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "error"
    assert payload["retryable"] is False
    assert "project_identifier" in payload["message"]
    assert "org_identifier" in payload["message"]
    assert sei_emulator.requests == []


def test_error_event_for_a_missing_connection(sei_emulator, make_sei_conn):
    job = ExportJob.from_dict({"export_id": "exp_1", "export_type": "efficiency"})
    trigger = SEIExportTrigger(
        job=job.to_dict(), harness_sei_conn_id="nowhere", poll_interval=0.01, end_time=0
    )
    payload, _ = run(trigger)
    assert payload["status"] == "error"
    assert payload["retryable"] is False
    assert "nowhere" in payload["message"]


def test_the_legacy_connection_id_still_works(v2_conn, monkeypatch):
    job = create()
    legacy = os.environ.pop("AIRFLOW_CONN_HARNESS_SEI_DEFAULT")
    monkeypatch.setenv("AIRFLOW_CONN_SEI_DEFAULT", legacy)
    assert v2_conn.api_key == KEY
    with pytest.warns(DeprecationWarning, match="sei_default"):
        payload, _ = run(trigger_for(job))
    assert payload["status"] == "success"


# -- secrets --------------------------------------------------------------------------------


def test_the_key_never_reaches_a_failed_job_event(v2_conn, sei_emulator):
    sei_emulator.set_faults(Faults(jobs=[JobFault.fail(f"quota exceeded for {KEY}")]))
    payload, _ = run(trigger_for(create()))
    assert payload["status"] == "failed"
    assert "quota exceeded" in payload["message"]
    assert KEY not in json.dumps(payload)


def test_the_key_never_reaches_an_error_event(v2_conn, sei_emulator):
    job = create()
    v2_conn.set(max_retries=0)
    sei_emulator.set_faults(
        Faults(script=[Fault.status(400, f"Invalid header authorization: ApiKey {KEY}")])
    )
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "error"
    assert "400" in payload["message"]
    assert KEY not in json.dumps(payload)


# -- the event loop -------------------------------------------------------------------------


def test_one_client_per_run_built_off_the_loop_and_closed(v2_conn, sei_emulator, monkeypatch):
    built: list[tuple[httpx.AsyncClient, bool]] = []
    original = httpx.AsyncClient.__init__

    def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        built.append((self, on_loop))

    monkeypatch.setattr(httpx.AsyncClient, "__init__", spy)
    sei_emulator.set_v2(V2Settings(complete_after_polls=4))
    job = create()
    payload, _ = run(trigger_for(job))
    assert payload["status"] == "success"
    assert polls(sei_emulator, job) == 5
    assert len(built) == 1
    client, on_loop = built[0]
    assert on_loop is False  # loading the CA bundle never blocks the triggerer's loop
    assert client.is_closed


def poll_gaps(emulator: Any, job: ExportJob) -> list[float]:
    """Seconds between consecutive polls of ``job``, as the emulator received them."""
    times = sorted(
        r.received
        for r in emulator.requests
        if r.method == "GET" and r.path.rstrip("/").endswith(f"/{job.export_id}")
    )
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_polls_pay_the_requests_per_minute_budget(v2_conn, sei_emulator):
    sei_emulator.set_v2(V2Settings(complete_after_polls=3))
    job = create()
    started = time.monotonic()
    payload, _ = run(trigger_for(job, poll_interval=0.01, requests_per_minute=600))
    elapsed = time.monotonic() - started
    assert payload["status"] == "success"
    assert polls(sei_emulator, job) == 4
    # 600 a minute: one grant every 0.1 s, evenly spaced; 4 polls span at least 3 intervals.
    spacing = 60 / 600 * 0.95
    assert elapsed >= 3 * spacing
    # As the server saw them: the first poll also opens the connection, so it arrives late and
    # its gap to the next is short; the gaps after it are the budget's. The poll interval alone
    # (0.01 s) leaves the polls of an unlimited run closer together than one grant.
    limited = poll_gaps(sei_emulator, job)
    assert len(limited) == 3
    assert min(limited[1:]) >= spacing
    unlimited = create("sprint")
    run(trigger_for(unlimited, poll_interval=0.01))
    assert min(poll_gaps(sei_emulator, unlimited)) < spacing


# -- the worst server -----------------------------------------------------------------------

HOSTILE_KEY = "pat.acct123.tok456.s3cr3tV4lu3xyz"
STATUS = "/v2/insights/efficiency/exports/exp_h1"


@pytest.fixture
def hostile(make_sei_conn: Any, v2_extras: dict[str, Any]) -> Any:
    from hostile import HostileServer

    with HostileServer() as srv:
        make_sei_conn(srv.url, HOSTILE_KEY, **v2_extras, max_elapsed=1.5)
        yield srv


def hostile_job() -> ExportJob:
    return ExportJob.from_dict({"export_id": "exp_h1", "export_type": "efficiency"})


def test_a_poll_that_drips_its_headers_ends_at_max_elapsed(hostile):
    from hostile import response

    drip = response(200, {"Content-Type": "application/json"}, b"{}", drip_headers=(1, 0.2))
    hostile.route(STATUS, drip, drip)
    started = time.monotonic()
    payload, _ = run(trigger_for(hostile_job()))
    elapsed = time.monotonic() - started
    assert payload["status"] == "error"
    assert payload["retryable"] is True
    assert "max_elapsed" in payload["message"]
    assert 1.3 <= elapsed < 4


def test_a_poll_answered_with_html_is_an_error_no_retry_fixes(hostile):
    from hostile import response

    hostile.route(STATUS, response(200, {"Content-Type": "text/html"}, b"<html>sign in</html>"))
    payload, _ = run(trigger_for(hostile_job()))
    assert payload["status"] == "error"
    assert payload["retryable"] is False
    assert "did not answer JSON" in payload["message"]


def test_polls_send_the_v2_auth_and_identifiers(hostile):
    from hostile import json_response

    hostile.route(
        STATUS,
        json_response({"exportId": "exp_h1", "status": "processing"}),
        json_response({"exportId": "exp_h1", "status": "Completed", "downloadUrl": "/d"}),
    )
    payload, _ = run(trigger_for(hostile_job()))
    assert payload["status"] == "success"
    first, second = hostile.requests_to(STATUS)
    assert first.headers["authorization"] == f"ApiKey {HOSTILE_KEY}"
    assert first.query == {"projectIdentifier": "proj-sei", "orgIdentifier": "org-sei"}
    assert second.connection == first.connection  # one client: the connection is reused


def test_a_status_echoing_the_key_is_redacted(hostile):
    from hostile import json_response

    def echo(request: Any) -> Any:
        reason = f"denied: {request.headers['authorization']} / {HOSTILE_KEY}"
        return json_response({"exportId": "exp_h1", "status": "FAILED", "error": reason})

    hostile.route(STATUS, echo)
    payload, _ = run(trigger_for(hostile_job()))
    assert payload["status"] == "failed"
    assert payload["message"].startswith("denied: ")
    assert HOSTILE_KEY not in json.dumps(payload)
    assert "s3cr3tV4lu3xyz" not in json.dumps(payload)
