"""Dataset names, facets and the lazy import of ``airflow_provider_sei.lineage``.

Names are checked against OpenLineage's own statement of its naming spec
(``openlineage.client.naming``) and against what Airflow's asset converters make of the
same URI, so that the object an export writes is the dataset the next task reads.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openlineage.client.naming import dataset as naming
from openlineage.client.serde import Serde

from airflow_provider_sei.lineage import (
    LineageFacts,
    column_type,
    input_name,
    operator_lineage,
    output_name,
)
from airflow_provider_sei.output.formats import open_encoder

BASE = "https://app.harness.io/gateway/sei/api"


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param(
            BASE, ("https://app.harness.io", "gateway/sei/api/reports/team/123"), id="saas"
        ),
        pytest.param(
            "https://App.Harness.IO:443/gateway/sei/api/",
            ("https://app.harness.io", "gateway/sei/api/reports/team/123"),
            id="case-default-port-slash",
        ),
        pytest.param(
            "http://127.0.0.1:8080", ("http://127.0.0.1:8080", "reports/team/123"), id="no-path"
        ),
        pytest.param(
            "https://sei.example.com:8443/api",
            ("https://sei.example.com:8443", "api/reports/team/123"),
            id="own-port",
        ),
        pytest.param("http://[::1]:9000", ("http://[::1]:9000", "reports/team/123"), id="ipv6"),
    ],
)
def test_the_input_is_named_by_the_apis_origin_and_the_export(base_url, expected):
    assert input_name(base_url, "reports/team/123") == expected


@pytest.mark.parametrize(
    ("uri", "spec"),
    [
        ("s3://reports/sei/2024-01-01/team.csv", naming.S3("reports", "sei/2024-01-01/team.csv")),
        ("s3a://reports/a.parquet", naming.S3("reports", "a.parquet")),
        ("gs://bkt/x/y.csv.gz", naming.GCS("bkt", "x/y.csv.gz")),
        ("gcs://bkt/y.csv", naming.GCS("bkt", "y.csv")),
        ("file:///data/sei/team.csv", naming.LocalFileSystem("/data/sei/team.csv")),
        ("file://worker-3/data/team.csv", naming.RemoteFileSystem("worker-3", "/data/team.csv")),
        ("hdfs://nn:8020/sei/x.csv", naming.HDFS("nn", "8020", "/sei/x.csv")),
    ],
)
def test_the_output_is_named_as_the_openlineage_spec_names_it(uri, spec):
    assert output_name(uri) == (spec.get_namespace(), spec.get_name())


@pytest.mark.parametrize(
    "uri", ["file:///data/sei/team.csv", "s3://reports/sei/2024-01-01/team.csv"]
)
def test_the_output_is_the_dataset_airflow_makes_of_the_same_asset(uri):
    from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    converted = translate_airflow_asset(Asset(uri), None)
    assert output_name(uri) == (converted.namespace, converted.name)


_KEY_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/")
_SEGMENT = st.text(_KEY_CHARS, min_size=1, max_size=12)


@given(
    scheme=st.sampled_from(["s3", "gs"]),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{2,20}", fullmatch=True),
    segments=st.lists(_SEGMENT, min_size=1, max_size=4),
)
def test_a_key_is_never_cut_whatever_it_holds(scheme, bucket, segments):
    # ``#``, ``?``, ``%``, spaces and any letter are part of an object's name.
    key = "/".join(segments)
    namespace, name = output_name(f"{scheme}://{bucket}/{key}")
    assert (namespace, name) == (f"{scheme}://{bucket}", key)


@given(segments=st.lists(_SEGMENT, min_size=1, max_size=4))
def test_a_local_path_is_kept_whole(segments):
    path = "/" + "/".join(segments)
    assert output_name(f"file://{path}") == ("file", path)


# -- types ----------------------------------------------------------------------------------

SAMPLE = (
    b"Collection Name,Developer Rating,Lead Time for Changes (mean),Start Date,PRs per Developer\n"
    b"Ledger,GOOD,1.5,2024-01-01,3\n"
    b"Billing,LOW,2.0,2024-01-08,4\n"
)
ADDED = {
    "date_start": "2024-01-01",
    "date_end": "2024-01-07",
    "granularity": "weekly",
    "collection_id": "123",
    "team_id": "123",
    "export_type": "contributor",
    "exported_at": "2024-01-08T09:30:00+00:00",
    "run_id": "manual__2024-01-08",
}


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


def test_parquet_columns_get_the_types_the_encoder_writes():
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _Sink()
    encoder = open_encoder("parquet", sink, columns=ADDED)
    encoder.write(SAMPLE)
    encoder.close()
    written = pq.read_schema(pa.BufferReader(bytes(sink.data)))

    facts = LineageFacts(
        BASE,
        "reports/contributor/123",
        ["s3://b/k.parquet"],
        columns=SAMPLE.split(b"\n", 1)[0].decode().split(","),
        output_format="parquet",
        added_columns=list(ADDED),
    )
    assert [(n, column_type(n, "parquet")) for n in facts.written_columns()] == [
        (f.name, str(f.type)) for f in written
    ]


def test_repeated_names_are_made_unique_in_parquet_as_the_encoder_does():
    facts = LineageFacts(BASE, "x", columns=["A", "A", "B"], output_format="parquet")
    assert facts.written_columns() == ["A", "A_2", "B"]
    assert LineageFacts(BASE, "x", columns=["A", "A"]).written_columns() == ["A", "A"]


@pytest.mark.parametrize("output_format", ["csv", "csv.gz"])
def test_csv_columns_are_strings(output_format):
    assert column_type("Lead Time for Changes (mean)", output_format) == "string"
    assert column_type("exported_at", output_format) == "string"


# -- the OperatorLineage --------------------------------------------------------------------


def test_nothing_is_claimed_before_an_export_wrote():
    lineage = operator_lineage(None)
    assert (lineage.inputs, lineage.outputs) == ([], [])


def test_one_export_is_one_input_and_one_output_with_schema_and_statistics():
    facts = LineageFacts(
        BASE,
        "reports/team/123",
        ["s3://reports/sei/team.csv.gz"],
        columns=["Collection Name", "Deployment Frequency"],
        rows=12,
        bytes=345,
        output_format="csv.gz",
        added_columns=["date_start"],
    )
    event = [Serde.to_dict(d) for d in operator_lineage(facts).outputs]
    (inp,) = [Serde.to_dict(d) for d in operator_lineage(facts).inputs]
    assert (inp["namespace"], inp["name"]) == facts_input(facts)
    assert [f["name"] for f in inp["facets"]["schema"]["fields"]] == facts.columns
    (out,) = event
    assert (out["namespace"], out["name"]) == ("s3://reports", "sei/team.csv.gz")
    assert [(f["name"], f["type"]) for f in out["facets"]["schema"]["fields"]] == [
        ("Collection Name", "string"),
        ("Deployment Frequency", "string"),
        ("date_start", "string"),
    ]
    stats = out["outputFacets"]["outputStatistics"]
    assert (stats["rowCount"], stats["size"]) == (12, 345)


def facts_input(facts: LineageFacts) -> tuple[str, str]:
    return input_name(facts.base_url, facts.source)


def test_many_exports_list_each_input_once_and_every_file():
    teams = [
        LineageFacts(BASE, f"reports/team/{t}", [f"file:///out/team-{t}.csv"], rows=t, bytes=2 * t)
        for t in (123, 456, 123)
    ]
    merged = LineageFacts(BASE, "", ["file:///out/merged.csv"], columns=["A", "team_id"], rows=9)
    lineage = operator_lineage([*teams, merged])
    assert [d.name for d in lineage.inputs] == [
        "gateway/sei/api/reports/team/123",
        "gateway/sei/api/reports/team/456",
    ]
    assert [d.name for d in lineage.outputs] == [
        "/out/team-123.csv",
        "/out/team-456.csv",
        "/out/team-123.csv",
        "/out/merged.csv",
    ]
    assert [d.outputFacets["outputStatistics"].rowCount for d in lineage.outputs] == [
        123,
        456,
        123,
        9,
    ]
    assert "schema" not in lineage.outputs[0].facets  # a team's own header is not known
    assert [f.name for f in lineage.outputs[-1].facets["schema"].fields] == ["A", "team_id"]


def test_a_file_object_destination_has_an_input_and_no_output():
    lineage = operator_lineage(LineageFacts(BASE, "reports/team/1", [], columns=["A"], rows=1))
    assert [d.name for d in lineage.inputs] == ["gateway/sei/api/reports/team/1"]
    assert lineage.outputs == []


# -- without the OpenLineage provider -------------------------------------------------------

_OPENLINEAGE = ("openlineage", "airflow.providers.openlineage")


def test_the_provider_imports_and_builds_operators_without_openlineage(monkeypatch):
    """Re-import every module of the provider with OpenLineage unimportable."""
    import airflow_provider_sei

    for name in list(sys.modules):
        if name.startswith(_OPENLINEAGE):
            monkeypatch.setitem(sys.modules, name, None)  # "import x" now raises ImportError
        elif name.startswith("airflow_provider_sei."):
            monkeypatch.delitem(sys.modules, name)  # put back after the test
    for name in _OPENLINEAGE:
        monkeypatch.setitem(sys.modules, name, None)

    modules = pkgutil.walk_packages(airflow_provider_sei.__path__, "airflow_provider_sei.")
    for info in modules:
        importlib.import_module(info.name)
    lineage = importlib.import_module("airflow_provider_sei.lineage")
    reports = importlib.import_module("airflow_provider_sei.operators.reports")
    fanout = importlib.import_module("airflow_provider_sei.operators.fanout")

    reports.SEITeamReportOperator(task_id="t", collection_id="1", destination="file:///x.csv")
    fanout.SEIMultiTeamReportOperator(
        task_id="m", team_ref_ids=[1], merged_destination="file:///x.csv"
    )
    facts = lineage.LineageFacts(BASE, "reports/team/1", ["file:///x.csv"], rows=1)
    # Only the OpenLineage provider calls it; without the provider it cannot build anything.
    with pytest.raises(ImportError):
        lineage.operator_lineage(facts)
