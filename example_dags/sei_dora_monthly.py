"""Monthly DORA export (legacy reports API), twice: the median and the 90th percentile.

Shows: one operator per ``calculation_type`` side by side, and a destination templated on the
month of the resolved range (``{{ sei.date_start[:7] }}``, e.g. ``2024-02``).

Runs on the 1st of each month for the month that just ended: ``CronDataIntervalTimetable``
gives ``[1st, 1st of next month)``, exported as ``1st .. last day``. The two tasks differ
only in ``calculation_type``; their files sit side by side in a folder named after the month.
Retries are safe: a failed attempt leaves the previous file as it was.

For a whole org tree in one job, see ``sei_export_dora_org_tree_monthly.py`` (V2 export API).
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
MONTH = "{{ sei.date_start[:7] }}"  # the resolved range's month, e.g. 2024-02

with DAG(
    dag_id="sei_dora_monthly",
    description="Monthly DORA metrics per team, MEDIAN and P90",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["sei", "example", "dora"],
):
    for calculation in ("MEDIAN", "P90"):
        SEITeamReportOperator(
            task_id=f"export_dora_{calculation.lower()}",
            collection_id="1",
            granularity="monthly",
            efficiency_metrics=[],  # [] = every DORA metric
            calculation_type=calculation,
            destination=f"{BASE}/dora/{MONTH}/dora_{calculation.lower()}.csv",
        )
