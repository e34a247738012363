"""Real DAG runs (``dag.test()``): the date rule on every kind of timetable, the bytes
written, the XCom, task states and asset events, as Airflow itself runs the operators."""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
import pytest
import requests
from airflow.sdk import DAG, Asset
from sei_emulator import Fault, Faults

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


def one_task_dag(dag_id, schedule, tmp_path, tz="UTC", year=2024, **op_kwargs):
    start_date = pendulum.datetime(year, 1, 1, tz=tz)  # the DAG's timezone is its start_date's
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


# -- the sei namespace on every kind of run ----------------------------------------------------

NAMESPACED = (
    "{kind}/{{{{ sei.export_type }}}}-{{{{ sei.collection_id }}}}/"
    "{{{{ sei.date_start }}}}_{{{{ sei.date_end }}}}{{{{ sei.suffix }}}}"
)
WEEKLY = CronDataIntervalTimetable("0 0 * * 1", timezone="UTC")


@pytest.mark.parametrize(
    ("kind", "schedule", "logical_date", "run_after", "expected"),
    [
        pytest.param(
            "scheduled",
            WEEKLY,
            pendulum.datetime(2024, 1, 8, tz="UTC"),
            None,
            ("2024-01-01", "2024-01-07"),
            id="scheduled-weekly",
        ),
        pytest.param(
            "backfilled",  # a past interval: the operator sees only the interval, as for any run
            WEEKLY,
            pendulum.datetime(2023, 6, 5, tz="UTC"),
            None,
            ("2023-05-29", "2023-06-04"),
            id="backfilled-past-week",
        ),
        pytest.param(
            "asset",
            [Asset("sei://upstream-namespace")],
            None,
            pendulum.datetime(2024, 5, 2, 3, tz="UTC"),
            ("2024-05-01", "2024-05-01"),
            id="asset-triggered",
        ),
    ],
)
def test_the_sei_namespace_on_every_kind_of_run(
    kind, schedule, logical_date, run_after, expected, run_dag, sei_conn, sei_emulator, tmp_path
):
    dag = one_task_dag(
        f"namespace_{kind}",
        schedule,
        tmp_path,
        year=2023,
        collection_id="{{ 100 + 23 }}",
        output_format="csv.gz",
        destination=f"file://{tmp_path}/" + NAMESPACED.format(kind=kind),
    )
    dag_run = run_dag(dag, logical_date, run_after=run_after)
    assert run_dag.states(dag_run) == {"export": "success"}
    start, end = expected
    path = tmp_path / kind / "team-123" / f"{start}_{end}.csv.gz"
    result = run_dag.xcom(dag_run, "export")
    assert result["uri"] == f"file://{path}"
    assert path.stat().st_size == result["bytes"] > 0
    assert (result["date_start"], result["date_end"]) == expected
    assert requested_range(sei_emulator) == expected


def test_the_sei_namespace_on_a_manual_run_without_a_logical_date(
    run_dag, sei_conn, sei_emulator, tmp_path
):
    # What Airflow 3's "Trigger" does by default: no logical date, so no data interval.
    dag = one_task_dag(
        "namespace_manual",
        None,
        tmp_path,
        destination=f"file://{tmp_path}/" + NAMESPACED.format(kind="manual"),
    )
    dag_run = run_dag(dag)
    assert run_dag.states(dag_run) == {"export": "success"}
    day = pendulum.instance(dag_run.run_after).in_timezone("UTC").date() - timedelta(days=1)
    expected = (day.isoformat(), day.isoformat())
    result = run_dag.xcom(dag_run, "export")
    assert (result["date_start"], result["date_end"]) == expected
    assert result["uri"] == f"file://{tmp_path}/manual/team-123/{day}_{day}.csv"
    assert requested_range(sei_emulator) == expected


def test_the_one_day_fallback_is_logged_as_a_warning(run_dag, sei_conn, sei_emulator, tmp_path):
    # A manual run of a schedule=None DAG has a zero-length data interval. Airflow sets up the
    # task's logging itself: a handler on the module's own logger sees what the task logs.
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("airflow_provider_sei.operators._dates")
    logger.addHandler(handler)
    try:
        dag = one_task_dag("fallback_warning", None, tmp_path)
        dag_run = run_dag(dag, pendulum.datetime(2024, 1, 8, 15, tz="UTC"))
    finally:
        logger.removeHandler(handler)
    assert run_dag.states(dag_run) == {"export": "success"}
    assert run_dag.xcom(dag_run, "export")["date_start"] == "2024-01-07"
    fallback = [r for r in records if "interval timetable" in r.getMessage()]
    # once, though the range is used to render the fields and to export
    assert [r.levelno for r in fallback] == [logging.WARNING]


def test_a_mapped_report_task_renders_the_sei_namespace(run_dag, sei_conn, sei_emulator, tmp_path):
    # A mapped task is rendered by MappedOperator, not by the operator's render_template_fields.
    with DAG("namespace_mapped", schedule=WEEKLY, start_date=START, catchup=False) as dag:
        SEITeamReportOperator.partial(
            task_id="export",
            destination=f"file://{tmp_path}/{{{{ sei.collection_id }}}}-{{{{ sei.date_end }}}}.csv",
        ).expand(collection_id=["1", "123"])
    dag_run = run_dag(dag, pendulum.datetime(2024, 1, 8, tz="UTC"))
    assert run_dag.states(dag_run) == {"export[0]": "success", "export[1]": "success"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-2024-01-07.csv", "123-2024-01-07.csv"]
    assert run_dag.xcom(dag_run, "export", map_index=1)["uri"] == (
        f"file://{tmp_path}/123-2024-01-07.csv"
    )


# -- failing once: what no retry can fix --------------------------------------------------------


def try_numbers(dag_run):
    return {ti.task_id: ti.try_number for ti in dag_run.get_task_instances()}


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"collection_id": "\u00b2"}, id="superscript-id"),
        pytest.param({"team_ref_id": "9" * 5000}, id="5000-digit-id"),
        pytest.param({"collection_id": "Platform Team"}, id="a-name-not-an-id"),
        pytest.param({"granularity": "hourly"}, id="granularity"),
        pytest.param({"destination": "file:///{{ sei.nope }}/x.csv"}, id="unknown-namespace-key"),
        pytest.param({"harness_sei_conn_id": "no_such_connection"}, id="unknown-connection"),
    ],
)
def test_bad_input_fails_the_task_once_without_retries(
    kwargs, run_dag, sei_conn, sei_emulator, tmp_path
):
    kwargs.setdefault("collection_id", "123")
    with DAG(
        "fails_once",
        schedule=WEEKLY,
        start_date=START,
        catchup=False,
        default_args={"retries": 3, "retry_delay": timedelta(0)},
    ) as dag:
        kwargs.setdefault("destination", f"file://{tmp_path}/out.csv")
        SEITeamReportOperator(task_id="export", **kwargs)
    dag_run = run_dag(dag, pendulum.datetime(2024, 1, 8, tz="UTC"))
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert try_numbers(dag_run) == {"export": 1}
    assert not [r for r in sei_emulator.requests if r.path.endswith("/reports")]
    assert list(tmp_path.iterdir()) == []


def test_a_transient_failure_is_retried_by_the_task(run_dag, sei_conn, sei_emulator, tmp_path):
    # The control for the test above: a 503 after the hook's own retries may pass next time.
    sei_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.status(503), Fault.status(503)]))
    with DAG(
        "retried",
        schedule=WEEKLY,
        start_date=START,
        catchup=False,
        default_args={"retries": 2, "retry_delay": timedelta(0)},
    ) as dag:
        SEITeamReportOperator(
            task_id="export", collection_id="123", destination=f"file://{tmp_path}/out.csv"
        )
    dag_run = run_dag(dag, pendulum.datetime(2024, 1, 8, tz="UTC"))
    assert run_dag.states(dag_run) == {"export": "success"}
    assert try_numbers(dag_run) == {"export": 3}
    assert [r.status for r in sei_emulator.requests] == [503, 503, 200]
