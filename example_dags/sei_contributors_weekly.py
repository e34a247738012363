"""Weekly contributor export with ratings: one row per developer, with performance tiers.

Uses ``CronTriggerTimetable`` *with* ``interval``: the run fires Monday 00:00 UTC and its
data interval is the week before it (a cron string alone would give a zero-length interval
on Airflow 3, and so a one-day report).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG

try:
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_sei.operators.reports import SEIContributorReportOperator

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")

with DAG(
    dag_id="sei_contributors_weekly",
    description="Weekly SEI contributor report with ratings",
    schedule=CronTriggerTimetable("0 0 * * 1", timezone="UTC", interval=timedelta(weeks=1)),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sei", "example"],
):
    SEIContributorReportOperator(
        task_id="export_contributors",
        collection_id="123",
        granularity="weekly",
        include_ratings=True,
        metrics=None,  # None or [] = all seven contributor metrics
        destination=f"{BASE}/contributors/{{{{ data_interval_start | ds }}}}/contributors_123.csv",
    )
