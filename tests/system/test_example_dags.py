"""The example DAGs: each parses cleanly and runs for real against the emulator.

Every DAG in ``example_dags/`` is loaded from its file by a ``DagBag`` (as the dag-processor
would) with the environment variables the examples read pointed at a temporary folder, then
run with ``dag.test()`` against the in-process emulator: legacy reports, the V2 export jobs
(the deferred one's trigger run in-process by ``dag.test()``), Parquet, ``csv.gz`` and an S3
destination on moto. Each test asserts what the DAG wrote, read back from the store.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
PROJECT, ORG = "demo_project", "demo_org"
LEGACY_DAGS = [
    "sei_team_weekly",
    "sei_dora_monthly",
    "sei_contributors_weekly",
    "sei_team_fanout",
]
V2_DAGS = [
    "sei_export_dora_org_tree_monthly",
    "sei_export_productivity_weekly",
    "sei_export_sprint_quarterly",
]
# The consumer summarises the weekly team report, so it runs after it.
DAG_IDS = [*LEGACY_DAGS, "sei_team_report_consumer", *V2_DAGS]
LOGICAL_DATE = pendulum.datetime(2024, 3, 4, tz="UTC")  # a Monday, as in ``make demo``
WEEK = "2024-02-26"  # the week before it (weekly interval timetables)
TEAMS = (123, 456, 789)  # sei_team_fanout's teams


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def out_root(tmp_path_factory) -> Path:
    """One output folder for the module: the Asset the weekly DAG declares keeps one URI (on
    Airflow 3.1 an Asset whose name comes back with another URI is deactivated)."""
    return tmp_path_factory.mktemp("example-out")


@pytest.fixture
def examples(out_root, monkeypatch, sei_emulator, make_sei_conn) -> SimpleNamespace:
    """The examples' environment: an empty output folder, the emulator, fast polls.

    ``examples.bag()`` parses ``example_dags/`` with the environment as it is then (the DAG
    files read it at parse time), so a test may change it first.
    """
    from sei_emulator import V2Settings

    sei_emulator.set_v2(V2Settings())  # the documented defaults, whatever ran before
    make_sei_conn(
        sei_emulator.base_url,
        "sei-emulator-key",
        project_identifier=PROJECT,
        org_identifier=ORG,
        max_retries=1,
    )
    out = out_root / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    monkeypatch.setenv("SEI_EXPORT_BASE", f"file://{out}")
    monkeypatch.delenv("SEI_S3_EXPORT_BASE", raising=False)
    monkeypatch.setenv("SEI_ORG_TREE_NAME", sei_emulator.org.root.name)
    monkeypatch.setenv("SEI_POLL_INTERVAL", "0.05")
    return SimpleNamespace(out=out, emulator=sei_emulator, bag=_parse_examples)


def _parse_examples() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLES))  # AIRFLOW__CORE__LOAD_EXAMPLES=False (conftest)
    # The DagBag records each file's warnings itself (captured_warnings); older ones do not.
    recorded = [w for ws in getattr(bag, "captured_warnings", {}).values() for w in ws]
    bag.caught_warnings = [str(w.message) for w in caught] + [str(w) for w in recorded]
    return bag


@pytest.fixture
def trigger_events(monkeypatch) -> list[dict[str, Any]]:
    """The payload of every event an ``SEIExportTrigger`` yields (``dag.test()`` runs them)."""
    from airflow_provider_sei.triggers.exports import SEIExportTrigger

    events: list[dict[str, Any]] = []
    run = SEIExportTrigger.run

    async def recording_run(self: Any) -> Any:
        async for event in run(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(SEIExportTrigger, "run", recording_run)
    return events


def written(out: Path) -> list[str]:
    """Every file under ``out``, relative, sorted."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def run(run_dag: Any, bag: Any, dag_id: str, logical_date: Any = LOGICAL_DATE, **kw: Any) -> Any:
    """Run one example DAG; assert every task succeeded; return the DagRun."""
    dag_run = run_dag(bag.dags[dag_id], logical_date, **kw)
    states = run_dag.states(dag_run)
    assert states, dag_id
    assert set(states.values()) == {"success"}, (dag_id, states)
    return dag_run


# -- parsing ---------------------------------------------------------------------------------


def test_every_example_dag_loads_without_errors_or_deprecations(examples):
    bag = examples.bag()

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(DAG_IDS)
    # The current parameter names only: the old ones (sei_conn_id, destination_conn_id, ...)
    # warn "X is deprecated: use Y" when a DAG file builds its operators.
    assert not [w for w in bag.caught_warnings if "deprecated" in w.lower()]
    for dag_id in DAG_IDS:
        dag = bag.dags[dag_id]
        assert dag.catchup is False, dag_id
        assert {"sei", "example"} <= set(dag.tags), dag_id
        assert dag.description, dag_id
        module_doc = Path(dag.fileloc).read_text().split('"""')[1]
        assert "Shows:" in module_doc, f"{dag.fileloc}: the docstring says what it shows"


def test_scheduled_examples_cover_a_whole_period(examples):
    # Each time-scheduled example has a real data interval (not the zero-length interval of a
    # cron string), so a manual run at LOGICAL_DATE covers the last complete period.
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 3.1: DAGs hold the core timetables themselves

        def coerce_to_core_timetable(timetable):
            return timetable

    bag = examples.bag()
    expected_days = {
        "sei_team_weekly": 7,
        "sei_contributors_weekly": 7,
        "sei_team_fanout": 7,
        "sei_export_productivity_weekly": 7,
        "sei_dora_monthly": 29,  # February 2024
        "sei_export_dora_org_tree_monthly": 29,
        "sei_export_sprint_quarterly": 92,  # 2023-10-01 .. 2023-12-31
    }
    assert sorted(expected_days) == sorted(set(DAG_IDS) - {"sei_team_report_consumer"})
    for dag_id, days in expected_days.items():
        timetable = coerce_to_core_timetable(bag.dags[dag_id].timetable)
        interval = timetable.infer_manual_data_interval(run_after=LOGICAL_DATE)
        assert interval.end - interval.start == pendulum.duration(days=days), dag_id
        assert interval.end <= LOGICAL_DATE, dag_id


# -- running ---------------------------------------------------------------------------------


def test_every_example_dag_runs_against_the_emulator(examples, run_dag, trigger_events):
    bag = examples.bag()
    runs = {dag_id: run(run_dag, bag, dag_id) for dag_id in DAG_IDS}
    out = examples.out
    files = written(out)

    # Legacy reports: the resolved range names the folders.
    assert f"team/{WEEK}/team_report_1_{WEEK}_2024-03-03_weekly.csv" in files
    assert "dora/2024-02/dora_median.csv" in files
    assert "dora/2024-02/dora_p90.csv" in files
    median = read_csv((out / "dora/2024-02/dora_median.csv").read_bytes())
    assert median
    assert read_csv((out / "dora/2024-02/dora_p90.csv").read_bytes()) != median

    # The consumer's manifest (a manual run: the newest weekly report, counted by CSVCheck).
    manifests = [p for p in files if p.startswith("manifests/")]
    assert len(manifests) == 1
    (entry,) = read_csv((out / manifests[0]).read_bytes())
    team_csv = out / f"team/{WEEK}/team_report_1_{WEEK}_2024-03-03_weekly.csv"
    team_rows = read_csv(team_csv.read_bytes())
    assert entry["uri"].endswith(team_csv.name)
    assert int(entry["rows"]) == len(team_rows) > 0
    assert int(entry["bytes"]) == team_csv.stat().st_size
    assert int(entry["columns"]) == len(team_rows[0])

    # V2, deferred: the trigger ran in-process and polled the job to completion.
    dora = out / "v2/dora/2024-02/dora_org_tree.csv"
    rows = read_csv(dora.read_bytes())
    teams = examples.emulator.org.teams
    assert len(rows) >= len(teams) > 1  # every team of the tree
    summary = run_dag.xcom(runs["sei_export_dora_org_tree_monthly"], "export_dora_org_tree")
    # One trigger ran (the other V2 tasks polled in the task) and saw this job complete.
    assert [(e["status"], e["job"]["export_id"]) for e in trigger_events] == [
        ("success", summary["export_id"])
    ]
    assert trigger_events[0]["job"]["status"] == "COMPLETED"
    assert summary["export_type"] == "efficiency"
    assert summary["date_start"] == "2024-02-01"
    assert summary["date_end"] == "2024-02-29"
    assert summary["rows"] == len(rows)
    assert summary["bytes"] == dora.stat().st_size
    job = examples.emulator.jobs[summary["export_id"]]
    assert job.body["scope"]["orgTreeName"] == examples.emulator.org.root.name
    assert job.body["scope"]["orgIdentifier"] == ORG
    assert job.status.value == "COMPLETED"
    assert job.polls >= 2  # QUEUED, PROCESSING, ..., COMPLETED: polled by the trigger

    # V2 productivity, developer level, stored gzip-compressed with metadata columns.
    gz = out / f"productivity/{WEEK}/developers.csv.gz"
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    developers = read_csv(gzip.decompress(raw))
    assert developers
    assert {r["export_type"] for r in developers} == {"productivity"}
    assert {(r["date_start"], r["date_end"]) for r in developers} == {(WEEK, "2024-03-03")}
    summary = run_dag.xcom(runs["sei_export_productivity_weekly"], "export_developer_productivity")
    assert summary["compression"] == "gzip"
    assert summary["rows"] == len(developers)
    assert summary["bytes"] == len(raw)
    job = examples.emulator.jobs[summary["export_id"]]
    assert job.body["options"]["metricLevel"] == "developer"

    # V2 sprint, polled in the task: one row per sprint of the param's team.
    sprints = out / "v2/sprints/2023-10-01_2023-12-31/team_123.csv"
    assert read_csv(sprints.read_bytes())
    summary = run_dag.xcom(runs["sei_export_sprint_quarterly"], "export_sprints")
    job = examples.emulator.jobs[summary["export_id"]]
    assert job.body["scope"]["teamId"] == "123"
    assert job.body["options"]["computationMode"] == "STORY_POINTS"

    # Exactly these files: no temporary file left behind, nothing written elsewhere.
    assert [p for p in files if not p.startswith("manifests/")] == sorted(
        [
            f"contributors/{WEEK}/contributors_123.parquet",
            "dora/2024-02/dora_median.csv",
            "dora/2024-02/dora_p90.csv",
            *(f"fanout/{WEEK}/team_report_{t}_{WEEK}_2024-03-03_weekly.csv" for t in TEAMS),
            f"productivity/{WEEK}/developers.csv.gz",
            f"team/{WEEK}/team_report_1_{WEEK}_2024-03-03_weekly.csv",
            "v2/dora/2024-02/dora_org_tree.csv",
            "v2/sprints/2023-10-01_2023-12-31/team_123.csv",
        ]
    )


def test_contributors_parquet_has_typed_and_metadata_columns(examples, run_dag):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    bag = examples.bag()
    dag_run = run(run_dag, bag, "sei_contributors_weekly")

    path = examples.out / f"contributors/{WEEK}/contributors_123.parquet"
    table = pq.read_table(path)
    schema = table.schema
    assert table.num_rows > 0
    assert schema.field("collection_id").type == pa.string()
    assert set(table.column("collection_id").to_pylist()) == {"123"}
    assert schema.field("date_start").type == pa.date32()
    assert set(table.column("date_start").to_pylist()) == {pendulum.date(2024, 2, 26)}
    assert set(table.column("date_end").to_pylist()) == {pendulum.date(2024, 3, 3)}
    assert "exported_at" in schema.names
    numeric = [f.name for f in schema if pa.types.is_floating(f.type) or pa.types.is_int64(f.type)]
    ratings = [f.name for f in schema if "rating" in f.name.lower()]
    assert numeric, schema
    assert ratings, schema  # include_ratings=True
    assert all(schema.field(name).type == pa.string() for name in ratings)
    summary = run_dag.xcom(dag_run, "export_contributors")
    assert summary["output_format"] == "parquet"
    assert summary["rows"] == table.num_rows
    assert summary["bytes"] == path.stat().st_size


def test_manual_runs_without_a_logical_date_use_the_resolved_range(examples, run_dag):
    # A "Trigger" without a logical date has no data interval on Airflow 3: the destination
    # templates on {{ sei.date_start }} still render (to the day before the run), where
    # {{ data_interval_start | ds }} would fail with UndefinedError.
    run_after = pendulum.datetime(2024, 3, 6, 9, 30, tz="UTC")
    bag = examples.bag()
    for dag_id in ("sei_team_weekly", "sei_export_sprint_quarterly"):
        run(run_dag, bag, dag_id, None, run_after=run_after)

    files = written(examples.out)
    assert "team/2024-03-05/team_report_1_2024-03-05_2024-03-05_weekly.csv" in files
    assert "v2/sprints/2024-03-05_2024-03-05/team_123.csv" in files


def test_consumer_manifests_the_asset_events_of_the_weekly_export(examples, run_dag):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    bag = examples.bag()
    weekly = run(run_dag, bag, "sei_team_weekly")
    summary = run_dag.xcom(weekly, "export_team_report")

    # The event the weekly run recorded on its outlet Asset, as the scheduler hands it on.
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .filter_by(source_dag_id="sei_team_weekly", source_run_id=weekly.run_id)
            .all()
        )
        names = [session.get(AssetModel, event.asset_id).name for event in events]
        extras = [dict(event.extra) for event in events]
    assert names == ["sei_team_weekly_reports"]
    assert extras[0]["uri"] == summary["uri"]
    assert extras[0]["rows"] == summary["rows"] > 0

    task = bag.dags["sei_team_report_consumer"].get_task("write_manifest")
    events_arg = {"sei_team_weekly_reports": [SimpleNamespace(extra=extras[0])]}
    stamp = pendulum.datetime(2024, 3, 4, 1, tz="UTC")
    uri = task.python_callable(
        triggering_asset_events=events_arg, dag_run=SimpleNamespace(run_after=stamp)
    )
    (entry,) = read_csv((examples.out / "manifests/team_weekly_20240304T010000.csv").read_bytes())
    assert uri.endswith("manifests/team_weekly_20240304T010000.csv")
    assert entry["source"] == "asset event"
    assert entry["uri"] == summary["uri"]
    assert int(entry["rows"]) == summary["rows"]
    assert int(entry["columns"]) == len(summary["columns"])
    assert (entry["date_start"], entry["date_end"]) == (WEEK, "2024-03-03")


def test_productivity_export_lands_encrypted_on_s3(examples, run_dag, s3, monkeypatch):
    monkeypatch.setenv("SEI_S3_EXPORT_BASE", f"s3://aws_default@{s3.bucket}/sei/")
    bag = examples.bag()
    dag_run = run(run_dag, bag, "sei_export_productivity_weekly")

    key = f"sei/productivity/{WEEK}/developers.csv.gz"
    assert s3.keys() == [key]
    assert s3.uploads() == []
    head = s3.client().head_object(Bucket=s3.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/gzip"
    developers = read_csv(gzip.decompress(s3.read(key)))
    summary = run_dag.xcom(dag_run, "export_developer_productivity")
    assert summary["uri"] == f"s3://{s3.bucket}/{key}"
    assert summary["rows"] == len(developers) > 0
    assert written(examples.out) == []  # nothing went to the local fallback


@pytest.mark.parametrize(
    ("dag_id", "paths", "fault"),
    [
        pytest.param(
            "sei_dora_monthly",
            ["dora/2024-02/dora_median.csv", "dora/2024-02/dora_p90.csv"],
            "truncate",
            id="legacy-cut-body",
        ),
        pytest.param(
            "sei_export_dora_org_tree_monthly",
            ["v2/dora/2024-02/dora_org_tree.csv"],
            "cut_download",
            id="v2-cut-download",
        ),
        pytest.param(
            "sei_export_dora_org_tree_monthly",
            ["v2/dora/2024-02/dora_org_tree.csv"],
            "job_failed",
            id="v2-job-failed",
        ),
    ],
)
def test_a_failed_rerun_keeps_last_months_file(examples, run_dag, dag_id, paths, fault):
    # "Retries are safe": a re-run that breaks mid-download or whose job fails leaves the
    # file of the good run byte for byte, and no temporary file beside it.
    from sei_emulator import Fault, Faults, JobFault

    bag = examples.bag()
    run(run_dag, bag, dag_id)
    good = {path: (examples.out / path).read_bytes() for path in paths}
    before = written(examples.out)

    examples.emulator.reset()  # forget the job, so the re-run's request is not reused
    examples.emulator.set_faults(
        {
            "truncate": Faults(script=[Fault.truncate(0.5)] * 8),
            "cut_download": Faults(jobs=[JobFault.cut_download(0.5, times=8)]),
            "job_failed": Faults(jobs=[JobFault.fail("warehouse partition is locked")]),
        }[fault]
    )
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0  # fail now rather than wait the example's retry_delay
    dag_run = run_dag(dag, LOGICAL_DATE)

    assert set(run_dag.states(dag_run).values()) == {"failed"}
    if fault == "job_failed":
        assert [job.status.value for job in examples.emulator.jobs.values()] == ["FAILED"]
    else:
        assert any(r.fault for r in examples.emulator.requests)
    assert {path: (examples.out / path).read_bytes() for path in paths} == good
    assert written(examples.out) == before
