"""Downstream of the weekly team export: runs whenever a fresh report lands (an Asset event).

Shows: a DAG scheduled on an Asset, reading the export summary the SEI operators attach to
the asset event's ``extra``.

``sei_team_weekly`` declares the ``sei_team_weekly_reports`` Asset as its outlet, and every
successful export attaches its summary (``uri``, ``bytes``, ``rows``, ``columns``,
``date_start``, ``date_end``, ...) to the asset event. This DAG is scheduled on that Asset and
writes a small manifest of the reports that triggered it: the place to start loading the
CSV into a warehouse. Run by hand (no triggering event), it summarises the newest report in
the Asset's folder instead, with the provider's streaming CSV check (constant memory).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, ObjectStoragePath, task

BASE = os.environ.get("SEI_EXPORT_BASE", f"file://{Path(__file__).resolve().parents[1]}/out")
BASE = BASE.rstrip("/")

# The same Asset sei_team_weekly.py declares as its outlet (an Asset is identified by name
# and URI, so declaring it again here refers to the same one).
SEI_TEAM_WEEKLY = Asset(name="sei_team_weekly_reports", uri=f"{BASE}/team/")
FIELDS = ["uri", "bytes", "rows", "columns", "date_start", "date_end", "source"]


def newest_report() -> dict[str, Any]:
    """Summarise the newest CSV under the Asset's folder as an asset event's extra would."""
    from airflow_provider_sei.output.csvcheck import CSVCheck

    reports = [p for p in ObjectStoragePath(SEI_TEAM_WEEKLY.uri).rglob("*.csv") if p.is_file()]
    if not reports:
        raise FileNotFoundError(f"No report under {SEI_TEAM_WEEKLY.uri}: run sei_team_weekly first")
    newest = max(reports, key=lambda p: (p.stat().st_mtime, str(p)))
    check = CSVCheck()  # counts rows and reads the header while the file streams through
    with newest.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            check.feed(chunk)
    check.finish()
    return {"uri": str(newest), "bytes": check.bytes, "rows": check.rows, "columns": check.columns}


with DAG(
    dag_id="sei_team_report_consumer",
    description="Manifest of each fresh SEI team report (scheduled on its Asset)",
    schedule=[SEI_TEAM_WEEKLY],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sei", "example", "assets"],
):

    @task
    def write_manifest(triggering_asset_events=None, dag_run=None) -> str:
        """Write one manifest row per report that triggered this run; return its URI."""
        events = [event for events in (triggering_asset_events or {}).values() for event in events]
        rows = [{**event.extra, "source": "asset event"} for event in events]
        if not rows:
            rows = [{**newest_report(), "source": "newest file (manual run)"}]
        out = io.StringIO()
        writer = csv.DictWriter(out, FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            print(f"Report {row['uri']}: {row['rows']} rows, {len(row['columns'])} columns")
            writer.writerow({**row, "columns": len(row["columns"])})
        stamp = dag_run.run_after.strftime("%Y%m%dT%H%M%S")
        manifest = ObjectStoragePath(f"{BASE}/manifests/team_weekly_{stamp}.csv")
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(out.getvalue())
        return str(manifest)

    write_manifest()
