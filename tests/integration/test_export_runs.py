"""Real DAG runs (``dag.test()``) of ``SEIExportOperator`` against the emulator: every export
type in both modes (polling in the task, and deferred to the trigger that ``dag.test()`` runs),
every documented variant of the API, every job fault, the bytes written, XCom and asset events.

How a deferred run is shown to hold no worker while the job runs (the ``timeline`` fixture):

* every attempt of the task is recorded as the task runner ends it, with the task instance's
  row read from the metadata DB at that moment: the first attempt ends ``deferred``, with a
  ``trigger`` row of ``SEIExportTrigger`` and ``next_method = execute_complete``;
* every poll of the job is recorded with where it ran (the trigger's async client, or the
  task's ``wait_for_export``) and the stack of every thread at that moment: during a deferred
  run's polls no thread is inside the operator's ``execute`` (no worker waits); during an
  in-task run's polls one is (the contrast that shows the check can fail).
"""

from __future__ import annotations

import gzip
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from airflow.sdk import DAG, Asset
from sei_emulator import Faults as EmulatorFaults
from sei_emulator import JobFault, V2Settings

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.metrics import EXPORT_TYPES
from airflow_provider_sei.models import parse_export_type
from airflow_provider_sei.operators._base import SEIExportBaseOperator
from airflow_provider_sei.operators.exports import SEIExportOperator

KEY = "sei-emulator-key"
START = pendulum.datetime(2024, 1, 1, tz="UTC")
MONTHLY = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
RUN_AT = pendulum.datetime(2024, 4, 1, tz="UTC")  # the data interval: March 2024
MARCH = ("2024-03-01", "2024-03-31")
SUMMARY_KEYS = {
    "uri",
    "bytes",
    "rows",
    "columns",
    "filename",
    "date_start",
    "date_end",
    "export_id",
    "export_type",
    "reused",
    "compression",
}
PREVIOUS = b"previous,good\n1,2\n"
MODES = [pytest.param(False, id="in-task"), pytest.param(True, id="deferred")]
#: Per type, a request that uses what the type's page documents.
TYPE_KWARGS: dict[str, dict[str, Any]] = {
    "efficiency": {"metric_groups": ["lttc", "df"], "aggregation": "p90", "granularity": "weekly"},
    "productivity": {"metric_level": "developer", "metric_groups": ["volume", "activity"]},
    "sprint": {
        "granularity": "SPRINT",
        "metric_level": "sprint",
        "options": {"computationMode": "TICKETS"},
    },
    "business_alignment": {"granularity": "monthly", "team_id": None, "org_tree_name": "ROOT"},
    "time_in_status": {
        "granularity": "daily",
        "issue_statuses": ["In Progress", "QA"],
        "options": {"aggregationLevel": "team", "terminalDateColumn": "issue_resolved_at"},
    },
}


# -- fixtures -------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One run of the task, as the task runner ended it, and its DB row at that moment."""

    state: str
    error: BaseException | None
    db_state: str
    trigger_classpath: str | None
    next_method: str | None


@dataclass
class Poll:
    """One status request: where it ran, when, and whether a worker was inside ``execute``."""

    via: str  # "trigger" (async) or "task"
    at: float
    worker_busy: bool
    in_event_loop: bool


@dataclass
class Timeline:
    attempts: list[Attempt] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    created_at: list[float] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [a.state for a in self.attempts]

    @property
    def error(self) -> str:
        """The last attempt's error, as text (for assertion messages too)."""
        return str(self.attempts[-1].error) if self.attempts else "(no attempt recorded)"


#: Code that runs only while a worker is executing the task.
_WORKER_CODE = {
    SEIExportBaseOperator.execute.__code__,
    SEIExportOperator.export.__code__,
    SEIHook.wait_for_export.__code__,
}


def _worker_busy() -> bool:
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code in _WORKER_CODE:
                return True
            frame = frame.f_back
    return False


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def timeline(monkeypatch) -> Timeline:
    """Record each task attempt (with its DB row) and each poll of the job, in order."""
    import airflow.sdk.execution_time.supervisor as supervisor
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    line = Timeline()
    run_task_in_process = supervisor.run_task_in_process

    def attempt(ti: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        result = run_task_in_process(ti, task, *args, **kwargs)
        with create_session() as session:  # before dag.test() moves the state on
            row = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == ti.dag_id,
                    TaskInstance.run_id == ti.run_id,
                    TaskInstance.task_id == ti.task_id,
                    TaskInstance.map_index == ti.map_index,
                )
            ).one()
            trigger = session.get(Trigger, row.trigger_id) if row.trigger_id else None
            line.attempts.append(
                Attempt(
                    state=str(getattr(result.ti.state, "value", result.ti.state)),
                    error=result.error,
                    db_state=str(getattr(row.state, "value", row.state)),
                    trigger_classpath=trigger.classpath if trigger else None,
                    next_method=row.next_method,
                )
            )
        line.events.append(f"task:{line.attempts[-1].state}")
        return result

    get_export, aget_export = SEIHook.get_export, SEIHook.aget_export
    create_export = SEIHook.create_export

    def record(via: str) -> None:
        line.polls.append(Poll(via, time.monotonic(), _worker_busy(), _in_event_loop()))
        line.events.append(f"poll:{via}")

    def sync_poll(self: SEIHook, job: Any) -> Any:
        record("task")
        return get_export(self, job)

    async def async_poll(self: SEIHook, job: Any) -> Any:
        record("trigger")
        return await aget_export(self, job)

    def create(self: SEIHook, request: Any) -> Any:
        line.created_at.append(time.monotonic())
        line.events.append("create")
        return create_export(self, request)

    monkeypatch.setattr(supervisor, "run_task_in_process", attempt)
    monkeypatch.setattr(SEIHook, "get_export", sync_poll)
    monkeypatch.setattr(SEIHook, "aget_export", async_poll)
    monkeypatch.setattr(SEIHook, "create_export", create)
    return line


# -- helpers --------------------------------------------------------------------------------


def export_dag(request: Any, tmp_path: Path, suffix: str = "", **op_kwargs: Any) -> DAG:
    """A monthly DAG (named after the test) of one ``SEIExportOperator`` task, ``export``."""
    dag_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:200] + suffix
    op_kwargs.setdefault("destination", f"file://{tmp_path}/export{{{{ sei.suffix }}}}")
    op_kwargs.setdefault("poll_interval", 0.02)
    op_kwargs.setdefault("export_type", "efficiency")
    if "team_id" not in op_kwargs and "org_tree_name" not in op_kwargs:
        op_kwargs["team_id"] = "123"
    with DAG(dag_id, schedule=MONTHLY, start_date=START, catchup=False) as dag:
        SEIExportOperator(task_id="export", **op_kwargs)
    return dag


def download(emulator: Any, export_type: str, export_id: str) -> tuple[bytes, bytes]:
    """The job's download fetched directly: ``(raw body, the CSV it decompresses to)``."""
    segment = EXPORT_TYPES[parse_export_type(export_type)].segment
    response = requests.get(
        f"{emulator.base_url}/v2/insights/{segment}/exports/{export_id}/download",
        params={"projectIdentifier": "proj-sei", "orgIdentifier": "org-sei"},
        headers={"Authorization": f"ApiKey {KEY}", "Accept-Encoding": "gzip"},
        stream=True,
        timeout=10,
    )
    response.raise_for_status()
    raw = response.raw.read(decode_content=False)
    csv = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
    if csv[:2] == b"\x1f\x8b":  # a .csv.gz file
        csv = gzip.decompress(csv)
    return raw, csv


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".sei-export."))


def downloads(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith("/download")]


def assert_deferred(line: Timeline, final: str) -> None:
    """The task deferred, the trigger polled while no worker ran it, then it resumed."""
    assert line.states == ["deferred", final]
    first = line.attempts[0]
    assert first.db_state == "deferred"
    assert first.trigger_classpath == "airflow_provider_sei.triggers.exports.SEIExportTrigger"
    assert first.next_method == "execute_complete"
    assert line.polls
    for poll in line.polls:
        assert poll.via == "trigger"
        assert poll.in_event_loop
        assert not poll.worker_busy
    assert line.events[0] == "create"
    assert line.events[1] == "task:deferred"
    assert line.events[-1] == f"task:{final}"
    assert line.events.count("create") == 1  # the resumed task does not create another job


def assert_in_task(line: Timeline, final: str) -> None:
    assert line.states == [final]
    assert line.polls
    for poll in line.polls:
        assert poll.via == "task"
        assert poll.worker_busy  # the contrast: here a worker waits through every poll
        assert not poll.in_event_loop


# -- every export type, both modes ----------------------------------------------------------


@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize("export_type", list(TYPE_KWARGS))
def test_every_export_type(
    export_type, deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    kwargs = dict(TYPE_KWARGS[export_type])
    if kwargs.get("org_tree_name") == "ROOT":
        kwargs["org_tree_name"] = sei_emulator.org.root.name
    dag = export_dag(request, tmp_path, export_type=export_type, deferrable=deferrable, **kwargs)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    (assert_deferred if deferrable else assert_in_task)(timeline, "success")

    result = run_dag.xcom(dag_run, "export")
    assert set(result) >= SUMMARY_KEYS
    [job] = sei_emulator.jobs.values()
    assert (result["export_id"], result["export_type"]) == (job.export_id, export_type)
    assert (result["date_start"], result["date_end"]) == MARCH
    assert (result["reused"], result["compression"]) == (False, "none")
    assert job.body["dateRange"] == {"start": MARCH[0], "end": MARCH[1]}
    assert job.polls == 3  # complete_after_polls=2: the third poll saw it done

    _, csv = download(sei_emulator, export_type, job.export_id)
    written = (tmp_path / "export.csv").read_bytes()
    assert written == csv
    assert result["uri"] == f"file://{tmp_path}/export.csv"
    assert result["bytes"] == len(csv)
    assert result["rows"] == csv.count(b"\n") - 1 > 0
    assert result["columns"] == csv.split(b"\n")[0].decode().rstrip("\r").split(",")
    assert "Team_Hierarchy" in result["columns"]
    assert temp_files(tmp_path) == []


# -- every documented variant ---------------------------------------------------------------


#: Variants of the create and status answers: both modes parse them (sync and async polls).
POLL_VARIANTS = [
    ("efficiency", {"status_case": "lower"}, "efficiency-lower-case-statuses"),
    ("productivity", {"status_case": "upper"}, "productivity-upper-case"),
    ("efficiency", {"status_shape": "download"}, "download-object"),
    ("ba", {"status_shape": "download_sized"}, "sized-download-object"),
    ("productivity", {"status_shape": "downloadUrl"}, "productivity-downloadUrl"),
    ("efficiency", {"create_shape": "no_status"}, "create-without-status"),
    ("ticket-data", {"create_shape": "metadata"}, "create-with-metadata"),
    ("sprint", {"plural_sprint_url": True}, "sprint-plural-poll-path"),
    ("sprint", {"plural_sprint_url": False}, "sprint-singular-path"),
    ("efficiency", {"complete_after_polls": 0}, "completed-at-the-first-poll"),
]
#: Variants of the download: the same code downloads in both modes, so one mode is enough.
DOWNLOAD_VARIANTS = [
    ("efficiency", {"compression": "always"}, "gzip-file-download"),
    (
        "productivity",
        {"compression": "always", "gzip_content_type": "application/x-gzip"},
        "x-gzip-file-download",
    ),
    ("sprint", {"content_encoding": True}, "content-encoding-gzip"),
]
VARIANTS = [
    pytest.param(kind, settings, deferrable, id=f"{name}-{'deferred' if deferrable else 'in-task'}")
    for kind, settings, name in POLL_VARIANTS
    for deferrable in (False, True)
] + [
    pytest.param(kind, settings, False, id=f"{name}-in-task")
    for kind, settings, name in DOWNLOAD_VARIANTS
]


@pytest.mark.parametrize(("export_type", "settings", "deferrable"), VARIANTS)
def test_every_documented_variant(
    export_type, settings, deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_v2(V2Settings(**{"complete_after_polls": 1, **settings}))
    dag = export_dag(request, tmp_path, export_type=export_type, deferrable=deferrable)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    (assert_deferred if deferrable else assert_in_task)(timeline, "success")
    result = run_dag.xcom(dag_run, "export")
    raw, csv = download(sei_emulator, export_type, result["export_id"])
    assert (tmp_path / "export.csv").read_bytes() == csv
    assert result["compression"] == "none"
    assert result["bytes"] == len(csv)
    if settings.get("compression") == "always":
        assert raw[:2] == b"\x1f\x8b"  # the server really sent a .csv.gz file
    [fetched, _] = downloads(sei_emulator)  # the task's download, then ours
    if export_type == "sprint":
        plural = settings.get("plural_sprint_url", True)
        assert fetched.path.startswith(
            "/v2/insights/sprints/" if plural else "/v2/insights/sprint/"
        )


@pytest.mark.parametrize("deferrable", MODES)
def test_an_identical_request_reuses_the_job(
    deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_v2(V2Settings(complete_after_polls=1))
    first = export_dag(request, tmp_path, deferrable=deferrable, destination=f"{tmp_path}/a.csv")
    first_run = run_dag(first, RUN_AT)
    again = export_dag(
        request, tmp_path, "_again", deferrable=deferrable, destination=f"{tmp_path}/b.csv"
    )
    again_run = run_dag(again, RUN_AT)
    assert run_dag.states(again_run) == {"export": "success"}, timeline.error
    one, two = run_dag.xcom(first_run, "export"), run_dag.xcom(again_run, "export")
    assert (one["reused"], two["reused"]) == (False, True)
    assert one["export_id"] == two["export_id"]
    assert [r.status for r in sei_emulator.requests if r.method == "POST"] == [202, 200]
    [job] = sei_emulator.jobs.values()
    assert job.reused == 1
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


# -- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", MODES)
def test_gzip_stores_the_gz_file_as_downloaded(
    deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    dag = export_dag(request, tmp_path, compression="gzip", deferrable=deferrable)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    result = run_dag.xcom(dag_run, "export")
    job = sei_emulator.jobs[result["export_id"]]
    assert job.body["options"]["compression"] == "gzip"  # asked the server for a .gz
    raw, csv = download(sei_emulator, "efficiency", result["export_id"])
    assert raw[:2] == b"\x1f\x8b"
    stored = (tmp_path / "export.csv.gz").read_bytes()
    assert stored == raw  # as downloaded: not decompressed and compressed again
    assert gzip.decompress(stored) == csv
    assert (result["compression"], result["bytes"]) == ("gzip", len(raw))
    assert result["uri"].endswith("/export.csv.gz")
    assert result["rows"] == csv.count(b"\n") - 1


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"compression": "never"}, id="plain-csv-download"),
        pytest.param({"content_encoding": True}, id="content-encoding-gzip"),
    ],
)
def test_gzip_compresses_a_plain_download_on_the_way(
    settings, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_v2(V2Settings(complete_after_polls=1, **settings))
    dag = export_dag(request, tmp_path, export_type="productivity", compression="gzip")
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    result = run_dag.xcom(dag_run, "export")
    _, csv = download(sei_emulator, "productivity", result["export_id"])
    stored = (tmp_path / "export.csv.gz").read_bytes()
    assert gzip.decompress(stored) == csv
    assert result["bytes"] == len(stored)
    assert result["compression"] == "gzip"


def test_a_folder_destination_takes_the_server_s_name_with_the_written_suffix(
    run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    # The sprint page names its download "....csv.gz"; written decompressed it is a ".csv".
    sei_emulator.set_v2(V2Settings(complete_after_polls=1, compression="always"))
    dag = export_dag(request, tmp_path, export_type="sprint", destination=f"file://{tmp_path}/")
    dag_run = run_dag(dag, RUN_AT)
    result = run_dag.xcom(dag_run, "export")
    server_name = sei_emulator.jobs[result["export_id"]].payload.filename
    assert server_name.endswith(".csv.gz")
    assert result["filename"] == server_name[: -len(".gz")]
    _, csv = download(sei_emulator, "sprint", result["export_id"])
    assert (tmp_path / result["filename"]).read_bytes() == csv


# -- faults: the task fails with the server's reason, the destination stays as it was ------


def seeded(tmp_path: Path, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(PREVIOUS)
    return path


@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            JobFault.fail("Org tree too large: narrow the scope"),
            "ended FAILED: Org tree too large: narrow the scope",
            id="fail",
        ),
        pytest.param(
            JobFault.fail("Quota exceeded", field="message"),
            "ended FAILED: Quota",
            id="fail-message",
        ),
        pytest.param(JobFault.cancel(), "ended CANCELLED", id="cancel"),
    ],
)
def test_a_failed_or_cancelled_job_fails_the_task(
    fault, expected, deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_faults(EmulatorFaults(jobs=[fault]))
    previous = seeded(tmp_path)
    dag = export_dag(request, tmp_path, deferrable=deferrable, retries=0)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert expected in timeline.error
    (assert_deferred if deferrable else assert_in_task)(timeline, "failed")
    assert previous.read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []
    assert downloads(sei_emulator) == []


@pytest.mark.parametrize("deferrable", MODES)
def test_a_job_that_never_finishes_fails_after_max_wait(
    deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.never_finish()]))
    previous = seeded(tmp_path)
    # Long enough that deferring (on a loaded machine, on 3.1: 0.6 s before the trigger's
    # first poll) still leaves the trigger room for several polls.
    max_wait = 2.0
    dag = export_dag(request, tmp_path, deferrable=deferrable, max_wait=max_wait, poll_interval=0.1)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert "max_wait" in timeline.error
    (assert_deferred if deferrable else assert_in_task)(timeline, "failed")
    waited = timeline.polls[-1].at - timeline.created_at[0]
    assert max_wait - 0.15 <= waited <= max_wait + 1.0
    assert len(timeline.polls) >= 5
    assert previous.read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []
    assert downloads(sei_emulator) == []


@pytest.mark.parametrize("deferrable", MODES)
def test_a_download_cut_once_is_retried(
    deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.cut_download(0.5, times=1)]))
    seeded(tmp_path)
    dag = export_dag(request, tmp_path, deferrable=deferrable, export_type="productivity")
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    result = run_dag.xcom(dag_run, "export")
    assert [r.fault for r in downloads(sei_emulator)] == ["job:cut_download:0.5", None]
    _, csv = download(sei_emulator, "productivity", result["export_id"])
    assert (tmp_path / "export.csv").read_bytes() == csv
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("gzip_file", "deferrable"),
    [
        pytest.param(False, False, id="csv-in-task"),
        pytest.param(False, True, id="csv-deferred"),
        pytest.param(True, False, id="gz-file-in-task"),
    ],
)
def test_a_download_cut_every_time_fails_and_keeps_the_previous_file(
    gzip_file, deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.cut_download(0.6, times=None)]))
    if gzip_file:
        sei_emulator.set_v2(V2Settings(complete_after_polls=1, compression="always"))
    previous = seeded(tmp_path)
    dag = export_dag(request, tmp_path, deferrable=deferrable, retries=0)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert "cut short" in timeline.error
    assert len(downloads(sei_emulator)) == v2_conn.extra["max_retries"] + 1
    assert previous.read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


def test_a_failed_gzip_export_keeps_the_previous_gz(
    run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    sei_emulator.set_faults(EmulatorFaults(jobs=[JobFault.cut_download(0.3, times=None)]))
    previous = seeded(tmp_path, "export.csv.gz")
    dag = export_dag(request, tmp_path, compression="gzip")
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert previous.read_bytes() == PREVIOUS
    assert temp_files(tmp_path) == []


# -- before any request ---------------------------------------------------------------------


def test_without_the_identifiers_the_task_fails_before_any_request(
    run_dag, sei_emulator, make_sei_conn, timeline, tmp_path, request
):
    make_sei_conn(sei_emulator.base_url, KEY)
    dag = export_dag(request, tmp_path, deferrable=True)
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert "project_identifier and org_identifier" in timeline.error
    assert timeline.states == ["failed"]
    assert sei_emulator.requests == []


def test_a_bad_parameter_fails_the_task_before_any_request(
    run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    dag = export_dag(request, tmp_path, export_type="productivity", granularity="{{ 'sprint' }}")
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert "Invalid granularity: 'sprint'. Allowed: one of weekly, monthly, quarterly" in (
        timeline.error
    )
    assert sei_emulator.requests == []


# -- asset events and object stores ---------------------------------------------------------


@pytest.mark.parametrize("deferrable", MODES)
def test_outlet_asset_event_carries_the_summary(
    deferrable, run_dag, v2_conn, sei_emulator, timeline, tmp_path, request
):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    name = f"sei_export_asset_{'deferred' if deferrable else 'in_task'}"
    asset = Asset(name=name, uri=f"file://{tmp_path}/assets/latest.csv")
    dag = export_dag(request, tmp_path, destination=asset, deferrable=deferrable)
    dag_run = run_dag(dag, RUN_AT)
    result = run_dag.xcom(dag_run, "export")
    assert set(result) >= SUMMARY_KEYS
    with create_session() as session:
        asset_id = select(AssetModel.id).where(AssetModel.name == name)
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.asset_id == asset_id.scalar_subquery())
        ).all()
        assert [event.extra for event in events] == [result]
    assert result["uri"] == asset.uri


def test_a_deferred_gzip_export_to_s3(
    run_dag, v2_conn, sei_emulator, s3, timeline, tmp_path, request
):
    dag = export_dag(
        request,
        tmp_path,
        export_type="productivity",
        metric_level="developer",
        granularity="weekly",
        compression="gzip",
        deferrable=True,
        destination=f"s3://{s3.bucket}/sei/{{{{ sei.export_type }}}}/{{{{ sei.date_start }}}}"
        "{{ sei.suffix }}",
        dest_conn_id="aws_default",
        dest_storage_options={"ContentType": "application/gzip"},
    )
    dag_run = run_dag(dag, RUN_AT)
    assert run_dag.states(dag_run) == {"export": "success"}, timeline.error
    assert_deferred(timeline, "success")
    result = run_dag.xcom(dag_run, "export")
    key = f"sei/productivity/{MARCH[0]}.csv.gz"
    assert result["uri"] == f"s3://{s3.bucket}/{key}"
    assert s3.keys() == [key]
    assert s3.uploads() == []
    raw, csv = download(sei_emulator, "productivity", result["export_id"])
    assert s3.read(key) == raw
    assert gzip.decompress(s3.read(key)) == csv
