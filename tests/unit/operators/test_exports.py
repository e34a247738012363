"""``SEIExportOperator`` rendered and executed directly against the emulator (no DB): its
parameters, the refusals before any request, the destination checked before the job is
created, deferral and resumption, ``on_kill``, the request budget.

Real DAG runs of every type, mode, variant and fault: ``tests/integration/test_export_runs.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import DAG
from sei_emulator import Faults as EmulatorFaults
from sei_emulator import JobFault, V2Settings

from airflow_provider_sei.exceptions import SEIError, SEIInvalidRequestError, SEITimeoutError
from airflow_provider_sei.models import ExportJob
from airflow_provider_sei.operators._base import SEIExportBaseOperator
from airflow_provider_sei.operators.exports import SEIExportOperator
from airflow_provider_sei.triggers.exports import SEIExportTrigger

KEY = "sei-emulator-key"
QUARTER = (pendulum.datetime(2024, 1, 1, tz="UTC"), pendulum.datetime(2024, 4, 1, tz="UTC"))


@pytest.fixture
def v2_conn(v2_conn, sei_emulator):
    """The shared ``v2_conn``; the emulator's jobs complete on their first poll."""
    sei_emulator.set_v2(V2Settings(complete_after_polls=1))
    return v2_conn


def export_op(tmp_path: Path, **kwargs: Any) -> SEIExportOperator:
    kwargs.setdefault("export_type", "efficiency")
    kwargs.setdefault("destination", f"file://{tmp_path}/export.csv")
    kwargs.setdefault("poll_interval", 0.02)
    if "team_id" not in kwargs and "org_tree_name" not in kwargs:
        kwargs["team_id"] = "123"
    return SEIExportOperator(task_id=kwargs.pop("task_id", "export"), **kwargs)


def build_context(op: SEIExportOperator, **extra: Any) -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    dag = DAG(f"dag_{op.task_id}", schedule=None, start_date=QUARTER[0])
    dag.add_task(op)
    return {
        "dag": dag,
        "task": op,
        "params": {},
        "run_id": "manual__test",
        "dag_run": SimpleNamespace(run_after=pendulum.now("UTC")),
        "outlet_events": OutletEventAccessors(),
        "data_interval_start": QUARTER[0],
        "data_interval_end": QUARTER[1],
        "logical_date": QUARTER[0],
        "ds": QUARTER[0].to_date_string(),
        **extra,
    }


def execute(op: SEIExportOperator, **extra: Any) -> dict[str, Any]:
    context = build_context(op, **extra)
    op.render_template_fields(context)
    return op.execute(context)


def created_bodies(emulator: Any) -> list[dict[str, Any]]:
    return [r.body for r in emulator.requests if r.method == "POST"]


# -- parameters -----------------------------------------------------------------------------


def test_template_fields():
    own = set(SEIExportOperator.template_fields) - set(SEIExportBaseOperator.common_template_fields)
    assert own == {
        "team_id",
        "org_tree_name",
        "granularity",
        "metric_groups",
        "metrics",
        "aggregation",
        "metric_level",
        "issue_statuses",
        "options",
        "compression",
        "poll_interval",
        "max_wait",
        "requests_per_minute",
    }
    assert {"destination", "date_start", "date_end", "overwrite"} <= set(
        SEIExportOperator.template_fields
    )
    assert "export_type" not in SEIExportOperator.template_fields


def test_defaults(tmp_path):
    op = SEIExportOperator(task_id="t", export_type="ba", destination="/tmp/x.csv")
    assert op.export_type == "business_alignment"
    assert (op.granularity, op.compression, op.poll_interval, op.max_wait) == (
        "weekly",
        "none",
        30,
        3600,
    )
    assert (op.team_id, op.org_tree_name, op.requests_per_minute) == (None, None, None)
    assert op.harness_sei_conn_id == "harness_sei_default"
    assert op.deferrable is False  # [operators] default_deferrable is unset


def test_importable_from_the_operators_package():
    from airflow_provider_sei.operators import SEIExportOperator as exported

    assert exported is SEIExportOperator


def test_parameters_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        SEIExportOperator("t", "efficiency", f"file://{tmp_path}/x.csv")  # type: ignore[misc]


def test_init_only_stores_arguments(tmp_path):
    # Nothing is looked up while the DAG file is parsed: no connection, no store.
    op = export_op(
        tmp_path,
        harness_sei_conn_id="does_not_exist",
        dest_conn_id="nor_this",
        team_id="{{ params.team }}",
        granularity="{{ params.g }}",
    )
    assert op.team_id == "{{ params.team }}"
    assert "hook" not in op.__dict__


@pytest.mark.parametrize("value", ["sprints", "teams", "", "{{ params.type }}"])
def test_export_type_is_checked_when_the_dag_is_parsed(value, tmp_path):
    with pytest.raises(SEIInvalidRequestError) as info:
        export_op(tmp_path, export_type=value)
    assert info.value.field == "export_type"
    assert "ticket-data" in info.value.allowed


@pytest.mark.parametrize(
    ("given", "name"), [("BA", "business_alignment"), ("ticket-data", "time_in_status")]
)
def test_the_api_s_segments_are_accepted(given, name, tmp_path):
    assert export_op(tmp_path, export_type=given).export_type == name


def test_every_parameter_reaches_the_request(v2_conn, sei_emulator, tmp_path):
    op = export_op(
        tmp_path,
        export_type="productivity",
        team_id="{{ params.team }}",
        org_tree_name="{{ params.tree }}",
        granularity="{{ params.g }}",
        metric_groups=["{{ params.group }}", "volume"],
        metrics="{{ ['CODING_DAYS'] }}",
        aggregation="{{ 'P90' }}",
        metric_level="{{ 'Developer' }}",
        options={"futureOption": "{{ params.g }}"},
        compression="{{ 'gzip' }}",
        poll_interval="{{ 0.01 }}",
        max_wait="{{ 30 }}",
        destination=f"file://{tmp_path}/{{{{ sei.export_type }}}}/{{{{ sei.team_id }}}}-"
        "{{ sei.granularity }}-{{ sei.date_start }}_{{ sei.date_end }}{{ sei.suffix }}",
    )
    params = {
        "team": "456",
        "tree": sei_emulator.org.root.name,
        "g": "MONTHLY",
        "group": "velocity",
    }
    result = execute(op, params=params)
    assert created_bodies(sei_emulator) == [
        {
            "scope": {
                "teamId": "456",
                "orgTreeName": sei_emulator.org.root.name,
                "orgIdentifier": "org-sei",
                "projectIdentifier": "proj-sei",
            },
            "dateRange": {"start": "2024-01-01", "end": "2024-03-31"},
            "options": {
                "granularity": "monthly",
                "format": "csv",
                "aggregation": "p90",
                "metricLevel": "developer",
                "compression": "gzip",
                "futureOption": "MONTHLY",
            },
            "metricGroups": ["velocity", "volume"],
            "metrics": ["CODING_DAYS"],
        }
    ]
    assert all(r.query == {"projectIdentifier": "proj-sei", "orgIdentifier": "org-sei"}
               for r in sei_emulator.requests)  # fmt: skip
    expected = f"file://{tmp_path}/productivity/456-monthly-2024-01-01_2024-03-31.csv.gz"
    assert result["uri"] == expected
    assert result["compression"] == "gzip"


def test_the_xcom_summary(v2_conn, sei_emulator, tmp_path):
    result = execute(export_op(tmp_path, export_type="ticket-data", issue_statuses="QA, Done"))
    job = sei_emulator.jobs.values()[0]
    data = job.payload.export.data
    assert result == {
        "uri": f"file://{tmp_path}/export.csv",
        "bytes": len(data),
        "rows": data.count(b"\n") - 1,
        "columns": data.split(b"\n")[0].decode().rstrip("\r").split(","),
        "filename": None,
        "date_start": "2024-01-01",
        "date_end": "2024-03-31",
        "output_format": "csv",
        "export_id": job.export_id,
        "export_type": "time_in_status",
        "reused": False,
        "compression": "none",
    }
    assert (tmp_path / "export.csv").read_bytes() == data
    assert result["columns"][-2:] == ["QA_Mean_Days", "Done_Mean_Days"]


# -- refusals before any request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("granularity", {"granularity": "daily"}),
        ("granularity", {"export_type": "productivity", "granularity": "sprint"}),
        ("metric_groups", {"metric_groups": ["velocity"]}),
        ("metrics", {"metrics": ["PR_VELOCITY"]}),
        (
            "metrics",
            {"export_type": "productivity", "metric_level": "team", "metrics": ["LOC_ADDED"]},
        ),
        ("aggregation", {"aggregation": "p99"}),
        ("metric_level", {"metric_level": "developer"}),
        ("issue_statuses", {"issue_statuses": ["QA"]}),
        ("options", {"options": {"granularity": "MONTHLY"}}),
        ("options", {"options": "not a dict"}),
        (
            "options.computationMode",
            {"export_type": "sprint", "options": {"computationMode": "HOURS"}},
        ),
        ("compression", {"compression": "zip"}),
        ("compression", {"compression": "gzip", "output_format": "parquet"}),
        ("poll_interval", {"poll_interval": "soon"}),
        ("poll_interval", {"poll_interval": 0}),
        ("max_wait", {"max_wait": -1}),
        ("requests_per_minute", {"requests_per_minute": "lots"}),
        ("team_id/org_tree_name", {"team_id": None}),
        ("team_id/org_tree_name", {"team_id": "{{ params.get('team') }}"}),
        ("date_start", {"date_start": "2024-02-30"}),
        ("date_start", {"date_start": "2024-05-01", "date_end": "2024-04-01"}),
        ("if_empty", {"if_empty": "ignore"}),
        ("output_format", {"output_format": "xlsx"}),
        ("max_bytes", {"max_bytes": "big"}),
    ],
)
def test_invalid_parameters_fail_before_any_request(field, kwargs, v2_conn, sei_emulator, tmp_path):
    with pytest.raises(AirflowFailException, match=f"Invalid {field}"):
        execute(export_op(tmp_path, **kwargs))
    assert sei_emulator.requests == []
    assert list(tmp_path.iterdir()) == []


def test_missing_identifiers_fail_before_any_request_naming_the_extras(
    sei_emulator, make_sei_conn, tmp_path
):
    make_sei_conn(sei_emulator.base_url, KEY, project_identifier="proj-sei")
    with pytest.raises(AirflowFailException) as info:
        execute(export_op(tmp_path))
    assert "org_identifier" in str(info.value)
    assert "project_identifier" not in str(info.value).split("Allowed")[0]
    make_sei_conn(sei_emulator.base_url, KEY)
    with pytest.raises(AirflowFailException, match="project_identifier and org_identifier"):
        execute(export_op(tmp_path))
    assert sei_emulator.requests == []


def test_an_unknown_destination_connection_fails_before_the_job(v2_conn, sei_emulator, tmp_path):
    with pytest.raises(AirflowFailException, match="no_such_conn"):
        execute(export_op(tmp_path, dest_conn_id="no_such_conn"))
    assert sei_emulator.requests == []


def test_an_existing_file_with_overwrite_false_fails_before_the_job(
    v2_conn, sei_emulator, tmp_path
):
    (tmp_path / "export.csv").write_bytes(b"previous\n")
    with pytest.raises(AirflowFailException, match="already exists and overwrite is False"):
        execute(export_op(tmp_path, overwrite="{{ 'false' }}"))
    assert sei_emulator.requests == []
    assert (tmp_path / "export.csv").read_bytes() == b"previous\n"


def test_a_missing_bucket_fails_before_the_job(v2_conn, sei_emulator, s3, tmp_path):
    with pytest.raises(AirflowFailException, match="no-such-bucket-sei"):
        execute(export_op(tmp_path, destination="s3://no-such-bucket-sei/x.csv"))
    assert sei_emulator.requests == []


# -- deferral -------------------------------------------------------------------------------


def test_deferrable_creates_the_job_then_defers(v2_conn, sei_emulator, tmp_path):
    from airflow.providers.common.compat.sdk import TaskDeferred

    op = export_op(tmp_path, deferrable=True, max_wait=120, requests_per_minute="{{ 300 }}")
    context = build_context(op)
    op.render_template_fields(context)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    deferred = info.value
    assert isinstance(deferred.trigger, SEIExportTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout.total_seconds() == pytest.approx(420, abs=2)
    trigger = deferred.trigger
    assert before + 118 <= trigger.end_time <= time.time() + 120
    assert trigger.requests_per_minute == 300
    assert trigger.poll_interval == 0.02
    assert [r.method for r in sei_emulator.requests] == ["POST"]  # no poll in the task
    job = ExportJob.from_dict(trigger.job)
    assert job.export_id in sei_emulator.jobs
    assert list(tmp_path.iterdir()) == []


def test_execute_complete_downloads_the_job_the_trigger_saw(v2_conn, sei_emulator, tmp_path):
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred

    op = export_op(tmp_path, deferrable=True, export_type="sprint")
    context = build_context(op)
    op.render_template_fields(context)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)

    async def first_event() -> Any:
        return await anext(info.value.trigger.run())

    event = asyncio.run(first_event())
    resumed = export_op(tmp_path, deferrable=True, export_type="sprint")  # a fresh worker
    context = build_context(resumed)
    resumed.render_template_fields(context)
    result = resumed.execute_complete(context, event.payload)
    assert result["export_id"] == event.payload["job"]["export_id"]
    assert [r.method for r in sei_emulator.requests].count("POST") == 1
    assert sei_emulator.requests[-1].path.startswith("/v2/insights/sprints/exports/")
    data = sei_emulator.jobs[result["export_id"]].payload.export.data
    assert (tmp_path / "export.csv").read_bytes() == data


def _job(status: str = "PROCESSING") -> dict[str, Any]:
    return {"export_id": "exp_1", "export_type": "efficiency", "status": status}


@pytest.mark.parametrize(
    ("event", "error", "text"),
    [
        (
            {"status": "failed", "job": _job("FAILED"), "message": "Org tree too large"},
            AirflowFailException,
            "SEI export job exp_1 ended FAILED: Org tree too large",
        ),
        (
            {"status": "failed", "job": _job("CANCELLED"), "message": ""},
            AirflowFailException,
            "ended CANCELLED",
        ),
        (
            {"status": "timeout", "job": _job(), "message": "not finished by max_wait"},
            SEITimeoutError,
            "exp_1: not finished by max_wait",
        ),
        (
            {"status": "error", "job": _job(), "message": "503", "retryable": True},
            SEIError,
            "Polling SEI export job exp_1 failed: 503",
        ),
        (
            {"status": "error", "job": _job(), "message": "401", "retryable": False},
            AirflowFailException,
            "Polling SEI export job exp_1 failed: 401",
        ),
    ],
)
def test_execute_complete_fails_with_the_trigger_s_reason(
    event, error, text, v2_conn, sei_emulator, tmp_path
):
    op = export_op(tmp_path, deferrable=True)
    context = build_context(op)
    op.render_template_fields(context)
    with pytest.raises(error, match=text) as info:
        op.execute_complete(context, event)
    assert not isinstance(info.value, AirflowFailException) or error is AirflowFailException
    assert sei_emulator.requests == []


# -- in-task polling ------------------------------------------------------------------------


def test_on_kill_from_another_thread_stops_polling(v2_conn, sei_emulator, tmp_path):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.never_finish()]))
    op = export_op(tmp_path, poll_interval=5, max_wait=60)
    polled = threading.Event()

    def kill_after_first_poll() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            r.method == "GET" for r in sei_emulator.requests
        ):
            time.sleep(0.005)
        polled.set()
        op.on_kill()

    killer = threading.Thread(target=kill_after_first_poll)
    started = time.monotonic()
    killer.start()
    with pytest.raises(SEITimeoutError, match="Stopped waiting"):
        execute(op)
    elapsed = time.monotonic() - started
    killer.join()
    assert polled.is_set()
    assert elapsed < 4  # well before the 5 s poll interval ended
    assert [r.method for r in sei_emulator.requests] == ["POST", "GET"]
    assert list(tmp_path.iterdir()) == []


def test_in_task_polls_pay_the_requests_per_minute_budget(v2_conn, sei_emulator, tmp_path):
    sei_emulator.set_v2(V2Settings(complete_after_polls=3))
    op = export_op(tmp_path, poll_interval=0.01, requests_per_minute=600)
    started = time.monotonic()
    execute(op)
    elapsed = time.monotonic() - started
    # create + 4 polls + download = 6 requests, one grant every ~0.1 s: 5 intervals at least.
    assert len(sei_emulator.requests) == 6
    assert elapsed >= 5 * 60 / 600 * 0.95
    assert op.hook.rate_limiter is not None
    assert op.hook.rate_limiter.waited > 0


def test_max_wait_counts_from_the_job_s_creation(v2_conn, sei_emulator, tmp_path):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.never_finish()]))
    op = export_op(tmp_path, poll_interval=0.05, max_wait=0.5)
    started = time.monotonic()
    with pytest.raises(SEITimeoutError, match=r"max_wait=0\.5"):
        execute(op)
    assert 0.45 <= time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


# -- the worst server -----------------------------------------------------------------------

HOSTILE_KEY = "pat.acct123.tok456.s3cr3tV4lu3xyz"
BASE = "/gateway/sei/api"
EXPORTS = f"{BASE}/v2/insights/efficiency/exports"
DOWNLOAD = f"{EXPORTS}/exp_h1/download"
CSV = b"Granularity,Team,Team_Hierarchy\n" + b"".join(
    b"Week %d,Team %d,Eng/Team %d\n" % (i, i, i) for i in range(2000)
)


@pytest.fixture
def hostile(make_sei_conn: Any, v2_extras: dict[str, Any]) -> Any:
    """A hostile server behind ``harness_sei_default``, at a base URL with a path."""
    from hostile import HostileServer

    with HostileServer() as srv:
        make_sei_conn(srv.url + BASE, HOSTILE_KEY, **v2_extras, max_elapsed=2)
        yield srv


def script_job(srv: Any, polls: list[Any], downloads: list[Any] = ()) -> None:
    """The job's create answer, then ``polls`` for its status and ``downloads`` for its file."""
    from hostile import json_response

    srv.route(EXPORTS, json_response({"exportId": "exp_h1", "status": "QUEUED"}, 202))
    srv.route(f"{EXPORTS}/exp_h1", *polls)
    srv.route(DOWNLOAD, *downloads)


def completed(url: str) -> Any:
    from hostile import json_response

    return json_response({"exportId": "exp_h1", "status": "COMPLETED", "downloadUrl": url})


def no_secret_in(text: str) -> None:
    assert HOSTILE_KEY not in text
    assert "s3cr3tV4lu3xyz" not in text


@pytest.mark.parametrize(
    "url",
    [
        "/v2/insights/efficiency/exports/exp_h1/download",
        "v2/insights/efficiency/exports/exp_h1/download",
        DOWNLOAD,  # already rooted at the host: the base path is not doubled
        "{base_url}" + DOWNLOAD,  # absolute, same origin
    ],
)
def test_every_form_of_download_url_reaches_the_file(url, hostile, tmp_path):
    from hostile import csv

    script_job(hostile, [completed(url.format(base_url=hostile.url))], [csv(CSV)])
    result = execute(export_op(tmp_path))
    assert (tmp_path / "export.csv").read_bytes() == CSV
    assert result["rows"] == 2000
    [fetched] = hostile.requests_to(DOWNLOAD)
    assert fetched.headers["authorization"] == f"ApiKey {HOSTILE_KEY}"
    assert fetched.query == {"projectIdentifier": "proj-sei", "orgIdentifier": "org-sei"}


def test_a_download_on_another_host_gets_no_key(hostile, tmp_path):
    from hostile import HostileServer, csv

    with HostileServer() as storage:
        signed = f"{storage.url}/bucket/exp_h1.csv.gz?X-Sig=abc"
        script_job(hostile, [completed(signed)])
        storage.route("/bucket/exp_h1.csv.gz", csv(gzip_compress(CSV), "exp_h1.csv.gz",
                                                   "application/gzip"))  # fmt: skip
        execute(export_op(tmp_path))
        [fetched] = storage.requests_to("/bucket/exp_h1.csv.gz")
    assert (tmp_path / "export.csv").read_bytes() == CSV
    assert fetched.query["X-Sig"] == "abc"
    for header in ("authorization", "x-api-key", "harness-account"):
        assert header not in fetched.headers
    no_secret_in(repr(fetched))


def gzip_compress(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_gz_file_cut_inside_an_honest_content_length_fails(compression, hostile, tmp_path):
    from hostile import response

    whole = gzip_compress(CSV)
    cut = whole[: len(whole) // 2]  # a truncated .gz, sent whole: the HTTP framing is fine
    reply = response(200, {"Content-Type": "application/gzip"}, cut)
    script_job(hostile, [completed("/v2/insights/efficiency/exports/exp_h1/download")], [reply] * 2)
    target = tmp_path / ("export.csv.gz" if compression == "gzip" else "export.csv")
    target.write_bytes(b"previous\n")
    with pytest.raises(SEIError, match=r"cut short|incomplete|truncated"):
        execute(
            export_op(
                tmp_path,
                compression=compression,
                destination=f"file://{tmp_path}/export{{{{ sei.suffix }}}}",
            )
        )
    assert target.read_bytes() == b"previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_poll_answered_with_html_fails_fast(hostile, tmp_path):
    from hostile import response

    script_job(hostile, [response(200, {"Content-Type": "text/html"}, b"<html>login</html>")])
    with pytest.raises(AirflowFailException, match="did not answer JSON"):
        execute(export_op(tmp_path))
    assert not hostile.requests_to(DOWNLOAD)


def test_a_429_on_a_poll_is_retried(hostile, tmp_path):
    from hostile import csv, json_error

    script_job(hostile, [json_error(429, "Too many requests"), completed(DOWNLOAD)], [csv(CSV)])
    execute(export_op(tmp_path))
    assert len(hostile.requests_to(f"{EXPORTS}/exp_h1")) == 2
    assert (tmp_path / "export.csv").read_bytes() == CSV


def test_a_poll_that_drips_its_headers_is_cut_at_max_elapsed(hostile, tmp_path):
    from hostile import response

    dripping = response(200, {"Content-Type": "application/json"}, b"{}", drip_headers=(1, 0.2))
    script_job(hostile, [dripping, dripping])
    started = time.monotonic()
    with pytest.raises(SEITimeoutError, match="max_elapsed"):
        execute(export_op(tmp_path))
    assert 1.8 <= time.monotonic() - started < 5


def test_a_failure_message_echoing_the_key_is_redacted(hostile, tmp_path):
    from hostile import json_response

    def echo(request: Any) -> Any:
        reason = f"denied for {request.headers['authorization']} ({HOSTILE_KEY})"
        return json_response({"exportId": "exp_h1", "status": "FAILED", "error": reason})

    script_job(hostile, [echo])
    with pytest.raises(AirflowFailException) as info:
        execute(export_op(tmp_path))
    text = str(info.value)
    assert "ended FAILED: denied for" in text
    no_secret_in(text)
