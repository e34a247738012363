"""Quarterly sprint export with a V2 export job: one row per sprint of a team.

Shows: ``SEIExportOperator`` with ``export_type="sprint"``, ``granularity="sprint"``,
``metric_level="sprint"``, the type's own ``options`` (``computationMode``) passed through,
polling in the task, and a team picked by a DAG param (a manual run can export another team;
``{{ sei.team_id }}`` names the file after it).

Runs on the first day of each quarter for the quarter that just ended
(``CronDataIntervalTimetable``), e.g. ``2023-10-01 .. 2023-12-31``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sei.operators import SEIExportOperator

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")
POLL_INTERVAL = float(os.environ.get("SEI_POLL_INTERVAL", "30"))

with DAG(
    dag_id="sei_export_sprint_quarterly",
    description="Quarterly sprint metrics of a team, one row per sprint (V2 export job)",
    schedule=CronDataIntervalTimetable("0 4 1 1,4,7,10 *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"team_id": Param("123", type="string", minLength=1, description="The team's id")},
    tags=["sei", "example", "v2"],
):
    SEIExportOperator(
        task_id="export_sprints",
        export_type="sprint",
        team_id="{{ params.team_id }}",
        granularity="sprint",
        metric_level="sprint",
        metric_groups=["work", "delivery", "deliveryAnalysis"],
        options={"computationMode": "STORY_POINTS"},
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        destination=BASE
        + "/v2/sprints/{{ sei.date_start }}_{{ sei.date_end }}/team_{{ sei.team_id }}.csv",
    )
