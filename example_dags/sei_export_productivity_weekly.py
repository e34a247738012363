"""Weekly developer-level productivity export with a V2 export job, stored gzip-compressed.

Shows: ``SEIExportOperator`` with ``export_type="productivity"`` and
``metric_level="developer"`` (one row per developer), ``compression="gzip"`` (the job is asked
for a ``.csv.gz`` and its bytes are stored as downloaded; ``{{ sei.suffix }}`` is then
``.csv.gz``), metadata columns (``add_columns``), and S3 write options.

Meant for S3: set ``SEI_S3_EXPORT_BASE`` to e.g. ``s3://aws_default@my-sei-bucket/sei`` (the
``aws_default@`` part names the Airflow connection of the bucket; ``dest_conn_id`` does the
same). Unset, it falls back to ``SEI_EXPORT_BASE`` (by default the repository's ``out/``
folder), which is what ``make demo`` uses. ``dest_storage_options`` go to the object's upload
(server-side encryption, content type); a local destination has no use for them.

Polls in the task (``deferrable=False``): a weekly team export finishes in seconds to minutes.
Runs every Monday at 00:00 UTC for the week before (``CronDataIntervalTimetable``).
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

from airflow_provider_sei.operators import SEIExportOperator

LOCAL = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = os.environ.get("SEI_S3_EXPORT_BASE", LOCAL).rstrip("/")
POLL_INTERVAL = float(os.environ.get("SEI_POLL_INTERVAL", "30"))

with DAG(
    dag_id="sei_export_productivity_weekly",
    description="Weekly developer productivity (V2 export job), gzip-compressed, to S3",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sei", "example", "v2", "s3"],
):
    SEIExportOperator(
        task_id="export_developer_productivity",
        export_type="productivity",
        team_id="1",  # the root team: every developer of the org
        granularity="weekly",
        metric_level="developer",
        metric_groups=["activity", "velocity", "volume", "collaboration"],
        compression="gzip",
        add_columns=["export_type", "date_start", "date_end", "exported_at"],
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        destination=BASE + "/productivity/{{ sei.date_start }}/developers{{ sei.suffix }}",
        dest_storage_options={"ServerSideEncryption": "AES256", "ContentType": "application/gzip"},
    )
