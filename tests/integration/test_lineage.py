"""OpenLineage in real DAG runs: the events the OpenLineage provider itself emits.

The provider's own ``OpenLineageListener`` is attached to the task runner's listener manager
for each test, with a file transport: each task's START and COMPLETE events are written as
JSON lines, exactly as they would be sent to Marquez or DataHub. The tests read those lines,
so what is checked is what a lineage backend would receive -- after the provider's extractor
machinery (``ExtractorManager`` -> ``DefaultExtractor`` -> ``get_openlineage_facets_on_complete``),
its serialization and its secret redaction.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pyarrow.parquet as pq
import pytest
from airflow.providers.common.compat.sdk import hookimpl
from airflow.sdk import DAG, Asset, ObjectStoragePath

from airflow_provider_sei.operators.exports import SEIExportOperator
from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator
from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

START = pendulum.datetime(2024, 1, 1, tz="UTC")
WEEK = {"date_start": "2024-01-01", "date_end": "2024-01-07"}
API_KEY = "sei-emulator-key"


# -- the OpenLineage provider, attached for one test ----------------------------------------


def _listener_manager() -> Any:
    """The listener manager the task runner notifies (``airflow.sdk`` since 3.2, core on 3.1)."""
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow 3.1
        from airflow.listeners.listener import get_listener_manager
    return get_listener_manager()


def _clear_openlineage_config() -> None:
    """Forget the OpenLineage provider's cached configuration (each setting is ``@cache``d)."""
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


class TaskEvents:
    """Hands the task runner's task events to a real ``OpenLineageListener``.

    Only the task-instance events of running tasks: the DAG-run events would start the
    listener's process pool, which a test does not need.
    """

    def __init__(self) -> None:
        from airflow.providers.openlineage.plugins.listener import OpenLineageListener

        self.listener = OpenLineageListener()

    @staticmethod
    def _running(task_instance: Any) -> bool:
        return hasattr(task_instance, "task") and type(task_instance).__name__ != "TaskInstance"

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        if self._running(task_instance):
            self.listener.on_task_instance_running(
                previous_state=previous_state, task_instance=task_instance
            )

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        if self._running(task_instance):
            self.listener.on_task_instance_success(
                previous_state=previous_state, task_instance=task_instance
            )

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        if self._running(task_instance):
            self.listener.on_task_instance_failed(
                previous_state=previous_state, task_instance=task_instance, error=error
            )


@dataclass
class LineageLog:
    """The events the OpenLineage provider wrote, one JSON object a line."""

    path: Path

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def complete(self, task_id: str) -> dict[str, Any]:
        """The one COMPLETE event of ``task_id``."""
        found = [
            e
            for e in self.events()
            if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(f".{task_id}")
        ]
        assert len(found) == 1, [(e["eventType"], e["job"]["name"]) for e in self.events()]
        return found[0]


_SETTINGS = {
    "AIRFLOW__OPENLINEAGE__NAMESPACE": "sei-tests",
    # Emit from a thread of the task's process, not from a fork of the pytest process.
    "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    "AIRFLOW__OPENLINEAGE__DISABLED": "False",
}


@pytest.fixture
def lineage(tmp_path: Path) -> Iterator[LineageLog]:
    """The OpenLineage provider enabled, with a file transport, for this test's DAG runs."""
    manager = _listener_manager()  # built before OpenLineage is enabled: no plugin listener
    log = LineageLog(tmp_path / "openlineage.jsonl")
    transport = {"type": "file", "log_file_path": str(log.path), "append": True}
    settings = {**_SETTINGS, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    _clear_openlineage_config()
    events = TaskEvents()
    manager.add_listener(events)
    try:
        yield log
    finally:
        manager.pm.unregister(events)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _clear_openlineage_config()  # after the environment is back: OpenLineage off again


def datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[side]]


def schema(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["name"], f["type"]) for f in dataset["facets"]["schema"]["fields"]]


def statistics(dataset: dict[str, Any]) -> tuple[int, int]:
    stats = dataset["outputFacets"]["outputStatistics"]
    return stats["rowCount"], stats["size"]


def header_and_rows(data: bytes) -> tuple[list[str], int]:
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return records[0], len(records) - 1


def one_task(dag_id: str, operator: type, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        operator(task_id="export", **kwargs)
    return dag


# -- the tests ------------------------------------------------------------------------------


def test_a_team_report_to_s3_is_lineage_from_the_api_to_the_object(
    lineage, run_dag, sei_conn, sei_emulator, s3
):
    dag = one_task(
        "lineage_team_s3",
        SEITeamReportOperator,
        collection_id="123",
        destination=f"s3://{s3.bucket}/sei/{{{{ sei.date_start }}}}/team.csv",
        dest_conn_id=s3.conn_id,
        add_columns=["date_start", "run_id"],
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    event = lineage.complete("export")
    port = sei_emulator.base_url.rsplit(":", 1)[1]
    assert datasets(event, "inputs") == [(f"http://127.0.0.1:{port}", "reports/team/123")]
    assert datasets(event, "outputs") == [(f"s3://{s3.bucket}", "sei/2024-01-01/team.csv")]

    body = s3.read("sei/2024-01-01/team.csv")
    header, rows = header_and_rows(body)
    output = event["outputs"][0]
    assert schema(output) == [(name, "string") for name in header]
    assert header[-2:] == ["date_start", "run_id"]
    assert schema(event["inputs"][0]) == [(name, "string") for name in header[:-2]]
    assert rows > 0
    assert statistics(output) == (rows, len(body))
    assert API_KEY not in lineage.path.read_text()


def test_a_parquet_file_carries_the_types_it_was_written_with(
    lineage, run_dag, sei_conn, sei_emulator, tmp_path
):
    target = tmp_path / "out" / "contributors.parquet"
    dag = one_task(
        "lineage_parquet",
        SEIContributorReportOperator,
        collection_id="123",
        include_ratings=True,
        output_format="parquet",
        add_columns=["date_start", "exported_at", "granularity"],
        destination=f"file://{target}",
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    event = lineage.complete("export")
    assert datasets(event, "inputs")[0][1] == "reports/contributor/123"
    assert datasets(event, "outputs") == [("file", str(target))]
    written = pq.read_schema(target)
    output = event["outputs"][0]
    assert schema(output) == [(f.name, str(f.type)) for f in written]
    assert {"double", "string", "date32[day]", "timestamp[us, tz=UTC]"} <= {
        kind for _, kind in schema(output)
    }
    assert statistics(output) == (pq.read_metadata(target).num_rows, target.stat().st_size)


def test_a_v2_export_names_its_type_and_team(lineage, run_dag, sei_emulator, v2_conn, tmp_path):
    from sei_emulator import V2Settings

    sei_emulator.set_v2(V2Settings(complete_after_polls=1))
    target = tmp_path / "efficiency.csv.gz"
    dag = one_task(
        "lineage_v2",
        SEIExportOperator,
        export_type="efficiency",
        team_id="123",
        granularity="monthly",
        output_format="csv.gz",
        poll_interval=0.01,
        destination=f"file://{target}",
        date_start="2024-01-01",
        date_end="2024-03-31",
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    event = lineage.complete("export")
    assert [name for _, name in datasets(event, "inputs")] == ["exports/efficiency/team/123"]
    assert datasets(event, "outputs") == [("file", str(target))]
    assert statistics(event["outputs"][0])[1] == target.stat().st_size


def test_an_asset_destination_is_the_dataset_airflow_makes_of_that_asset(
    lineage, run_dag, sei_conn, sei_emulator, s3
):
    from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset

    asset = Asset(f"s3://{s3.bucket}/sei/team-123.csv")
    dag = one_task(
        "lineage_asset",
        SEITeamReportOperator,
        collection_id="123",
        destination=asset,
        dest_conn_id=s3.conn_id,
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    # Listed once: the export's own output is the outlet, not a second dataset beside it.
    expected = translate_airflow_asset(asset, None)
    event = lineage.complete("export")
    assert datasets(event, "outputs") == [(expected.namespace, expected.name)]


def test_an_object_storage_path_destination_is_named_without_its_connection(
    lineage, run_dag, sei_conn, sei_emulator, s3
):
    path = ObjectStoragePath(f"s3://{s3.conn_id}@{s3.bucket}/sei/op.csv")
    dag = one_task(
        "lineage_osp", SEITeamReportOperator, collection_id="123", destination=path, **WEEK
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}
    event = lineage.complete("export")
    assert datasets(event, "outputs") == [(f"s3://{s3.bucket}", "sei/op.csv")]


def test_a_fanout_has_one_input_per_team_and_one_output_per_file(
    lineage, run_dag, sei_conn, sei_emulator, tmp_path
):
    folder, merged = tmp_path / "teams", tmp_path / "merged.csv"
    dag = one_task(
        "lineage_fanout",
        SEIMultiTeamReportOperator,
        team_ref_ids=[123, 456, 789],
        destination=f"file://{folder}/",
        merged_destination=f"file://{merged}",
        add_columns=["team_id", "date_start"],
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}

    event = lineage.complete("export")
    assert [name for _, name in datasets(event, "inputs")] == [
        "reports/team/123",
        "reports/team/456",
        "reports/team/789",
    ]
    outputs = {
        name: d for (_, name), d in zip(datasets(event, "outputs"), event["outputs"], strict=True)
    }
    files = sorted(str(p) for p in folder.iterdir())
    assert sorted(outputs) == sorted([*files, str(merged)])
    for name, dataset in outputs.items():
        assert dataset["namespace"] == "file"
        data = Path(name).read_bytes()
        assert statistics(dataset) == (header_and_rows(data)[1], len(data))
    header, _ = header_and_rows(merged.read_bytes())
    assert schema(outputs[str(merged)]) == [(name, "string") for name in header]


def test_a_team_that_failed_is_no_input_of_the_fanout(
    lineage, run_dag, sei_conn, sei_emulator, tmp_path
):
    from sei_emulator import Fault, Faults

    sei_emulator.set_faults(Faults(script=[Fault.status(400)]))  # the first team's request
    dag = one_task(
        "lineage_fanout_partial",
        SEIMultiTeamReportOperator,
        team_ref_ids=[123, 456],
        merged_destination=f"file://{tmp_path}/merged.csv",
        max_concurrency=1,
        max_failed_teams=1,
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "success"}
    assert run_dag.xcom(dag_run, "export")["failed"] == [123]

    event = lineage.complete("export")
    assert [name for _, name in datasets(event, "inputs")] == ["reports/team/456"]
    assert datasets(event, "outputs") == [("file", str(tmp_path / "merged.csv"))]


def test_a_failed_export_claims_nothing_was_written(
    lineage, run_dag, sei_conn, sei_emulator, tmp_path
):
    from sei_emulator import Fault, Faults

    sei_emulator.set_faults(Faults(script=[Fault.status(400)]))
    target = tmp_path / "never.csv"
    dag = one_task(
        "lineage_failed",
        SEITeamReportOperator,
        collection_id="123",
        destination=Asset(f"file://{target}"),
        **WEEK,
    )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert not target.exists()
    (failed,) = [e for e in lineage.events() if e["eventType"] == "FAIL"]
    # The export was asked for (its input) but wrote nothing: the Asset outlet is not an output.
    assert [name for _, name in datasets(failed, "inputs")] == ["reports/team/123"]
    assert datasets(failed, "outputs") == []


# -- without the OpenLineage provider -------------------------------------------------------

_OPENLINEAGE = ("openlineage", "airflow.providers.openlineage")


def _without_openlineage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every OpenLineage import fail, as on an install without the provider."""
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in _OPENLINEAGE):
            monkeypatch.setitem(sys.modules, name, None)
    for name in _OPENLINEAGE:
        monkeypatch.setitem(sys.modules, name, None)


def test_exports_run_without_the_openlineage_provider(
    run_dag, sei_conn, sei_emulator, tmp_path, monkeypatch
):
    _without_openlineage(monkeypatch)
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401

    with DAG("lineage_absent", schedule=None, start_date=START, catchup=False) as dag:
        SEITeamReportOperator(
            task_id="team",
            collection_id="123",
            destination=f"file://{tmp_path}/team.parquet",
            output_format="parquet",
            **WEEK,
        )
        SEIMultiTeamReportOperator(
            task_id="teams",
            team_ref_ids=[123, 456],
            merged_destination=f"file://{tmp_path}/merged.csv",
            **WEEK,
        )
    dag_run = run_dag(dag, START)
    assert run_dag.states(dag_run) == {"team": "success", "teams": "success"}
    assert pq.read_metadata(tmp_path / "team.parquet").num_rows > 0
    assert header_and_rows((tmp_path / "merged.csv").read_bytes())[1] > 0
