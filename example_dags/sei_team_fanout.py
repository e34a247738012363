"""Per-team fan-out (legacy reports API): one mapped task and one file per team.

Shows: dynamic task mapping over team ids with ``SEITeamReportOperator.partial().expand()``,
and a folder destination templated on ``{{ sei.date_start }}``.

Mapping spreads the teams across workers (and retries each on its own); an Airflow pool on
the task (``pool="sei_api"``) would cap how many hit the API at once across DAGs. The
destination is a folder, so each file takes the server's filename, which names the team and
the window. For a whole org tree in one task, paced under one rate limit, see
``SEIMultiTeamReportOperator``; for one V2 job, ``sei_export_dora_org_tree_monthly.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sei.operators import SEITeamReportOperator

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")
TEAMS = ["123", "456", "789"]

with DAG(
    dag_id="sei_team_fanout",
    description="Weekly SEI team reports, one mapped task and one file per team",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=4,
    tags=["sei", "example"],
):
    SEITeamReportOperator.partial(
        task_id="export_team",
        granularity="weekly",
        productivity_metrics=[],  # [] = every productivity metric
        efficiency_metrics=[],  # and every DORA metric
        destination=BASE + "/fanout/{{ sei.date_start }}/",
        map_index_template="team {{ task.collection_id }}",
    ).expand(collection_id=TEAMS)
