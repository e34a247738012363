"""Warehouse-ready output in real DAG runs (``dag.test()``), read back as a loader would.

One destination template on scheduled and manual runs; the eight metadata columns; Parquet's
types and values against the same report as CSV; ``csv.gz``; store write options and an
``ObjectStoragePath``'s own filesystem reaching a real S3 endpoint; the merged multi-team
report naming the team each row came from.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date, datetime, timezone
from typing import Any

import pendulum
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from airflow.sdk import DAG, ObjectStoragePath

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sei.operators.exports import SEIExportOperator
from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator
from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)
from airflow_provider_sei.output.columns import METADATA_COLUMNS
from airflow_provider_sei.output.formats import NULL_VALUES

START = pendulum.datetime(2024, 1, 1, tz="UTC")
WEEK = {"date_start": "2024-01-01", "date_end": "2024-01-07"}
WEEKLY = CronDataIntervalTimetable("0 0 * * 1", timezone="UTC")
#: A V2 efficiency export of one team's quarter.
EFFICIENCY = {
    "export_type": "efficiency",
    "team_id": "123",
    "granularity": "monthly",
    "date_start": "2024-01-01",
    "date_end": "2024-03-31",
    "poll_interval": 0.01,
}


def records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def task_instance(dag_run: Any, task_id: str) -> Any:
    (ti,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    return ti


def requested_ranges(emulator: Any) -> list[tuple[str, str]]:
    bodies = [r.body for r in emulator.requests if r.path.endswith("/reports")]
    return [(b["dateStart"], b["dateEnd"]) for b in bodies]


# -- one template for every kind of run -----------------------------------------------------


@pytest.mark.parametrize(
    ("logical_date", "run_after", "expected"),
    [
        pytest.param(
            pendulum.datetime(2024, 1, 8, tz="UTC"),
            None,
            ("2024-01-01", "2024-01-07"),
            id="scheduled-week",
        ),
        pytest.param(
            None,  # a manual "Trigger" without a logical date
            pendulum.datetime(2024, 5, 2, 3, tz="UTC"),
            ("2024-05-01", "2024-05-01"),
            id="manual-no-logical-date",
        ),
    ],
)
def test_a_destination_template_on_sei_dates_serves_every_kind_of_run(
    logical_date, run_after, expected, run_dag, sei_conn, sei_emulator, tmp_path
):
    with DAG("output_template", schedule=WEEKLY, start_date=START, catchup=False) as dag:
        SEITeamReportOperator(
            task_id="export",
            collection_id="123",
            destination=(
                f"file://{tmp_path}/team/{{{{ sei.collection_id }}}}/"
                "{{ sei.date_start }}_{{ sei.date_end }}{{ sei.suffix }}"
            ),
        )
    dag_run = run_dag(dag, logical_date, run_after=run_after)
    assert run_dag.states(dag_run) == {"export": "success"}
    assert task_instance(dag_run, "export").try_number == 1  # no failed first try

    written = tmp_path / "team" / "123" / f"{expected[0]}_{expected[1]}.csv"
    result = run_dag.xcom(dag_run, "export")
    assert result["uri"] == f"file://{written}"
    assert (result["date_start"], result["date_end"]) == expected
    assert requested_ranges(sei_emulator) == [expected]
    assert written.stat().st_size == result["bytes"] > 0
    assert sorted(p.name for p in written.parent.iterdir()) == [written.name]


# -- metadata columns -----------------------------------------------------------------------


def test_all_eight_metadata_columns_are_appended_to_every_row(run_dag, sei_conn, sei_emulator, s3):
    with DAG("output_columns", schedule=None, start_date=START, catchup=False) as dag:
        SEITeamReportOperator(
            task_id="plain",
            collection_id="123",
            destination=f"s3://{s3.bucket}/plain.csv",
            dest_conn_id=s3.conn_id,
            **WEEK,
        )
        SEITeamReportOperator(
            task_id="wide",
            collection_id="123",
            destination=f"s3://{s3.bucket}/wide.csv",
            dest_conn_id=s3.conn_id,
            add_columns="{{ " + json.dumps(list(METADATA_COLUMNS)) + " }}",  # templated
            **WEEK,
        )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"plain": "success", "wide": "success"}

    plain, wide = records(s3.read("plain.csv")), records(s3.read("wide.csv"))
    assert wide[0] == [*plain[0], *METADATA_COLUMNS]
    assert len(wide) == len(plain) > 1
    assert [row[: len(plain[0])] for row in wide] == plain  # the report's own cells untouched
    started = task_instance(dag_run, "wide").start_date
    expected = {
        "date_start": "2024-01-01",
        "date_end": "2024-01-07",
        "granularity": "weekly",
        "collection_id": "123",
        "team_id": "123",
        "export_type": "team",
        "run_id": dag_run.run_id,
    }
    for row in wide[1:]:
        values = dict(zip(METADATA_COLUMNS, row[len(plain[0]) :], strict=True))
        exported_at = datetime.fromisoformat(values.pop("exported_at"))
        assert exported_at.utcoffset() == timezone.utc.utcoffset(None)
        assert exported_at == started
        assert values == expected

    table = pacsv.read_csv(pa.BufferReader(s3.read("wide.csv")))
    assert table.column_names == wide[0]
    assert table.num_rows == run_dag.xcom(dag_run, "wide")["rows"] == len(wide) - 1


# -- Parquet --------------------------------------------------------------------------------


def _cell(value: str, kind: pa.DataType) -> Any:
    """A CSV cell as the Parquet file should hold it."""
    if pa.types.is_string(kind):
        return value
    if value.strip() in NULL_VALUES:
        return None
    if pa.types.is_date32(kind):
        return date.fromisoformat(value.strip())
    return float(value)


def _same_values(table: pa.Table, csv_records: list[list[str]]) -> None:
    header, rows = csv_records[0], csv_records[1:]
    assert table.column_names[: len(header)] == header
    assert table.num_rows == len(rows)
    for index, name in enumerate(header):
        kind = table.schema.field(name).type
        assert table.column(name).to_pylist() == [_cell(r[index], kind) for r in rows], name


def test_parquet_is_typed_and_holds_the_reports_values(run_dag, sei_emulator, v2_conn, tmp_path):
    from sei_emulator import V2Settings

    sei_emulator.set_v2(V2Settings(complete_after_polls=0))
    contributors = {"collection_id": "123", "include_ratings": True, **WEEK}
    with DAG("output_parquet", schedule=None, start_date=START, catchup=False) as dag:
        for fmt in ("csv", "parquet"):
            SEIContributorReportOperator(
                task_id=f"contributors_{fmt.replace('.', '_')}",
                destination=f"file://{tmp_path}/contributors{{{{ sei.suffix }}}}",
                output_format=fmt,
                add_columns=list(METADATA_COLUMNS) if fmt == "parquet" else None,
                **contributors,
            )
            SEIExportOperator(
                task_id=f"efficiency_{fmt}",
                destination=f"file://{tmp_path}/efficiency{{{{ sei.suffix }}}}",
                output_format=fmt,
                add_columns=["date_start", "exported_at"] if fmt == "parquet" else None,
                **EFFICIENCY,
            )
    dag_run = run_dag(dag, START)
    assert set(run_dag.states(dag_run).values()) == {"success"}

    table = pq.read_table(tmp_path / "contributors.parquet")
    types = {field.name: field.type for field in table.schema}
    assert types["Collection Name"] == pa.string()
    ratings = [name for name in types if name.endswith("Rating")]
    assert ratings
    assert {types[name] for name in ratings} == {pa.string()}
    numbers = [n for n in types if n not in ratings and n != "Collection Name"]
    assert {types[n] for n in numbers if n not in METADATA_COLUMNS} == {pa.float64()}
    assert types["date_start"] == types["date_end"] == pa.date32()
    assert types["exported_at"] == pa.timestamp("us", tz="UTC")
    for name in ("granularity", "collection_id", "team_id", "export_type", "run_id"):
        assert types[name] == pa.string(), name
    _same_values(table, records((tmp_path / "contributors.csv").read_bytes()))
    started = task_instance(dag_run, "contributors_parquet").start_date
    assert set(table.column("exported_at").to_pylist()) == {started}
    assert set(table.column("date_start").to_pylist()) == {date(2024, 1, 1)}
    assert None in table.column("Time to First Comment").to_pylist()  # "—" is a null

    v2 = pq.read_table(tmp_path / "efficiency.parquet")
    assert v2.schema.field("Start_Date").type == v2.schema.field("End_Date").type == pa.date32()
    assert v2.schema.field("Team_Hierarchy").type == pa.string()
    _same_values(v2, records((tmp_path / "efficiency.csv").read_bytes()))
    assert v2.column("exported_at").type == pa.timestamp("us", tz="UTC")


# -- csv.gz ---------------------------------------------------------------------------------


def test_csv_gz_is_the_same_report_gzip_compressed(run_dag, sei_emulator, v2_conn, tmp_path):
    from sei_emulator import V2Settings

    # The server sends V2 exports as .csv.gz files: they are stored as downloaded.
    sei_emulator.set_v2(V2Settings(complete_after_polls=0, compression="always"))
    with DAG("output_csv_gz", schedule=None, start_date=START, catchup=False) as dag:
        for fmt in ("csv", "csv.gz"):
            name = fmt.replace(".", "_")
            SEITeamReportOperator(
                task_id=f"team_{name}",
                collection_id="123",
                destination=f"file://{tmp_path}/team{{{{ sei.suffix }}}}",
                output_format=fmt,
                **WEEK,
            )
            SEIExportOperator(
                task_id=f"efficiency_{name}",
                destination=f"file://{tmp_path}/efficiency{{{{ sei.suffix }}}}",
                output_format=fmt,
                **EFFICIENCY,
            )
    dag_run = run_dag(dag, START)
    assert set(run_dag.states(dag_run).values()) == {"success"}

    for stem in ("team", "efficiency"):
        plain = (tmp_path / f"{stem}.csv").read_bytes()
        packed = tmp_path / f"{stem}.csv.gz"
        assert packed.read_bytes()[:2] == b"\x1f\x8b"
        with gzip.open(packed, "rb") as handle:  # streamed, as a loader reads it
            assert handle.read() == plain
        assert len(records(plain)) > 1
        result = run_dag.xcom(dag_run, f"{stem}_csv_gz")
        assert result["bytes"] == packed.stat().st_size


# -- store write options --------------------------------------------------------------------

WRITE_OPTIONS = {"ServerSideEncryption": "AES256", "ContentType": "text/csv", "ACL": "public-read"}
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.mark.parametrize(
    ("report_bytes", "part_size"),
    [
        pytest.param(None, None, id="single-put"),
        pytest.param(12 << 20, 5 << 20, id="multipart-upload"),
    ],
)
def test_write_options_reach_the_s3_endpoint(
    report_bytes, part_size, run_dag, sei_conn, sei_emulator, s3, monkeypatch
):
    monkeypatch.setattr(sei_emulator, "report_bytes", report_bytes)
    options = dict(WRITE_OPTIONS)
    if part_size:
        options["block_size"] = part_size  # s3fs: the part size, so a 12 MiB report has 3
    with DAG("output_s3_options", schedule=None, start_date=START, catchup=False) as dag:
        SEITeamReportOperator(
            task_id="export",
            collection_id="123",
            destination=f"s3://{s3.bucket}/sei/{{{{ sei.date_start }}}}.csv",
            dest_conn_id=s3.conn_id,
            dest_storage_options=options,
            **WEEK,
        )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    head = s3.client().head_object(Bucket=s3.bucket, Key="sei/2024-01-01.csv")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "text/csv"
    grants = s3.client().get_object_acl(Bucket=s3.bucket, Key="sei/2024-01-01.csv")["Grants"]
    assert {"Type": "Group", "URI": ALL_USERS} in [g["Grantee"] for g in grants]
    multipart = head["ETag"].strip('"').endswith("-3")
    assert multipart == bool(part_size)
    assert head["ContentLength"] == run_dag.xcom(dag_run, "export")["bytes"]
    if report_bytes:
        assert head["ContentLength"] == report_bytes
    assert s3.uploads() == []


def test_an_object_storage_path_keeps_its_own_connection_and_filesystem(
    run_dag, sei_conn, sei_emulator, s3, monkeypatch
):
    import s3fs
    from airflow.sdk.io import store

    # The path's connection is not aws_default (which is gone): a destination reduced to a
    # plain URI would have no credentials and no endpoint.
    conn_id = "sei_own_store"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "aws"}))
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT")
    # The store attached to that connection encrypts every object it writes: an option of the
    # path's filesystem, not of the operator.
    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        endpoint_url=s3.endpoint_url,
        s3_additional_kwargs={"ServerSideEncryption": "AES256"},
        skip_instance_cache=True,
    )
    monkeypatch.setitem(
        store._STORE_CACHE, f"s3-{conn_id}", store.ObjectStore("s3", conn_id, fs=fs)
    )
    path = ObjectStoragePath(f"s3://{conn_id}@{s3.bucket}/sei/own-store.csv")
    with DAG("output_osp", schedule=None, start_date=START, catchup=False) as dag:
        SEITeamReportOperator(task_id="export", collection_id="123", destination=path, **WEEK)
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    head = s3.client().head_object(Bucket=s3.bucket, Key="sei/own-store.csv")
    assert head["ServerSideEncryption"] == "AES256"
    assert run_dag.xcom(dag_run, "export")["uri"] == f"s3://{s3.bucket}/sei/own-store.csv"
    assert len(records(s3.read("sei/own-store.csv"))) > 1


# -- the merged multi-team report -----------------------------------------------------------


def test_the_merged_report_names_the_team_each_row_came_from(
    run_dag, sei_conn, sei_emulator, tmp_path
):
    teams = [123, 1003, 456]  # 1003 is a child of 123: its rows are in 123's export too
    columns = ["team_id", "date_start", "run_id"]
    with DAG("output_merged", schedule=None, start_date=START, catchup=False) as dag:
        SEIMultiTeamReportOperator(
            task_id="teams",
            team_ref_ids=teams,
            destination=f"file://{tmp_path}/teams/",
            merged_destination=f"file://{tmp_path}/merged.csv",
            add_columns=columns,
            **WEEK,
        )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"teams": "success"}

    merged = records((tmp_path / "merged.csv").read_bytes())
    header = merged[0]
    assert header[-3:] == columns
    width = len(header) - len(columns)
    per_team = {}
    for team in teams:
        own = records((tmp_path / "teams" / f"team-{team}.csv").read_bytes())
        assert own[0] == header  # the same report columns, the same metadata columns
        assert {row[width] for row in own[1:]} == {str(team)}
        per_team[team] = [row[:width] for row in own[1:]]

    seen: list[list[str]] = []
    for row in merged[1:]:
        cells, (team_id, date_start, run_id) = row[:width], row[width:]
        first = next(t for t in teams if cells in per_team[t])
        assert team_id == str(first)  # the export the row was first read from
        assert (date_start, run_id) == ("2024-01-01", dag_run.run_id)
        seen.append(cells)
    expected = [cells for t in teams for cells in per_team[t]]
    assert seen == [c for i, c in enumerate(expected) if c not in expected[:i]]
    assert {row[width] for row in merged[1:]} == {"123", "456"}  # 1003's rows are 123's


def test_the_merged_report_keeps_every_metadata_column_in_the_order_asked(
    run_dag, sei_conn, sei_emulator, tmp_path
):
    columns = ["run_id", *(c for c in METADATA_COLUMNS if c != "run_id")]  # an unusual order
    with DAG("output_merged_all", schedule=None, start_date=START, catchup=False) as dag:
        SEIMultiTeamReportOperator(
            task_id="teams",
            team_ref_ids=[123, 456],
            destination=f"file://{tmp_path}/teams/",
            merged_destination=f"file://{tmp_path}/merged.csv",
            add_columns=columns,
            **WEEK,
        )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"teams": "success"}

    merged = records((tmp_path / "merged.csv").read_bytes())
    own = records((tmp_path / "teams" / "team-456.csv").read_bytes())
    assert merged[0][-len(columns) :] == columns
    assert own[0] == merged[0]  # the per-team files and the merge agree, column for column
    by_name = [dict(zip(merged[0], row, strict=True)) for row in merged[1:]]
    assert {(r["team_id"], r["collection_id"]) for r in by_name} == {("123", "123"), ("456", "456")}
    assert {r["run_id"] for r in by_name} == {dag_run.run_id}
