"""Output formats: csv as sent, csv.gz that gzip reads, Parquet typed and streamed in row groups."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import gzip
import io
import sys
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError, SEIResponseError
from airflow_provider_sei.output.columns import AppendColumns
from airflow_provider_sei.output.formats import (
    OUTPUT_FORMATS,
    CSVEncoder,
    GzipEncoder,
    ParquetEncoder,
    column_kind,
    file_suffix,
    open_encoder,
    parse_output_format,
    unique_names,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

UTC = dt.timezone.utc
COLUMNS = {
    "date_start": "2024-01-01",
    "date_end": "2024-03-31",
    "granularity": "weekly",
    "collection_id": "0042",
    "team_id": "17",
    "export_type": "team",
    "exported_at": "2024-04-01T06:00:00.250000+00:00",
    "run_id": "scheduled__2024-04-01T06:00:00+00:00",
}


class Handle(io.BytesIO):
    """A binary handle that records its writes (and lets a test check it stays open)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


def encode(fmt: str, body: bytes, chunk: int = 1 << 20, **kwargs) -> bytes:
    """The body through ``open_encoder(fmt)`` in ``chunk``-byte writes; the handle's bytes."""
    handle = Handle()
    encoder = open_encoder(fmt, handle, **kwargs)
    for start in range(0, len(body), chunk):
        encoder.write(body[start : start + chunk])
    encoder.close()
    assert not handle.closed
    assert encoder.bytes_written == len(handle.getvalue())
    return handle.getvalue()


def parquet(body: bytes, chunk: int = 1 << 20, **kwargs) -> tuple[pa.Table, ParquetEncoder]:
    """The body through a ``ParquetEncoder`` (``kwargs`` for it), read back."""
    handle = io.BytesIO()
    encoder = ParquetEncoder(handle, **kwargs)
    for start in range(0, len(body), chunk):
        encoder.write(body[start : start + chunk])
    encoder.close()
    assert encoder.bytes_written == len(handle.getvalue())
    file = pq.ParquetFile(io.BytesIO(handle.getvalue()))
    assert file.metadata.num_row_groups == encoder.row_groups
    return file.read(), encoder


def types(table: pa.Table) -> dict[str, str]:
    return {field.name: str(field.type) for field in table.schema}


# -- choosing a format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "suffix"),
    [
        ("csv", "csv", ".csv"),
        ("CSV", "csv", ".csv"),
        (" Csv.GZ ", "csv.gz", ".csv.gz"),
        ("Parquet", "parquet", ".parquet"),
    ],
)
def test_parse_output_format_any_case(value: str, fmt: str, suffix: str) -> None:
    assert parse_output_format(value) == fmt
    assert file_suffix(value) == suffix


@pytest.mark.parametrize("value", ["gz", "json", "csv.zip", "", None, 1])
def test_an_unknown_format_is_refused(value) -> None:
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_output_format(value)
    assert info.value.field == "output_format"
    assert info.value.allowed == "one of csv, csv.gz, parquet"


def test_parquet_without_pyarrow_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # "import pyarrow" now fails
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_output_format("parquet")
    assert "airflow-provider-sei[parquet]" in info.value.allowed
    assert "pyarrow" in info.value.allowed
    with pytest.raises(SEIInvalidRequestError, match=r"airflow-provider-sei\[parquet\]"):
        open_encoder("parquet", io.BytesIO())
    assert parse_output_format("csv.gz") == "csv.gz"  # the other formats do not need it
    assert file_suffix("parquet") == ".parquet"  # nor does naming a file


def test_open_encoder_picks_the_encoder_and_wraps_the_columns() -> None:
    assert OUTPUT_FORMATS == ("csv", "csv.gz", "parquet")
    assert isinstance(open_encoder("csv", io.BytesIO()), CSVEncoder)
    assert isinstance(open_encoder("CSV.GZ", io.BytesIO()), GzipEncoder)
    assert isinstance(open_encoder("parquet", io.BytesIO()), ParquetEncoder)
    assert isinstance(open_encoder("csv", io.BytesIO(), columns={"run_id": "r"}), AppendColumns)
    assert isinstance(open_encoder("csv", io.BytesIO(), columns={}), CSVEncoder)


# -- csv and csv.gz ------------------------------------------------------------------------

BODY = (
    "Collection Name,PR Velocity per Developer,Lead Time for Changes (mean),"
    "Lead Time for Changes Rating\n"
    'Root,1.50,2.25,Elite\n"Team, ""Core""\nNorth",,—,—\nÉquipe,3,4,Low\n'
).encode()


def test_csv_passes_the_body_through() -> None:
    assert encode("csv", BODY, chunk=7) == BODY
    assert encode("csv", b"") == b""


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_gzip_is_a_standard_gz_of_the_body(chunk: int) -> None:
    data = encode("csv.gz", BODY, chunk=chunk)
    assert gzip.decompress(data) == BODY
    with gzip.open(io.BytesIO(data)) as handle:
        assert handle.read() == BODY
    assert data[:2] == b"\x1f\x8b"


def test_gzip_of_an_empty_body_is_an_empty_gz() -> None:
    data = encode("csv.gz", b"")
    assert gzip.decompress(data) == b""


def test_gzip_with_columns_holds_the_widened_csv() -> None:
    data = encode("csv.gz", BODY, chunk=3, columns={"team_id": "17", "run_id": "r,1"})
    rows = list(csv.reader(io.StringIO(gzip.decompress(data).decode(), newline="")))
    assert rows[0][-2:] == ["team_id", "run_id"]
    assert all(row[-2:] == ["17", "r,1"] for row in rows[1:])
    assert rows[2][0] == 'Team, "Core"\nNorth'


def test_gzip_level_is_the_callers_choice() -> None:
    body = BODY * 200
    fast, small = io.BytesIO(), io.BytesIO()
    for handle, level in ((fast, 1), (small, 9)):
        encoder = GzipEncoder(handle, level=level)
        encoder.write(body)
        encoder.close()
        assert zlib.decompress(handle.getvalue(), 31) == body
    assert len(small.getvalue()) <= len(fast.getvalue())


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=10))
def test_property_gzip_round_trips_any_chunking(body: bytes, cuts: list[int]) -> None:
    handle = io.BytesIO()
    encoder = GzipEncoder(handle)
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(body)), len(body)]:
        encoder.write(body[start:cut])
        start = cut
    encoder.close()
    assert gzip.decompress(handle.getvalue()) == body
    assert encoder.bytes_written == len(handle.getvalue())


# -- Parquet: the schema -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Collection Name", "string"),
        ("Lead Time for Changes Rating", "string"),
        ("Developer", "string"),
        ("Team Hierarchy", "string"),
        ("Sprint", "string"),
        ("Status", "string"),
        ("Email", "string"),
        ("granularity", "string"),
        ("collection_id", "string"),
        ("team_id", "string"),
        ("export_type", "string"),
        ("run_id", "string"),
        ("date_start", "date"),
        ("date_end", "date"),
        ("Start_Date", "date"),
        ("End_Date", "date"),
        ("sprintEndDate", "date"),
        ("exported_at", "timestamp"),
        ("PR Velocity per Developer", "number"),  # a catalogue metric: a unit, not a name
        ("Commits per Developer", "number"),
        ("Lead Time for Changes (p95)", "number"),
        ("Update Count", "number"),  # "update" is not the word "date"
        ("Overall DORA Score", "number"),
    ],
)
def test_column_kind_by_name(name: str, kind: str) -> None:
    assert column_kind(name) == kind


def test_unique_names_suffix_repeats() -> None:
    assert unique_names(["A", "B", "A", "A"]) == ["A", "B", "A_2", "A_3"]
    assert unique_names(["A", "A_2", "A"]) == ["A", "A_2", "A_3"]


def test_parquet_types_nulls_dates_and_appended_columns() -> None:
    body = (
        "\ufeffCollection Name,PR Velocity per Developer,Deployment Frequency,"
        "Deployment Frequency Rating,Start_Date,End_Date\r\n"
        "Root,1.50,2,Elite,2024-01-01,2024-01-07\r\n"
        '"Team, ""Core""\nNorth",,—,—,2024-01-08,\r\n'
        "Équipe,N/A,-,Low,,2024-01-14\r\n"
        "Last,3,0.5,High,2024-01-15,2024-01-21"  # no final newline
    ).encode()
    data = encode("parquet", body, chunk=3, columns=COLUMNS)
    table = pq.read_table(io.BytesIO(data))
    assert types(table) == {
        "Collection Name": "string",  # the BOM is not part of the name
        "PR Velocity per Developer": "double",
        "Deployment Frequency": "double",
        "Deployment Frequency Rating": "string",
        "Start_Date": "date32[day]",
        "End_Date": "date32[day]",
        "date_start": "date32[day]",
        "date_end": "date32[day]",
        "granularity": "string",
        "collection_id": "string",
        "team_id": "string",
        "export_type": "string",
        "exported_at": "timestamp[us, tz=UTC]",
        "run_id": "string",
    }
    rows = table.to_pylist()
    assert [r["Collection Name"] for r in rows] == ["Root", 'Team, "Core"\nNorth', "Équipe", "Last"]
    assert [r["PR Velocity per Developer"] for r in rows] == [1.5, None, None, 3.0]
    assert [r["Deployment Frequency"] for r in rows] == [2.0, None, None, 0.5]
    assert [r["Deployment Frequency Rating"] for r in rows] == ["Elite", "—", "Low", "High"]
    assert [r["Start_Date"] for r in rows] == [
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 8),
        None,
        dt.date(2024, 1, 15),
    ]
    assert rows[1]["End_Date"] is None
    assert {r["date_start"] for r in rows} == {dt.date(2024, 1, 1)}
    assert {r["collection_id"] for r in rows} == {"0042"}  # a string: the zeros stay
    assert {r["exported_at"] for r in rows} == {dt.datetime(2024, 4, 1, 6, 0, 0, 250000, UTC)}


def test_numbers_are_float64_even_when_the_first_rows_are_whole() -> None:
    rows = "".join(f"T{i},{i}\n" for i in range(200)) + "Late,2.75\n"
    table, encoder = parquet(f"Collection Name,A\n{rows}".encode(), chunk=64, block_size=256)
    assert types(table) == {"Collection Name": "string", "A": "double"}
    assert table.column("A").to_pylist()[-1] == 2.75
    assert encoder.row_groups > 1


def test_a_column_with_text_in_the_first_block_is_a_string() -> None:
    body = b"Collection Name,Kind,Start_Date,exported_at\nA,x1,soon,2024-01-01\nB,2,2024-01-02,\n"
    table, _ = parquet(body)
    assert types(table) == {
        "Collection Name": "string",
        "Kind": "string",
        "Start_Date": "string",
        "exported_at": "string",  # no zone offset: not a UTC timestamp, kept as sent
    }
    assert table.column("Kind").to_pylist() == ["x1", "2"]


def test_text_in_a_numeric_column_after_the_first_block_names_column_and_value() -> None:
    rows = "".join(f"T{i},{i}.5,{i}\n" for i in range(100))
    body = f"Collection Name,A,B\n{rows}T,1,oops\n".encode()
    handle = io.BytesIO()
    encoder = ParquetEncoder(handle, block_size=200)

    def convert(encoder: ParquetEncoder) -> None:
        encoder.write(body)
        encoder.close()

    with pytest.raises(SEIResponseError) as info:
        convert(encoder)
    assert "'B'" in str(info.value)
    assert "'oops'" in str(info.value)
    written = len(handle.getvalue())
    del encoder  # pyarrow's writer, collected, would write a footer: not into this handle
    gc.collect()
    assert len(handle.getvalue()) == written


def test_a_later_bad_date_names_column_and_value() -> None:
    rows = "".join(f"T{i},2024-01-{i % 28 + 1:02d}\n" for i in range(100))
    with pytest.raises(SEIResponseError, match=r"'Start_Date'.*'31/01/2024'"):
        parquet(f"Name,Start_Date\n{rows}T,31/01/2024\n".encode(), block_size=200)


def test_repeated_header_names_are_made_unique() -> None:
    table, _ = parquet(b"Name,A,A,Name\nx,1,2,y\n")
    assert table.column_names == ["Name", "A", "A_2", "Name_2"]
    assert table.to_pylist() == [{"Name": "x", "A": 1.0, "A_2": 2.0, "Name_2": "y"}]


def test_empty_body_is_a_valid_parquet_with_an_empty_schema() -> None:
    data = encode("parquet", b"")
    table = pq.read_table(io.BytesIO(data))
    assert table.num_columns == 0
    assert table.num_rows == 0
    assert encode("parquet", b"", columns=COLUMNS) == data  # no header, nothing to add to


@pytest.mark.parametrize("newline", [b"\n", b""])
def test_header_only_body_is_the_schema_with_no_rows(newline: bytes) -> None:
    body = b"Collection Name,A,Start_Date" + newline
    table = pq.read_table(io.BytesIO(encode("parquet", body, chunk=2, columns={"run_id": "r"})))
    assert table.num_rows == 0
    assert types(table) == {
        "Collection Name": "string",
        "A": "double",
        "Start_Date": "date32[day]",
        "run_id": "string",
    }


def test_blank_lines_are_no_rows() -> None:
    table, _ = parquet(b"Name,A\n\nx,1\n\r\n\ny,2\n\n")
    assert table.to_pylist() == [{"Name": "x", "A": 1.0}, {"Name": "y", "A": 2.0}]


def test_row_groups_follow_the_block_size() -> None:
    rows = "".join(f'"Team {i}\nline two",{i}.25,2024-02-{i % 28 + 1:02d}\n' for i in range(2000))
    body = f"Team Name,Score,Start_Date\n{rows}".encode()
    table, encoder = parquet(body, chunk=1000, block_size=8 << 10)
    assert encoder.row_groups > 1  # and the file has as many (see parquet())
    assert table.num_rows == 2000 == encoder.rows
    assert table.column("Team Name").to_pylist()[1999] == "Team 1999\nline two"
    assert table.column("Score").to_pylist()[:2] == [0.25, 1.25]


def test_a_chunk_larger_than_the_block_is_cut_into_blocks() -> None:
    body = b"Name,A\n" + b"".join(b"t%d,%d\n" % (i, i) for i in range(5000))
    table, encoder = parquet(body, chunk=len(body), block_size=4096)
    assert encoder.row_groups > 5
    assert table.column("A").to_pylist() == [float(i) for i in range(5000)]


def test_compression_is_the_callers_choice() -> None:
    body = b"Name,A\n" + b"".join(b"t%d,%d\n" % (i, i % 7) for i in range(3000))
    for codec in ("snappy", "zstd", "none"):
        handle = io.BytesIO()
        encoder = ParquetEncoder(handle, compression=codec)
        encoder.write(body)
        encoder.close()
        metadata = pq.ParquetFile(io.BytesIO(handle.getvalue())).metadata
        expected = "UNCOMPRESSED" if codec == "none" else codec.upper()
        assert metadata.row_group(0).column(1).compression == expected


def test_memory_stays_bounded_on_a_large_conversion() -> None:
    """A ~64 MiB body: Python's peak allocations stay near one block, far below the body."""
    row = b"Developer %06d,%d.25,12.50,,Elite,2024-03-%02d\n"
    pool = b"".join(row % (i, i % 500, i % 28 + 1) for i in range(40_000))  # ~1.6 MiB
    header = b"Collection Name,A,B,C,Overall Rating,Start_Date\n"
    total = 0
    tracemalloc.start()
    try:
        encoder = ParquetEncoder(io.BufferedWriter(_Discard()), block_size=8 << 20)
        encoder.write(header)
        while total < 64 << 20:
            encoder.write(pool)
            total += len(pool)
        encoder.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert encoder.rows == 40_000 * (total // len(pool))
    assert encoder.row_groups >= 7
    assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MiB for a {total / 2**20:.0f} MiB body"


class _Discard(io.RawIOBase):
    """A writable raw file that keeps nothing."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return memoryview(data).nbytes


# -- Parquet: every chunking ---------------------------------------------------------------


def rfc4180(value: str) -> str:
    """A CSV field as RFC 4180 wants it (Python's writer leaves a bare "\\r" unquoted)."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


names = st.text(alphabet=st.sampled_from(list('ab ,"\n\r—1')), max_size=5)
numbers = st.one_of(
    st.just(""), st.just("—"), st.just("N/A"), st.integers(-99, 99).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.2f}"),
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(names, numbers), max_size=12),
    terminator=st.sampled_from(["\n", "\r\n"]),
    block_size=st.integers(1, 80),
    data=st.data(),
)
def test_property_parquet_matches_the_csv_module_for_any_chunking(
    rows, terminator, block_size, data
) -> None:
    lines = [["Team Name", "Value"], *rows]
    body = "".join(",".join(map(rfc4180, line)) + terminator for line in lines).encode()
    chunk = data.draw(st.integers(1, max(1, len(body))))
    table, _ = parquet(body, chunk=chunk, block_size=block_size)
    expected = list(csv.reader(io.StringIO(body.decode(), newline="")))[1:]
    nulls = {"", "—", "N/A"}
    assert table.column("Team Name").to_pylist() == [name for name, _ in expected]
    assert table.column("Value").to_pylist() == [
        None if value in nulls else float(value) for _, value in expected
    ]
