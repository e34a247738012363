"""Monthly DORA export of a whole org tree with one V2 export job, waiting in the triggerer.

Shows: ``SEIExportOperator`` with ``export_type="efficiency"`` scoped by ``org_tree_name``
(one asynchronous job covers every team of the tree: Harness's path for org-wide exports,
which can time out on the legacy reports endpoint) and ``deferrable=True``: the task creates
the job and defers, the triggerer polls it without holding a worker slot, and the task
resumes to stream the download to the destination.

Runs on the 1st of each month at 03:00 UTC for the month that just ended
(``CronDataIntervalTimetable``: ``[1st, 1st of next month)``, exported as ``1st .. last day``),
one CSV per month in a folder named after it (``{{ sei.date_start[:7] }}``).

The tree's name is a DAG param (default: the ``SEI_ORG_TREE_NAME`` environment variable), so
a manual run can export another tree. The Harness SEI connection needs the
``project_identifier`` and ``org_identifier`` extras for every V2 export.
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
#: Seconds between two polls of the job (Harness: poll, do not re-create).
POLL_INTERVAL = float(os.environ.get("SEI_POLL_INTERVAL", "60"))

with DAG(
    dag_id="sei_export_dora_org_tree_monthly",
    description="Monthly DORA metrics of a whole org tree (V2 export job, deferred)",
    schedule=CronDataIntervalTimetable("0 3 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "org_tree_name": Param(
            os.environ.get("SEI_ORG_TREE_NAME", "Engineering"),
            type="string",
            minLength=1,
            description="The org tree to export, as named in Harness SEI",
        )
    },
    tags=["sei", "example", "dora", "v2"],
):
    SEIExportOperator(
        task_id="export_dora_org_tree",
        export_type="efficiency",
        org_tree_name="{{ params.org_tree_name }}",
        granularity="monthly",  # any case: sent as the type's own MONTHLY
        metric_groups=["lttc", "deployment_frequency", "cfr", "mttr"],  # None or [] = all
        aggregation="median",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        max_wait=2 * 3600,  # the job may take two hours before the task fails
        destination=BASE + "/v2/dora/{{ sei.date_start[:7] }}/dora_org_tree.csv",
    )
