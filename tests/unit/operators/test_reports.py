"""The report operators: parameters, validation, writing, destinations, failures and XCom.

Most tests render and execute the operator directly with a hand-built context (fast, no DB)
against the in-process emulator, or against ``tests/hostile.py`` when the server must
misbehave; ``tests/integration/test_report_runs.py`` runs real DAGs with ``dag.test()``.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fsspec
import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.sdk import DAG, Asset, ObjectStoragePath
from hostile import HostileServer, csv
from sei_emulator import Fault, Faults

from airflow_provider_sei.exceptions import (
    SEIDestinationError,
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
)
from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

WEEK = (pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
NO_ACTIVITY = {"date_start": "2020-01-01", "date_end": "2020-01-31"}  # the emulator's org is idle
REPORTS = "/v2/insights/teams/reports"
HOSTILE_KEY = "hostile-test-key-0123"
#: A small team report as the API sends one.
REPORT = b"Collection Name,PR Velocity Per Dev\r\nPlatform,3.5\r\nMobile,2.0\r\n"


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
        "run_id": "manual__test",
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
    return sorted(p.name for p in folder.rglob("*.tmp"))


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def hostile(make_sei_conn: Any) -> Iterator[HostileServer]:
    """A hostile server behind ``harness_sei_default``, no retries; script it per test."""
    with HostileServer() as srv:
        make_sei_conn(srv.url, HOSTILE_KEY, max_retries=0)
        yield srv


# -- parameters and defaults ------------------------------------------------------------------


COMMON_FIELDS = {
    "date_start",
    "date_end",
    "destination",
    "dest_conn_id",
    "dest_storage_options",
    "if_empty",
    "overwrite",
    "output_format",
    "add_columns",
    "max_bytes",
    "max_header_bytes",
    "max_row_bytes",
}


def test_template_fields():
    assert set(SEITeamReportOperator.template_fields) == COMMON_FIELDS | {
        "collection_id",
        "team_ref_id",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
    }
    assert set(SEIContributorReportOperator.template_fields) == COMMON_FIELDS | {
        "collection_id",
        "granularity",
        "include_ratings",
        "metrics",
    }


def test_defaults(tmp_path):
    op = team(tmp_path)
    assert (op.team_ref_id, op.date_start, op.date_end) == (None, None, None)
    assert (op.granularity, op.calculation_type) == ("weekly", "MEAN")
    assert (op.productivity_metrics, op.efficiency_metrics) == (None, None)
    assert (op.harness_sei_conn_id, op.dest_conn_id) == ("harness_sei_default", None)
    assert (op.if_empty, op.overwrite, op.output_format) == ("write", True, "csv")
    assert (op.add_columns, op.max_bytes, op.dest_storage_options) == (None, None, None)
    op = contributors(tmp_path)
    assert (op.granularity, op.include_ratings, op.metrics) == ("weekly", False, None)
    assert (op.harness_sei_conn_id, op.if_empty, op.overwrite) == (
        "harness_sei_default",
        "write",
        True,
    )


def test_parameters_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        SEITeamReportOperator("t", "123", f"file://{tmp_path}/x.csv")  # type: ignore[misc]


def test_init_only_stores_arguments(tmp_path):
    # Nothing is looked up or validated while the DAG file is parsed.
    op = team(
        tmp_path,
        collection_id="not a number",
        harness_sei_conn_id="does_not_exist",
        granularity="{{ params.g }}",
        if_empty="bad",
        output_format="xlsx",
    )
    assert (op.collection_id, op.harness_sei_conn_id) == ("not a number", "does_not_exist")
    assert (op.if_empty, op.output_format) == ("bad", "xlsx")
    assert "hook" not in vars(op)


def test_object_storage_path_destination_is_kept_whole(tmp_path):
    local = ObjectStoragePath(f"file://{tmp_path}/out.csv")
    op = team(tmp_path, destination=local)
    assert op.destination == f"file://{tmp_path}/out.csv"  # what the UI shows
    assert op.destination_path is local
    s3 = team(tmp_path, destination=ObjectStoragePath("s3://my_aws@bucket/key.csv"))
    assert s3.destination == "s3://bucket/key.csv"  # never the conn id
    assert s3.dest_conn_id is None  # the path carries its own


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
            "teamRefId": 123,  # defaults to the collection id: both name the same team
            "productivity": {"metrics": []},  # both lists None: every metric of both
            "efficiency": {"metrics": [], "calculationType": "MEAN"},
        }
    ]


def test_team_request_parameters(sei_conn, sei_emulator, tmp_path):
    execute(
        team(
            tmp_path,
            collection_id=456,
            team_ref_id="789",
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
            include_ratings="on",
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


def test_an_offset_datetime_date_start_is_taken_in_the_dag_timezone(
    sei_conn, sei_emulator, tmp_path
):
    # 23:30 in New York on the 1st is 04:30 UTC on the 2nd: a UTC DAG reports from the 2nd.
    execute(team(tmp_path, date_start="2024-01-01T23:30:00-05:00", date_end="2024-01-07"))
    assert report_bodies(sei_emulator)[0]["dateStart"] == "2024-01-02"


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
        destination=f"file://{tmp_path}/{{{{ params.team }}}}/{{{{ ds }}}}{{{{ sei.suffix }}}}",
        dest_conn_id="{{ 'local' if false else '' }}",
        if_empty="{{ 'write' }}",
        overwrite="{{ 'False' }}",
        output_format="{{ 'CSV.GZ' | lower }}",
        add_columns="{{ ['date_start', 'run_id'] }}",  # a list rendered to its repr
        max_bytes="{{ 10 * 1000 * 1000 }}",
    )
    from airflow.sdk.execution_time import macros

    result = execute(op, params=params, macros=macros)
    assert result["uri"] == f"file://{tmp_path}/456/2024-01-01.csv.gz"
    assert result["output_format"] == "csv.gz"
    assert report_bodies(sei_emulator)[0] == {
        "collectionId": "456",
        "dateStart": "2024-01-01",
        "dateEnd": "2024-01-03",
        "granularity": "daily",
        "teamRefId": 789,
        "productivity": {"metrics": ["CODING_DAYS_PER_DEV"]},
        "efficiency": {"metrics": ["OVERALL_DORA"], "calculationType": "MEDIAN"},
    }
    header = gzip.decompress((tmp_path / "456" / "2024-01-01.csv.gz").read_bytes()).split(b"\n")[0]
    assert header.rstrip(b"\r").endswith(b",date_start,run_id")
    op = contributors(tmp_path, include_ratings="{{ 'true' }}", metrics=["{{ 'CODING_DAYS' }}"])
    execute(op)
    body = report_bodies(sei_emulator)[1]
    assert body["includeRatings"] is True
    assert body["productivityContributors"]["metrics"] == ["CODING_DAYS"]


def test_the_sei_namespace_in_the_destination(sei_conn, sei_emulator, tmp_path):
    op = team(
        tmp_path,
        collection_id=" {{ 400 + 56 }} ",
        granularity="MONTHLY",
        destination=f"file://{tmp_path}/{{{{ sei.export_type }}}}/{{{{ sei.collection_id }}}}-"
        "{{ sei.team_ref_id }}/{{ sei.granularity }}/{{ sei.date_start }}_{{ sei.date_end }}"
        "{{ sei.suffix }}",
    )
    result = execute(op)
    # The namespace holds the parsed values: the id stripped, the granularity in lower case.
    assert result["uri"] == f"file://{tmp_path}/team/456-456/monthly/2024-01-01_2024-01-07.csv"
    assert files(tmp_path) == ["team/456-456/monthly/2024-01-01_2024-01-07.csv"]


def test_the_sei_namespace_without_a_data_interval_warns_once(
    sei_conn, sei_emulator, tmp_path, caplog
):
    op = contributors(tmp_path, destination=f"file://{tmp_path}/{{{{ sei.date_end }}}}.csv")
    with caplog.at_level(logging.WARNING, logger="airflow_provider_sei.operators._dates"):
        result = execute(op, interval=None, run_after=pendulum.datetime(2024, 5, 2, 3))
    assert result["uri"] == f"file://{tmp_path}/2024-05-01.csv"
    assert (result["date_start"], result["date_end"]) == ("2024-05-01", "2024-05-01")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # resolved once for render and execute
    assert "no data interval" in warnings[0].getMessage()


def test_a_name_the_sei_namespace_does_not_hold_fails_the_task_naming_it(
    sei_conn, sei_emulator, tmp_path
):
    op = team(tmp_path, destination=f"file://{tmp_path}/{{{{ sei.team_id }}}}.csv")
    with pytest.raises(AirflowFailException, match="Invalid sei: 'team_id'") as err:
        execute(op)
    assert "collection_id, date_end, date_start, export_type" in str(err.value)
    assert report_bodies(sei_emulator) == []
    assert files(tmp_path) == []


# -- validation: before any request or write --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"collection_id": ""}, "collection_id"),
        ({"collection_id": "None"}, "collection_id"),
        ({"collection_id": "Platform Team"}, "collection_id"),  # a name, not the id
        ({"collection_id": "\u00b2"}, "collection_id"),
        ({"collection_id": "9" * 5000}, "collection_id"),
        ({"team_ref_id": "abc"}, "team_ref_id"),
        ({"team_ref_id": "\u00b2"}, "team_ref_id"),
        ({"team_ref_id": "9" * 5000}, "team_ref_id"),
        ({"granularity": "hourly"}, "granularity"),
        ({"productivity_metrics": ["LEAD_TIME_FOR_CHANGES"]}, "productivity_metrics"),
        ({"efficiency_metrics": ["NOPE"]}, "efficiency_metrics"),
        ({"efficiency_metrics": "['NOPE'"}, "efficiency_metrics"),
        ({"calculation_type": "P99"}, "calculation_type"),
        ({"date_start": "2024-02-30"}, "date_start"),
        ({"date_end": "2024-13-01"}, "date_end"),
        ({"date_start": "2024-03-01", "date_end": "2024-02-01"}, "date_start"),
        ({"date_start": "2024-03-01"}, "date_end"),  # after the interval's default end
        ({"if_empty": "ignore"}, "if_empty"),
        ({"overwrite": "maybe"}, "overwrite"),
        ({"output_format": "xlsx"}, "output_format"),
        ({"add_columns": ["date_start", "nope"]}, "add_columns"),
        ({"add_columns": {"date_start": 1}}, "add_columns"),
        ({"max_bytes": "abc"}, "max_bytes"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"destination": ""}, "destination"),
    ],
)
def test_invalid_parameters_fail_the_task_before_any_request(
    kwargs, field, sei_conn, sei_emulator, tmp_path
):
    with pytest.raises(AirflowFailException) as err:
        execute(team(tmp_path, **kwargs))
    cause = err.value.__cause__
    assert isinstance(cause, SEIInvalidRequestError)
    assert field in cause.field
    assert str(err.value).startswith(f"Invalid {cause.field}: ")
    assert len(str(err.value)) < 400  # a 5,000-character value is cut, not echoed
    assert report_bodies(sei_emulator) == []
    assert files(tmp_path) == []


def test_invalid_contributor_parameters_fail_before_any_request(sei_conn, sei_emulator, tmp_path):
    for kwargs, field in [
        ({"metrics": ["PR_VELOCITY_PER_DEV"]}, "metrics"),
        ({"include_ratings": "yes please"}, "include_ratings"),
        ({"collection_id": "org-root"}, "collection_id"),
    ]:
        with pytest.raises(AirflowFailException, match=f"Invalid {field}: "):
            execute(contributors(tmp_path, **kwargs))
    assert report_bodies(sei_emulator) == []


def test_an_unknown_destination_scheme_fails_before_any_request(sei_conn, sei_emulator, tmp_path):
    with pytest.raises(AirflowFailException, match="nosuchscheme"):
        execute(team(tmp_path, destination="nosuchscheme://x/y.csv"))
    assert report_bodies(sei_emulator) == []


def test_an_unknown_connection_fails_the_task_before_any_request(sei_conn, sei_emulator, tmp_path):
    with pytest.raises(AirflowFailException, match="no_such_store"):
        execute(team(tmp_path, destination="s3://bucket/x.csv", dest_conn_id="no_such_store"))
    with pytest.raises(AirflowFailException, match="no_such_sei"):
        execute(team(tmp_path, harness_sei_conn_id="no_such_sei"))
    assert report_bodies(sei_emulator) == []
    assert files(tmp_path) == []


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
        "filename": None,  # a file destination: the server's name is not used
        "date_start": "2024-01-01",
        "date_end": "2024-01-07",
        "output_format": "csv",
    }
    assert result["rows"] > 0
    assert json.loads(json.dumps(result)) == result  # XCom-safe, plain JSON
    assert leftovers(tmp_path) == []


def test_progress_is_logged_while_streaming(sei_conn, sei_emulator, tmp_path, caplog, capsys):
    op = team(tmp_path, progress_interval=0)
    assert team(tmp_path).progress_interval == 10.0
    with caplog.at_level(logging.INFO):
        result = execute(op)
    output = caplog.text + capsys.readouterr().out
    line = next(line for line in output.splitlines() if "so far" in line)
    assert f"file://{tmp_path}/team.csv" in line
    assert "MiB/s" in line
    assert result["rows"] > 0


def test_folder_destination_takes_the_server_filename(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, destination=f"file://{tmp_path}/reports/"))
    name = result["filename"]
    assert name is not None
    assert name.endswith(".csv")
    assert result["uri"] == f"file://{tmp_path}/reports/{name}"
    assert (tmp_path / "reports" / name).stat().st_size == result["bytes"]
    # an existing folder without the trailing slash is a folder too
    result = execute(contributors(tmp_path, destination=f"file://{tmp_path}/reports"))
    assert result["uri"] == f"file://{tmp_path}/reports/{result['filename']}"
    assert leftovers(tmp_path) == []


FALLBACK = "sei-team-123-2024-01-01-2024-01-07.csv"


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        ("team_report_123.csv", "team_report_123.csv"),
        ("Team-Report.CSV", "Team-Report.csv"),
        ("team_report_123.csv.gz", "team_report_123.csv"),  # the suffix is the format's
        (None, FALLBACK),
        ("../../etc/passwd", FALLBACK),
        ("../reports/x.csv", "x.csv"),  # only the last path component is ever kept
        ("..", FALLBACK),
        (".hidden.csv", FALLBACK),
        ("payload.exe", FALLBACK),
        ("r\u00e9sum\u00e9 2024?.csv", FALLBACK),
        ("a" * 300 + ".csv", FALLBACK),
        (b"\xff\xfe.csv", FALLBACK),
        (HOSTILE_KEY + ".csv", FALLBACK),  # never a name that holds the key
    ],
)
def test_a_server_filename_is_used_only_when_it_is_a_plain_report_name(
    server_name, expected, hostile, tmp_path
):
    hostile.route(REPORTS, csv(REPORT, filename=server_name))
    result = execute(team(tmp_path, destination=f"file://{tmp_path}/out/"))
    assert result["uri"] == f"file://{tmp_path}/out/{expected}"
    assert result["filename"] == (expected if expected != FALLBACK else None)
    assert files(tmp_path) == [f"out/{expected}"]
    assert (tmp_path / "out" / expected).read_bytes() == REPORT


def test_rows_that_do_not_match_the_header_fail_and_keep_the_destination(hostile, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"previous")
    hostile.route(REPORTS, csv(b"Collection Name,a,b\n1,2,3\n4,5\n"))
    with pytest.raises(AirflowFailException, match=r"data row 2 \(header excluded\) has 2"):
        execute(team(tmp_path))  # a malformed report: no retry can fix it
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert files(tmp_path) == ["team.csv"]


def test_a_body_that_is_not_a_report_fails_the_task_and_keeps_the_destination(hostile, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"previous")
    hostile.route(REPORTS, csv(b"<html><body>Sign in</body></html>", content_type="text/html"))
    with pytest.raises(AirflowFailException) as err:
        execute(team(tmp_path))
    assert isinstance(err.value.__cause__, SEIResponseError)
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert files(tmp_path) == ["team.csv"]


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
    with pytest.raises(AirflowFailException, match="already exists") as err:
        execute(team(tmp_path, overwrite="false"))
    assert isinstance(err.value.__cause__, SEIDestinationError)
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


EMPTY_BODIES = [
    pytest.param(b"", id="zero-bytes"),
    pytest.param(b"Collection Name,PR Velocity Per Dev\r\n", id="header-alone"),
    pytest.param(b"\xef\xbb\xbfCollection Name,PR Velocity Per Dev", id="bom-header-no-newline"),
]


@pytest.mark.parametrize("body", EMPTY_BODIES)
def test_if_empty_write_writes_a_report_without_data_rows(body, hostile, tmp_path):
    hostile.route(REPORTS, csv(body))
    result = execute(team(tmp_path))
    assert (tmp_path / "team.csv").read_bytes() == body
    assert (result["bytes"], result["rows"]) == (len(body), 0)


@pytest.mark.parametrize("body", EMPTY_BODIES)
def test_if_empty_skip_leaves_the_destination(body, hostile, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"previous")
    hostile.route(REPORTS, csv(body))
    with pytest.raises(AirflowSkipException, match="no data rows"):
        execute(team(tmp_path, if_empty="skip"))
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert files(tmp_path) == ["team.csv"]


@pytest.mark.parametrize("body", EMPTY_BODIES)
def test_if_empty_fail(body, hostile, tmp_path):
    hostile.route(REPORTS, csv(body))
    with pytest.raises(AirflowFailException, match="no data rows"):
        execute(contributors(tmp_path, if_empty="FAIL"))
    assert files(tmp_path) == []


def test_if_empty_with_the_emulators_idle_org(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, **NO_ACTIVITY))
    assert result["rows"] == 0
    assert (tmp_path / "team.csv").stat().st_size == result["bytes"]
    with pytest.raises(AirflowSkipException):
        execute(team(tmp_path, if_empty="skip", destination=f"file://{tmp_path}/x/", **NO_ACTIVITY))
    assert not (tmp_path / "x").exists() or files(tmp_path / "x") == []


def test_max_bytes_fails_the_task_and_keeps_the_destination(sei_conn, sei_emulator, tmp_path):
    (tmp_path / "team.csv").write_bytes(b"previous")
    with pytest.raises(AirflowFailException, match=r"max_bytes|bytes"):
        execute(team(tmp_path, max_bytes=100))
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    assert leftovers(tmp_path) == []
    assert execute(team(tmp_path, max_bytes="10000000"))["bytes"] > 100


@pytest.mark.parametrize(
    ("cap", "name"), [("max_header_bytes", "header"), ("max_row_bytes", "row")]
)
def test_header_and_row_caps_are_settable(sei_conn, sei_emulator, tmp_path, cap, name):
    (tmp_path / "team.csv").write_bytes(b"previous")
    with pytest.raises(AirflowFailException, match=rf"{cap}=40\b") as info:
        execute(team(tmp_path, **{cap: "40"}))  # the emulator's header and rows are longer
    assert name in str(info.value)
    assert (tmp_path / "team.csv").read_bytes() == b"previous"
    with pytest.raises(AirflowFailException, match=cap):
        execute(team(tmp_path, **{cap: "0"}))  # validated before any request
    assert execute(team(tmp_path, **{cap: 1 << 20}))["rows"] > 0


def test_output_formats(sei_conn, sei_emulator, tmp_path):
    plain = execute(team(tmp_path, destination=f"file://{tmp_path}/plain.csv"))
    packed = execute(team(tmp_path, destination=f"file://{tmp_path}/r/", output_format="csv.gz"))
    assert packed["uri"].endswith(".csv.gz")
    raw = gzip.decompress(Path(packed["uri"].removeprefix("file://")).read_bytes())
    assert raw == (tmp_path / "plain.csv").read_bytes()
    assert (packed["rows"], packed["columns"]) == (plain["rows"], plain["columns"])
    pq = pytest.importorskip("pyarrow.parquet")
    table = execute(team(tmp_path, destination=f"file://{tmp_path}/p/", output_format="Parquet"))
    assert table["uri"].endswith(".parquet")
    read = pq.read_table(table["uri"].removeprefix("file://"))
    assert (read.num_rows, read.column_names) == (plain["rows"], plain["columns"])


# -- failures mid-stream ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.truncate(0.5), Fault.chunked_cut(0.3)])
def test_a_failed_export_leaves_the_previous_file(fault, sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=0)
    execute(team(tmp_path, collection_id="1"))
    before = (tmp_path / "team.csv").read_bytes()
    sei_emulator.set_faults(Faults(script=[fault]))
    with pytest.raises(SEIIncompleteReadError):  # retryable: the task's retries may help
        execute(team(tmp_path, collection_id="1", granularity="daily"))
    assert (tmp_path / "team.csv").read_bytes() == before
    assert files(tmp_path) == ["team.csv"]


def test_a_failed_export_leaves_no_file_when_there_was_none(sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.status(500)]))
    with pytest.raises(Exception, match="500"):
        execute(team(tmp_path, destination=f"file://{tmp_path}/new/"))
    assert files(tmp_path) == []


def test_a_retried_cut_short_body_is_written_once(sei_conn, sei_emulator, tmp_path):
    sei_conn.set(max_retries=1, backoff_initial=0.001, backoff_max=1)
    expected = execute(team(tmp_path, collection_id="1"))
    sei_emulator.set_faults(Faults(script=[Fault.truncate(0.5)]))
    result = execute(team(tmp_path, collection_id="1"))
    assert result == expected  # stats reset for the second attempt: bytes and rows not doubled
    assert (tmp_path / "team.csv").stat().st_size == expected["bytes"]
    assert "truncate:0.5" in [r.fault for r in sei_emulator.requests]


def test_a_4xx_that_no_retry_fixes_fails_the_task(sei_conn, sei_emulator, tmp_path):
    sei_emulator.set_faults(Faults(script=[Fault.status(400, "bad collection")]))
    with pytest.raises(AirflowFailException, match="400"):
        execute(team(tmp_path))
    assert files(tmp_path) == []


# -- destinations ----------------------------------------------------------------------------


def test_object_storage_path_destination_is_written(sei_conn, sei_emulator, tmp_path):
    result = execute(team(tmp_path, destination=ObjectStoragePath(f"file://{tmp_path}/osp.csv")))
    assert result["uri"] == f"file://{tmp_path}/osp.csv"
    # ObjectStoragePath drops a trailing "/": a folder given as one is a folder if it exists.
    (tmp_path / "folder").mkdir()
    result = execute(team(tmp_path, destination=ObjectStoragePath(f"file://{tmp_path}/folder/")))
    assert result["uri"] == f"file://{tmp_path}/folder/{result['filename']}"
    assert files(tmp_path) == sorted(["osp.csv", f"folder/{result['filename']}"])


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
        team(tmp_path, destination=f"s3://{s3.bucket}/{key}", dest_conn_id="aws_default")
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


def test_s3_write_options_reach_the_object(sei_conn, sei_emulator, s3, tmp_path):
    execute(
        team(
            tmp_path,
            destination=f"s3://{s3.bucket}/sei/{{{{ sei.date_start }}}}{{{{ sei.suffix }}}}",
            dest_conn_id="aws_default",
            dest_storage_options={
                "ContentType": "{{ 'text/csv' }}",
                "ServerSideEncryption": "AES256",
                "Metadata": {"source": "sei"},
            },
        )
    )
    head = s3.client().head_object(Bucket=s3.bucket, Key="sei/2024-01-01.csv")
    assert head["ContentType"] == "text/csv"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"] == {"source": "sei"}


def test_s3_failed_export_leaves_the_previous_object_and_nothing_else(
    sei_conn, sei_emulator, s3, tmp_path
):
    sei_conn.set(max_retries=0)
    destination = f"s3://{s3.bucket}/sei/team.csv"
    execute(team(tmp_path, collection_id="1", destination=destination, dest_conn_id="aws_default"))
    before = s3.read("sei/team.csv")
    sei_emulator.set_faults(Faults(script=[Fault.truncate(0.6)]))
    with pytest.raises(SEIIncompleteReadError):
        execute(
            team(
                tmp_path,
                collection_id="1",
                granularity="daily",
                destination=destination,
                dest_conn_id="aws_default",
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
    assert s3.uploads() == []


def test_s3_missing_bucket_fails_before_any_request(sei_conn, sei_emulator, s3, tmp_path):
    with pytest.raises(AirflowFailException, match="no-such-bucket"):
        execute(team(tmp_path, destination="s3://aws_default@no-such-bucket-sei/x.csv"))
    assert report_bodies(sei_emulator) == []


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


# -- deprecated spellings --------------------------------------------------------------------


def test_deprecated_parameter_names_still_work_and_warn(sei_conn, sei_emulator, s3, tmp_path):
    with pytest.warns(DeprecationWarning, match="is deprecated: use") as record:
        op = team(
            tmp_path,
            sei_conn_id="harness_sei_default",
            destination=f"s3://{s3.bucket}/old.csv",
            destination_conn_id="aws_default",
            destination_storage_options={"ContentType": "text/csv"},
        )
    messages = sorted(str(w.message) for w in record if w.category is DeprecationWarning)
    assert messages == [
        "destination_conn_id is deprecated: use dest_conn_id",
        "destination_storage_options is deprecated: use dest_storage_options",
        "sei_conn_id is deprecated: use harness_sei_conn_id",
    ]
    # Each warning points at the line that built the operator, not into Airflow.
    assert {Path(w.filename).name for w in record} == {Path(__file__).name}
    assert (op.harness_sei_conn_id, op.dest_conn_id) == ("harness_sei_default", "aws_default")
    assert op.dest_storage_options == {"ContentType": "text/csv"}
    assert not hasattr(op, "sei_conn_id")
    execute(op)
    head = s3.client().head_object(Bucket=s3.bucket, Key="old.csv")
    assert head["ContentType"] == "text/csv"


def test_a_new_name_wins_over_its_deprecated_spelling(tmp_path):
    with pytest.warns(DeprecationWarning, match="destination_conn_id is deprecated"):
        op = team(tmp_path, dest_conn_id="new_conn", destination_conn_id="old_conn")
    assert op.dest_conn_id == "new_conn"


def test_the_old_default_connection_id_still_works_and_warns(
    sei_emulator, make_sei_conn, monkeypatch, tmp_path
):
    import os

    make_sei_conn(sei_emulator.base_url, "sei-emulator-key")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEI_DEFAULT", os.environ.pop("AIRFLOW_CONN_HARNESS_SEI_DEFAULT")
    )
    with pytest.warns(DeprecationWarning, match="'sei_default' is deprecated"):
        result = execute(team(tmp_path))
    assert result["rows"] > 0
    assert len(report_bodies(sei_emulator)) == 1
