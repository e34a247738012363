"""Real DAG runs (``dag.test()``): the date rule on every kind of timetable, the bytes
written, the XCom, task states and asset events, as Airflow itself runs the operators."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
import requests
from airflow.sdk import DAG, Asset

try:
    from airflow.sdk import (
        CronDataIntervalTimetable,
        CronTriggerTimetable,
        DeltaDataIntervalTimetable,
    )
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def one_task_dag(dag_id, schedule, tmp_path, tz="UTC", **op_kwargs):
    start_date = pendulum.datetime(2024, 1, 1, tz=tz)  # the DAG's timezone is its start_date's
    with DAG(dag_id, schedule=schedule, start_date=start_date, catchup=False) as dag:
        op_kwargs.setdefault("destination", f"file://{tmp_path}/{dag_id}.csv")
        op_kwargs.setdefault("collection_id", "123")
        SEITeamReportOperator(task_id="export", **op_kwargs)
    return dag


def requested_range(emulator):
    body = [r.body for r in emulator.requests if r.path.endswith("/reports")][-1]
    return body["dateStart"], body["dateEnd"]


@pytest.mark.parametrize(
    ("schedule", "logical_date", "expected"),
    [
        pytest.param(
            CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
            pendulum.datetime(2024, 1, 8, tz="UTC"),
            ("2024-01-01", "2024-01-07"),
            id="cron-data-interval-weekly",
        ),
        pytest.param(
            CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
            pendulum.datetime(2024, 3, 1, tz="UTC"),
            ("2024-02-01", "2024-02-29"),
            id="cron-data-interval-monthly",
        ),
        pytest.param(
            CronDataIntervalTimetable("0 0 * * 1", timezone="Europe/Amsterdam"),
            pendulum.datetime(2024, 1, 8, tz="Europe/Amsterdam"),
            ("2024-01-01", "2024-01-07"),
            id="cron-data-interval-dag-timezone",
        ),
        pytest.param(
            CronTriggerTimetable("0 0 * * 1", timezone="UTC", interval=timedelta(weeks=1)),
            pendulum.datetime(2024, 1, 8, tz="UTC"),
            ("2024-01-01", "2024-01-07"),
            id="cron-trigger-with-interval",
        ),
        pytest.param(
            CronTriggerTimetable("0 0 * * *", timezone="UTC"),
            pendulum.datetime(2024, 1, 8, tz="UTC"),
            ("2024-01-07", "2024-01-07"),
            id="cron-trigger-zero-length",
        ),
        pytest.param(
            "@daily",  # a cron string is a zero-length CronTriggerTimetable on Airflow 3
            pendulum.datetime(2024, 1, 8, 15, tz="UTC"),
            ("2024-01-07", "2024-01-07"),
            id="cron-string",
        ),
        pytest.param(
            DeltaDataIntervalTimetable(timedelta(days=14)),
            pendulum.datetime(2024, 1, 15, tz="UTC"),
            ("2024-01-01", "2024-01-14"),
            id="delta-data-interval",
        ),
        pytest.param(
            None,
            pendulum.datetime(2024, 1, 8, 9, 30, tz="UTC"),
            ("2024-01-07", "2024-01-07"),
            id="schedule-none-manual",
        ),
    ],
)
def test_date_range_on_each_timetable(
    schedule, logical_date, expected, run_dag, sei_conn, sei_emulator, tmp_path
):
    dag_id = "dates_" + str(abs(hash((str(schedule), str(logical_date)))))
    dag = one_task_dag(dag_id, schedule, tmp_path, tz=logical_date.timezone_name)
    dag_run = run_dag(dag, logical_date)
    assert run_dag.states(dag_run) == {"export": "success"}
    result = run_dag.xcom(dag_run, "export")
    assert (result["date_start"], result["date_end"]) == expected
    assert requested_range(sei_emulator) == expected


def test_a_run_without_logical_date_reports_the_day_before_run_after(
    run_dag, sei_conn, sei_emulator, tmp_path
):
    # What an asset-triggered run looks like: no logical date, no data interval.
    dag = one_task_dag(
        "dates_no_logical_date",
        [Asset("sei://upstream")],
        tmp_path,
        destination=f"file://{tmp_path}/out/",
    )
    dag_run = run_dag(dag, None, run_after=pendulum.datetime(2024, 5, 2, 3, tz="UTC"))
    assert run_dag.states(dag_run) == {"export": "success"}
    result = run_dag.xcom(dag_run, "export")
    assert (result["date_start"], result["date_end"]) == ("2024-05-01", "2024-05-01")


def test_explicit_dates_win_over_the_interval(run_dag, sei_conn, sei_emulator, tmp_path):
    dag = one_task_dag(
        "dates_explicit",
        CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
        tmp_path,
        date_start="{{ (data_interval_start - macros.timedelta(days=28)) | ds }}",
    )
    dag_run = run_dag(dag, pendulum.datetime(2024, 2, 5, tz="UTC"))
    assert requested_range(sei_emulator) == ("2024-01-01", "2024-02-04")
    assert run_dag.xcom(dag_run, "export")["date_start"] == "2024-01-01"


def test_contradicting_explicit_date_fails_the_task(run_dag, sei_conn, sei_emulator, tmp_path):
    dag = one_task_dag(
        "dates_contradicting",
        CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
        tmp_path,
        date_start="2030-01-01",
    )
    dag_run = run_dag(dag, pendulum.datetime(2024, 2, 5, tz="UTC"))
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert not [r for r in sei_emulator.requests if r.path.endswith("/reports")]


def test_a_dag_writes_exactly_the_bytes_the_server_sent(run_dag, sei_conn, sei_emulator, tmp_path):
    dag = one_task_dag(
        "bytes_identical",
        CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
        tmp_path,
        destination=f"file://{tmp_path}/{{{{ data_interval_start | ds }}}}/",
        productivity_metrics=["PR_VELOCITY_PER_DEV"],
        efficiency_metrics=[],
        calculation_type="P95",
        team_ref_id=1,
        collection_id="1",
    )
    dag_run = run_dag(dag, pendulum.datetime(2024, 4, 1, tz="UTC"))
    result = run_dag.xcom(dag_run, "export")
    body = [r.body for r in sei_emulator.requests if r.path.endswith("/reports")][-1]
    direct = requests.post(
        f"{sei_emulator.base_url}/v2/insights/teams/reports",
        params={"format": "csv"},
        json=body,
        headers={"x-api-key": sei_conn.api_key},
        timeout=10,
    )
    direct.raise_for_status()
    written = (tmp_path / "2024-03-01" / result["filename"]).read_bytes()
    assert written == direct.content
    assert result["bytes"] == len(direct.content)
    assert result["rows"] == direct.content.count(b"\n") - 1 == 12  # the default org's teams
    assert result["columns"][0] == "Collection Name"


def test_if_empty_skip_marks_the_task_skipped(run_dag, sei_conn, sei_emulator, tmp_path):
    with DAG("empty_skip", schedule=None, start_date=START) as dag:
        SEIContributorReportOperator(
            task_id="export",
            collection_id="123",
            date_start="2020-01-01",
            date_end="2020-01-31",
            if_empty="skip",
            destination=f"file://{tmp_path}/c.csv",
        )
    dag_run = run_dag(dag, pendulum.datetime(2024, 1, 1, tz="UTC"))
    assert run_dag.states(dag_run) == {"export": "skipped"}
    assert list(tmp_path.iterdir()) == []


def test_outlet_asset_event_carries_the_summary(run_dag, sei_conn, sei_emulator, tmp_path):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    asset = Asset(name="sei_run_test_reports", uri=f"file://{tmp_path}/assets/latest.csv")
    with DAG("asset_outlet", schedule=None, start_date=START) as dag:
        SEITeamReportOperator(
            task_id="export", collection_id="456", date_start="2024-01-01", date_end="2024-01-31",
            destination=asset,
        )  # fmt: skip
    dag_run = run_dag(dag, pendulum.datetime(2024, 2, 1, tz="UTC"))
    result = run_dag.xcom(dag_run, "export")
    with create_session() as session:
        asset_id = select(AssetModel.id).where(AssetModel.name == "sei_run_test_reports")
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.asset_id == asset_id.scalar_subquery())
        ).all()
        assert [event.extra for event in events] == [result]
    assert result["uri"] == asset.uri
