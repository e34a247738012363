"""Weekly team export (legacy reports API): productivity and DORA metrics of the whole org.

Shows: ``SEITeamReportOperator`` on an interval timetable, a folder destination templated on
``{{ sei.date_start }}``, and an outlet Asset whose events carry the export's summary.

Runs every Monday at 00:00 UTC for the week that just ended (Monday to Sunday):
``CronDataIntervalTimetable`` gives each run a one-week data interval, and the operator
turns ``[Monday, next Monday)`` into ``dateStart=Monday, dateEnd=Sunday``. The file lands in
a folder named after the week's first day (``{{ sei.date_start }}``: the resolved range, so
the template works on scheduled, backfilled, manual and asset-triggered runs alike) and takes
the server's filename.

The task declares ``SEI_TEAM_WEEKLY`` as an outlet Asset: each export records an asset event
whose ``extra`` is the export summary (uri, bytes, rows, columns, dates), and the DAG in
``sei_team_report_consumer.py`` is scheduled on it.

Set ``SEI_EXPORT_BASE`` to write elsewhere, e.g. ``s3://aws_default@my-bucket/sei``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sei.operators import SEITeamReportOperator

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")

#: Where the weekly team reports land; downstream DAGs schedule on it.
SEI_TEAM_WEEKLY = Asset(name="sei_team_weekly_reports", uri=f"{BASE}/team/")

with DAG(
    dag_id="sei_team_weekly",
    description="Weekly SEI team report: productivity and DORA metrics",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sei", "example"],
):
    SEITeamReportOperator(
        task_id="export_team_report",
        harness_sei_conn_id="harness_sei_default",
        collection_id="1",  # the org tree's root; team_ref_id defaults to the same id
        granularity="weekly",
        productivity_metrics=[
            "PR_VELOCITY_PER_DEV",
            "CODING_DAYS_PER_DEV",
            "TIME_TO_FIRST_COMMENT",
        ],
        efficiency_metrics=[
            "LEAD_TIME_FOR_CHANGES",
            "DEPLOYMENT_FREQUENCY",
            "CHANGE_FAILURE_RATE",
            "MEAN_TIME_TO_RESTORE",
        ],
        # A folder (trailing "/"): the file takes the server's name, e.g.
        # team_report_1_2024-02-26_2024-03-03_weekly.csv
        destination=BASE + "/team/{{ sei.date_start }}/",
        outlets=[SEI_TEAM_WEEKLY],
    )
