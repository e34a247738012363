"""Weekly contributor export with ratings (legacy reports API), written as typed Parquet.

Shows: ``SEIContributorReportOperator`` with ``include_ratings``, ``output_format="parquet"``
(numbers as float64/int64, names and ratings as strings, dates as ``date32``; needs
``airflow-provider-sei[parquet]``) and ``add_columns``: the period, the collection and the
export time on every row, so weekly files load into one warehouse table without parsing
dates out of object keys.

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

from airflow_provider_sei.operators import SEIContributorReportOperator

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")

with DAG(
    dag_id="sei_contributors_weekly",
    description="Weekly SEI contributor report with ratings, as Parquet",
    schedule=CronTriggerTimetable("0 0 * * 1", timezone="UTC", interval=timedelta(weeks=1)),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sei", "example", "parquet"],
):
    SEIContributorReportOperator(
        task_id="export_contributors",
        collection_id="123",
        granularity="weekly",
        include_ratings=True,
        metrics=None,  # None or [] = all seven contributor metrics
        output_format="parquet",
        add_columns=["collection_id", "date_start", "date_end", "exported_at"],
        # {{ sei.suffix }} follows output_format: contributors_123.parquet
        destination=BASE
        + "/contributors/{{ sei.date_start }}/contributors_{{ sei.collection_id }}{{ sei.suffix }}",
    )
