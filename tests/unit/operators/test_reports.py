"""The report operators: parameters, validation, writing, destinations, failures and XCom.

Most tests render and execute the operator directly with a hand-built context (fast, no DB)
against the in-process emulator; ``test_reports_runs.py`` runs real DAGs with ``dag.test()``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fsspec
import pendulum
import pytest
from airflow.sdk import DAG, Asset, ObjectStoragePath
from sei_emulator import Fault, Faults

from airflow_provider_sei._compat import AirflowFailException, AirflowSkipException
from airflow_provider_sei.exceptions import (
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
)
from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.hooks.stream import ExportResult
from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

WEEK = (pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
NO_ACTIVITY = {"date_start": "2020-01-01", "date_end": "2020-01-31"}  # the emulator's org is idle


def execute(op: Any, interval: tuple[Any, Any] | None = WEEK, run_after: Any = None, **extra: Any):
    """Render and execute ``op`` as a task of a run over ``interval`` would; return the XCom."""
    context = build_context(op, interval, run_after, **extra)
    op.render_template_fields(context)
    return op.execute(context)


def build_context(op: Any, interval: Any, run_after: Any = None, **extra: Any) -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    if op.has_dag():
        dag = op.dag
    else:
        dag = DAG(f"dag_{op.task_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        dag.add_task(op)
    context: dict[str, Any] = {
        "dag": dag,
        "task": op,
        "params": {},
        "dag_run": SimpleNamespace(run_after=run_after or pendulum.now("UTC")),
        "outlet_events": OutletEventAccessors(),
        **extra,
    }
    if interval is not None:
        context.update(
            data_interval_start=interval[0],
            data_interval_end=interval[1],
            logical_date=interval[0],
            ds=interval[0].to_date_string(),
        )
    return context


def team(tmp_path: Path, **kwargs: Any) -> SEITeamReportOperator:
    kwargs.setdefault("destination", f"file://{tmp_path}/team.csv")
    return SEITeamReportOperator(
        task_id="team", collection_id=kwargs.pop("collection_id", "123"), **kwargs
    )


def contributors(tmp_path: Path, **kwargs: Any) -> SEIContributorReportOperator:
    kwargs.setdefault("destination", f"file://{tmp_path}/contributors.csv")
    return SEIContributorReportOperator(
        task_id="contributors", collection_id=kwargs.pop("collection_id", "123"), **kwargs
    )


def report_bodies(emulator: Any) -> list[dict[str, Any]]:
    return [r.body for r in emulator.requests if r.path.endswith("/reports")]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


# -- parameters and defaults ------------------------------------------------------------------


def test_template_fields():
    assert set(SEITeamReportOperator.template_fields) == {
        "collection_id",
        "team_ref_id",
        "date_start",
        "date_end",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
        "destination",
        "destination_conn_id",
        "if_empty",
        "overwrite",
    }
    assert set(SEIContributorReportOperator.template_fields) == {
        "collection_id",
        "date_start",
        "date_end",
        "granularity",
        "include_ratings",
        "metrics",
        "destination",
        "destination_conn_id",
        "if_empty",
        "overwrite",
    }


def test_defaults(tmp_path):
    op = team(tmp_path)
    assert (op.team_ref_id, op.date_start, op.date_end) == (None, None, None)
    assert (op.granularity, op.calculation_type) == ("weekly", "MEAN")
    assert (op.productivity_metrics, op.efficiency_metrics) == (None, None)
    assert (op.sei_conn_id, op.destination_conn_id) == ("sei_default", None)
    assert (op.if_empty, op.overwrite) == ("write", True)
    op = contributors(tmp_path)
    assert (op.granularity, op.include_ratings, op.metrics) == ("weekly", False, None)
    assert (op.sei_conn_id, op.if_empty, op.overwrite) == ("sei_default", "write", True)


def test_parameters_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        SEITeamReportOperator("t", "123", f"file://{tmp_path}/x.csv")  # type: ignore[misc]


def test_init_only_stores_arguments(tmp_path):
    # Nothing is looked up or validated while the DAG file is parsed.
    op = team(tmp_path, sei_conn_id="does_not_exist", granularity="{{ params.g }}", if_empty="bad")
    assert op.sei_conn_id == "does_not_exist"
    assert op.if_empty == "bad"


def test_object_storage_path_destination_is_stored_as_a_string(tmp_path):
    op = team(tmp_path, destination=ObjectStoragePath(f"file://{tmp_path}/out.csv"))
    assert op.destination == f"file://{tmp_path}/out.csv"
    s3 = team(tmp_path, destination=ObjectStoragePath("s3://my_aws@bucket/key.csv"))
    assert (s3.destination, s3.destination_conn_id) == ("s3://bucket/key.csv", "my_aws")


def test_asset_destination_becomes_an_outlet(tmp_path):
    extra_asset = Asset("sei://extra")
    asset = Asset(f"file://{tmp_path}/asset.csv")
    op = team(tmp_path, destination=asset, outlets=[extra_asset])
    assert op.destination == asset.uri
    assert op.outlets == [extra_asset, asset]


# -- the request sent ------------------------------------------------------------------------


def test_team_request_defaults(sei_conn, sei_emulator, tmp_path):
    execute(team(tmp_path))
    assert report_bodies(sei_emulator) == [
        {
            "collectionId": "123",
            "dateStart": "2024-01-01",
            "dateEnd": "2024-01-07",
            "granularity": "weekly",
            "teamRefId": 123,  # defaults to a numeric collection id
            "productivity": {"metrics": []},  # both lists None: every metric of both
            "efficiency": {"metrics": [], "calculationType": "MEAN"},
        }
    ]


def test_team_request_parameters(sei_conn, sei_emulator, tmp_path):
    execute(
        team(
            tmp_path,
            collection_id="456",
            team_ref_id=789,
            date_start="2024-02-01",
            date_end=pendulum.date(2024, 2, 29),
            granularity="MONTHLY",
            efficiency_metrics=["lead_time_for_changes", "DEPLOYMENT_FREQUENCY"],
            calculation_type="p90",
        )
    )
    assert report_bodies(sei_emulator) == [
        {
            "collectionId": "456",
            "dateStart": "2024-02-01",
            "dateEnd": "2024-02-29",
            "granularity": "monthly",
            "teamRefId": 789,
            "efficiency": {
                "metrics": ["LEAD_TIME_FOR_CHANGES", "DEPLOYMENT_FREQUENCY"],
                "calculationType": "P90",
            },
        }
    ]


def test_contributor_request_parameters(sei_conn, sei_emulator, tmp_path):
    execute(contributors(tmp_path))
    execute(
        contributors(
            tmp_path,
            collection_id=1,
            granularity="daily",
            include_ratings=True,
            metrics=["CODING_DAYS", "pr_velocity"],
        )
    )
    first, second = report_bodies(sei_emulator)
    assert first == {
        "collectionId": "123",
        "dateStart": "2024-01-01",
        "dateEnd": "2024-01-07",
        "granularity": "weekly",
        "includeRatings": False,
        "productivityContributors": {"metrics": []},
    }
    assert second["collectionId"] == "1"
    assert second["granularity"] == "daily"
    assert second["includeRatings"] is True
    assert second["productivityContributors"] == {"metrics": ["CODING_DAYS", "PR_VELOCITY"]}


def test_every_field_is_templated(sei_conn, sei_emulator, tmp_path):
    params = {
        "team": "456",
        "ref": "789",
        "metric": "CODING_DAYS_PER_DEV",
        "dora": "OVERALL_DORA",
        "calc": "MEDIAN",
        "gran": "daily",
    }
    op = team(
        tmp_path,
        collection_id="{{ params.team }}",
        team_ref_id="{{ params.ref }}",
        date_start="{{ data_interval_start | ds }}",
        date_end="{{ macros.ds_add(ds, 2) }}",
        granularity="{{ params.gran }}",
        productivity_metrics=["{{ params.metric }}"],
        efficiency_metrics=["{{ params.dora }}"],
        calculation_type="{{ params.calc }}",
        destination=f"file://{tmp_path}/{{{{ params.team }}}}/{{{{ ds }}}}.csv",
        destination_conn_id="{{ 'local' if false else '' }}",
        if_empty="{{ 'write' }}",
        overwrite="{{ 'False' }}",
    )
    from airflow.sdk.execution_time import macros

    result = execute(op, params=params, macros=macros)
    assert result["uri"] == f"file://{tmp_path}/456/2024-01-01.csv"
    assert report_bodies(sei_emulator)[0] == {
        "collectionId": "456",
        "dateStart": "2024-01-01",
        "dateEnd": "2024-01-03",
        "granularity": "daily",
        "teamRefId": 789,
        "productivity": {"metrics": ["CODING_DAYS_PER_DEV"]},
        "efficiency": {"metrics": ["OVERALL_DORA"], "calculationType": "MEDIAN"},
    }
    op = contributors(tmp_path, include_ratings="{{ 'true' }}", metrics=["{{ 'CODING_DAYS' }}"])
    execute(op)
    body = report_bodies(sei_emulator)[1]
    assert body["includeRatings"] is True
    assert body["productivityContributors"]["metrics"] == ["CODING_DAYS"]


# -- validation: before any request or write --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"collection_id": ""}, "collection_id"),
        ({"collection_id": "None"}, "collection_id"),
        ({"team_ref_id": "abc"}, "team_ref_id"),
        ({"granularity": "hourly"}, "granularity"),
        ({"productivity_metrics": ["LEAD_TIME_FOR_CHANGES"]}, "productivity_metrics"),
        ({"efficiency_metrics": ["NOPE"]}, "efficiency_metrics"),
        ({"calculation_type": "P99"}, "calculation_type"),
        ({"date_start": "2024-02-30"}, "date_start"),
        ({"date_end": ""}, "date_end"),
        ({"date_start": "2024-03-01", "date_end": "2024-02-01"}, "date_start"),
        ({"date_start": "2024-03-01"}, "date_end"),  # after the interval's default end
        ({"if_empty": "ignore"}, "if_empty"),
        ({"overwrite": "maybe"}, "overwrite"),
        ({"destination": ""}, "destination"),
        ({"destination": "nosuchscheme://x/y.csv"}, "destination"),
    ],
)
def test_invalid_parameters_fail_before_any_request(
    kwargs, field, sei_conn, sei_emulator, tmp_path
):
    with pytest.raises(SEIInvalidRequestError, match=field) as err:
        execute(team(tmp_path, **kwargs))
    assert field in err.value.field
    assert report_bodies(sei_emulator) == []
    assert list(tmp_path.iterdir()) == []


def test_invalid_contributor_parameters_fail_before_any_request(sei_conn, sei_emulator, tmp_path):
    for kwargs, field in [
        ({"metrics": ["PR_VELOCITY_PER_DEV"]}, "metrics"),
        ({"include_ratings": "yes please"}, "include_ratings"),
    ]:
        with pytest.raises(SEIInvalidRequestError, match=field):
            execute(contributors(tmp_path, **kwargs))
    assert report_bodies(sei_emulator) == []


# -- writing ---------------------------------------------------------------------------------


def test_xcom_summary(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path))
    written = (tmp_path / "team.csv").read_bytes()
    lines = written.decode().splitlines()
    assert result == {
        "uri": f"file://{tmp_path}/team.csv",
        "bytes": len(written),
        "rows": len(lines) - 1,
        "columns": lines[0].split(","),
        "filename": "team_report_123_2024-01-01_2024-01-07_weekly.csv",
        "date_start": "2024-01-01",
        "date_end": "2024-01-07",
    }
    assert result["rows"] > 0
    assert leftovers(tmp_path) == []


def test_progress_is_logged_while_streaming(sei_conn, sei_emulator, tmp_path, caplog, capsys):
    op = team(tmp_path, progress_interval=0)
    assert team(tmp_path).progress_interval == 10.0
    with caplog.at_level(logging.INFO):
        result = execute(op)
    output = caplog.text + capsys.readouterr().out
    line = next(line for line in output.splitlines() if "so far" in line)
    assert f"file://{tmp_path}/team.csv" in line
    assert f"{result['rows']:,} rows" in line
    assert "MiB/s" in line


def test_folder_destination_takes_the_server_filename(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, destination=f"file://{tmp_path}/reports/"))
    name = "team_report_123_2024-01-01_2024-01-07_weekly.csv"
    assert result["uri"] == f"file://{tmp_path}/reports/{name}"
    assert (tmp_path / "reports" / name).stat().st_size == result["bytes"]
    # an existing folder without the trailing slash is a folder too
    result = execute(contributors(tmp_path, destination=f"file://{tmp_path}/reports"))
    assert result["uri"].startswith(f"file://{tmp_path}/reports/contributor_report_123_")
    assert leftovers(tmp_path) == []


@contextlib.contextmanager
def fake_export(monkeypatch, body: bytes, filename: str | None):
    """Replace the HTTP part: the hook 'downloads' ``body`` with ``filename``."""

    def export_report(self, request, open_sink, chunk_size=1 << 20):
        with open_sink() as sink:
            for start in range(0, len(body), 7):
                sink.write(body[start : start + 7])
        return ExportResult(filename, len(body), "text/csv", 1)

    monkeypatch.setattr(SEIHook, "export_report", export_report)
    yield


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        (None, "sei-team-123-2024-01-01-2024-01-07.csv"),
        ("../../etc/passwd", "passwd"),
        ("..", "sei-team-123-2024-01-01-2024-01-07.csv"),
        ("r\u00e9sum\u00e9 2024?.csv", "r_sum_ 2024_.csv"),
    ],
)
def test_filename_fallback_and_sanitising(server_name, expected, monkeypatch, sei_conn, tmp_path):
    with fake_export(monkeypatch, b"a,b\n1,2\n", server_name):
        result = execute(team(tmp_path, destination=f"file://{tmp_path}/out/"))
    assert result["uri"] == f"file://{tmp_path}/out/{expected}"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [expected]


def test_rows_that_do_not_match_the_header_fail_and_keep_the_destination(
    monkeypatch, sei_conn, tmp_path
):
    (tmp_path / "team.csv").write_bytes(b"previous")
    bad_row = r"data row 2 \(header excluded\) has 2 fields"
    with (
        fake_export(monkeypatch, b"a,b,c\n1,2,3\n4,5\n", "x.csv"),
        pytest.raises(SEIResponseError, match=bad_row),
    ):
        execute(team(tmp_path))
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_overwrite(sei_conn, sei_emulator, tmp_path):
    target = tmp_path / "team.csv"
    target.write_bytes(b"old")
    execute(team(tmp_path))  # overwrite=True by default: reruns are idempotent
    first = target.read_bytes()
    assert first.startswith(b"Collection Name,")
    execute(team(tmp_path))
    assert target.read_bytes() == first


def test_overwrite_false_fails_before_any_request(sei_conn, sei_emulator, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"old")
    with pytest.raises(AirflowFailException, match="already exists"):
        execute(team(tmp_path, overwrite=False))
    assert report_bodies(sei_emulator) == []
    assert (tmp_path / "team.csv").read_bytes() == b"old"


def test_overwrite_false_writes_a_new_file(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, overwrite=False))
    assert Path(result["uri"].removeprefix("file://")).stat().st_size == result["bytes"]


def test_overwrite_false_in_a_folder_checks_the_server_filename(sei_conn, sei_emulator, tmp_path):
    execute(team(tmp_path, destination=f"file://{tmp_path}/f/"))
    (existing,) = (tmp_path / "f").iterdir()
    existing.write_bytes(b"old")
    with pytest.raises(AirflowFailException, match="already exists"):
        execute(team(tmp_path, destination=f"file://{tmp_path}/f/", overwrite=False))
    assert existing.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_if_empty_write(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, **NO_ACTIVITY))
    assert (tmp_path / "team.csv").read_bytes() == b""
    assert (result["bytes"], result["rows"], result["columns"]) == (0, 0, [])


def test_if_empty_skip_leaves_the_destination(sei_conn, sei_emulator, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"previous")
    with pytest.raises(AirflowSkipException, match="empty report"):
        execute(team(tmp_path, if_empty="skip", **NO_ACTIVITY))
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_if_empty_fail(sei_conn, sei_emulator, tmp_path):
    with pytest.raises(AirflowFailException, match="empty report"):
        execute(contributors(tmp_path, if_empty="FAIL", **NO_ACTIVITY))
    assert list(tmp_path.iterdir()) == []


# -- failures mid-stream ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.truncate(0.5), Fault.chunked_cut(0.3)])
def test_a_failed_export_leaves_the_previous_file(fault, sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=0)
    execute(team(tmp_path, collection_id="1"))
    before = (tmp_path / "team.csv").read_bytes()
    sei_emulator.set_faults(Faults(script=[fault]))
    with pytest.raises(SEIResponseError):
        execute(team(tmp_path, collection_id="1", granularity="daily"))
    assert (tmp_path / "team.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.csv"]


def test_a_failed_export_leaves_no_file_when_there_was_none(sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.status(500)]))
    with pytest.raises(Exception, match="500"):
        execute(team(tmp_path, destination=f"file://{tmp_path}/new/"))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_retried_cut_short_body_is_written_once(sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=1, backoff_max=1)
    expected = execute(team(tmp_path, collection_id="1"))
    sei_emulator.set_faults(Faults(script=[Fault.truncate(0.5)]))
    result = execute(team(tmp_path, collection_id="1"))
    assert result == expected  # stats reset for the second attempt: bytes and rows not doubled
    assert (tmp_path / "team.csv").stat().st_size == expected["bytes"]
    assert "truncate:0.5" in [r.fault for r in sei_emulator.requests]


def test_incomplete_read_error_is_raised_after_retries(sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.truncate(0.1)]))
    with pytest.raises(SEIIncompleteReadError):
        execute(team(tmp_path))
    assert list(tmp_path.iterdir()) == []


# -- destinations ----------------------------------------------------------------------------


def test_memory_destination(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, destination="memory://sei-tests/team/report.csv"))
    memory = fsspec.filesystem("memory")
    assert result["uri"] == "memory://sei-tests/team/report.csv"
    written = memory.cat_file("/sei-tests/team/report.csv")
    assert written.startswith(b"Collection Name,")
    assert result["bytes"] == len(written)
    folder = execute(contributors(tmp_path, destination="memory://sei-tests/contrib/"))
    assert memory.ls("/sei-tests/contrib", detail=False) == [
        f"/sei-tests/contrib/{folder['filename']}"
    ]
    assert memory.size(f"/sei-tests/contrib/{folder['filename']}") == folder["bytes"]


def test_s3_destination(sei_conn, sei_emulator, s3, tmp_path):
    key = "sei/team/2024-01-01/team.csv"
    result = execute(
        team(tmp_path, destination=f"s3://{s3.bucket}/{key}", destination_conn_id="aws_default")
    )
    assert result["uri"] == f"s3://{s3.bucket}/{key}"
    assert s3.keys() == [key]
    assert len(s3.read(key)) == result["bytes"]
    assert s3.read(key).startswith(b"Collection Name,")
    # a folder, with the connection id inside the URI
    result = execute(
        contributors(tmp_path, destination=f"s3://aws_default@{s3.bucket}/sei/contrib/")
    )
    assert result["uri"] == f"s3://{s3.bucket}/sei/contrib/{result['filename']}"
    assert s3.keys() == [f"sei/contrib/{result['filename']}", key]


def test_s3_failed_export_leaves_the_previous_object_and_nothing_else(
    sei_conn, sei_emulator, s3, tmp_path
):
    sei_conn.set(max_retries=0)
    destination = f"s3://{s3.bucket}/sei/team.csv"
    execute(
        team(
            tmp_path, collection_id="1", destination=destination, destination_conn_id="aws_default"
        )
    )
    before = s3.read("sei/team.csv")
    sei_emulator.set_faults(Faults(script=[Fault.truncate(0.6)]))
    with pytest.raises(SEIResponseError):
        execute(
            team(
                tmp_path,
                collection_id="1",
                granularity="daily",
                destination=destination,
                destination_conn_id="aws_default",
            )
        )
    assert s3.keys() == ["sei/team.csv"]
    assert s3.read("sei/team.csv") == before
    assert s3.uploads() == []


def test_s3_if_empty_skip_writes_nothing(sei_conn, sei_emulator, s3, tmp_path):
    with pytest.raises(AirflowSkipException):
        execute(
            team(
                tmp_path,
                if_empty="skip",
                destination=f"s3://aws_default@{s3.bucket}/sei/empty.csv",
                **NO_ACTIVITY,
            )
        )
    assert s3.keys() == []


# -- assets ----------------------------------------------------------------------------------


def test_summary_is_attached_to_each_outlet_asset_event(sei_conn, sei_emulator, tmp_path):
    folder_asset = Asset(name="team_reports", uri=f"file://{tmp_path}/reports/")
    op = team(
        tmp_path,
        destination=Asset(f"file://{tmp_path}/reports/latest.csv"),
        outlets=[folder_asset],
    )
    context = build_context(op, WEEK)
    op.render_template_fields(context)
    result = op.execute(context)
    events = context["outlet_events"]
    for asset in op.outlets:
        assert events[asset].extra == result
    assert result["uri"] == f"file://{tmp_path}/reports/latest.csv"
