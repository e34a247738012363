"""Metadata columns: every record widened once, whatever the chunking, quotes and line ends."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.output.columns import (
    METADATA_COLUMNS,
    AppendColumns,
    first_record_end,
    last_record_end,
    parse_add_columns,
)

COLUMNS = {"date_start": "2024-01-01", "run_id": "manual__2024-01-01T00:00:00+00:00"}
SUFFIX = b",2024-01-01,manual__2024-01-01T00:00:00+00:00"


class Collect:
    """An encoder that keeps what it is given (stands for CSV, gzip or Parquet)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    @property
    def bytes_written(self) -> int:
        return len(self.data)

    def write(self, chunk: bytes) -> None:
        assert isinstance(chunk, bytes)
        self.data += chunk

    def close(self) -> None:
        self.closed = True


def widen(body: bytes, columns: dict[str, str] = COLUMNS, cuts: list[int] | None = None) -> bytes:
    """The body through ``AppendColumns``, written in pieces cut at ``cuts`` (sorted)."""
    inner = Collect()
    encoder = AppendColumns(inner, columns)
    start = 0
    for cut in [*(cuts or []), len(body)]:
        encoder.write(body[start:cut])
        start = cut
    encoder.close()
    assert inner.closed
    assert encoder.bytes_written == len(inner.data)
    return bytes(inner.data)


def every_split(body: bytes, columns: dict[str, str] = COLUMNS) -> bytes:
    """The output, checked to be the same for one chunk, 1-byte chunks and every 2-way split."""
    whole = widen(body, columns)
    assert widen(body, columns, list(range(1, len(body)))) == whole
    for cut in range(len(body) + 1):
        assert widen(body, columns, [cut]) == whole, cut
    return whole


# -- parse_add_columns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ([], ()),
        ("", ()),
        ("  ", ()),
        ("[]", ()),
        (["date_start", "run_id"], ("date_start", "run_id")),
        (("team_id",), ("team_id",)),
        ("date_start, run_id", ("date_start", "run_id")),
        ("exported_at", ("exported_at",)),
        ("['date_start', 'run_id']", ("date_start", "run_id")),
        ('["Export_Type"]', ("export_type",)),
        (list(METADATA_COLUMNS), METADATA_COLUMNS),
    ],
)
def test_parse_add_columns_accepts_lists_strings_and_rendered_lists(value, expected) -> None:
    assert parse_add_columns(value) == expected


@pytest.mark.parametrize(
    "value",
    ["date_begin", ["run_id", "nope"], "['date_start', 3]", "[date_start", 42, {"run_id": 1}],
)
def test_parse_add_columns_rejects_what_is_not_a_list_of_known_names(value) -> None:
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_add_columns(value)
    assert info.value.field == "add_columns"
    for name in METADATA_COLUMNS:
        assert name in info.value.allowed


def test_parse_add_columns_rejects_a_name_given_twice() -> None:
    with pytest.raises(SEIInvalidRequestError, match="'run_id' is repeated"):
        parse_add_columns("run_id, date_start, RUN_ID")


# -- AppendColumns: the shapes of a body ---------------------------------------------------


def test_header_and_every_record_get_the_columns() -> None:
    body = b"Collection Name,A\nRoot,1.00\nChild,\n"
    assert every_split(body) == (
        b"Collection Name,A,date_start,run_id\nRoot,1.00" + SUFFIX + b"\nChild," + SUFFIX + b"\n"
    )


def test_crlf_line_ends_are_kept() -> None:
    body = b"C,A\r\nX,1\r\nY,2\r\n"
    assert every_split(body) == (
        b"C,A,date_start,run_id\r\nX,1" + SUFFIX + b"\r\nY,2" + SUFFIX + b"\r\n"
    )


def test_a_final_record_without_newline_gets_the_columns_at_close() -> None:
    widened = every_split(b"C,A\nX,1\nY,2")
    assert widened == b"C,A,date_start,run_id\nX,1" + SUFFIX + b"\nY,2" + SUFFIX
    assert every_split(b"C,A\r\nX,1\r") == b"C,A,date_start,run_id\r\nX,1" + SUFFIX + b"\r"


def test_empty_body_stays_empty() -> None:
    assert widen(b"") == b""
    assert widen(b"", cuts=[0, 0]) == b""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"C,A\n", b"C,A,date_start,run_id\n"),
        (b"C,A\r\n", b"C,A,date_start,run_id\r\n"),
        (b"C,A", b"C,A,date_start,run_id"),
        (b'"Multi\nline",A\n', b'"Multi\nline",A,date_start,run_id\n'),
    ],
)
def test_header_only_body_gets_the_names(body: bytes, expected: bytes) -> None:
    assert every_split(body) == expected


def test_blank_lines_are_left_alone() -> None:
    body = b"C,A\n\nX,1\n\n\nY,2\n\n"
    assert every_split(body) == (
        b"C,A,date_start,run_id\n\nX,1" + SUFFIX + b"\n\n\nY,2" + SUFFIX + b"\n\n"
    )
    crlf = b"C,A\r\n\r\nX,1\r\n\r\n"
    assert every_split(crlf) == b"C,A,date_start,run_id\r\n\r\nX,1" + SUFFIX + b"\r\n\r\n"


def test_quoted_newlines_commas_and_escaped_quotes_are_data() -> None:
    body = b'C,A\n"Team, ""Core""\nsecond line",1\n"x\r\ny",""\nplain,2\n'
    out = every_split(body)
    assert list(csv.reader(io.StringIO(out.decode(), newline=""))) == [
        ["C", "A", "date_start", "run_id"],
        ['Team, "Core"\nsecond line', "1", *COLUMNS.values()],
        ["x\r\ny", "", *COLUMNS.values()],
        ["plain", "2", *COLUMNS.values()],
    ]


def test_a_utf8_bom_stays_in_front_of_the_header() -> None:
    out = every_split("\ufeffC,A\nÉquipe — 1,1\n".encode())
    assert out == "\ufeffC,A,date_start,run_id\nÉquipe — 1,1".encode() + SUFFIX + b"\n"


def test_values_are_csv_escaped() -> None:
    columns = {"run_id": 'a,"b"', "team_id": "line\nbreak"}
    out = every_split(b"C\nX\n\nY\n", columns)
    assert list(csv.reader(io.StringIO(out.decode(), newline=""))) == [
        ["C", "run_id", "team_id"],
        ["X", 'a,"b"', "line\nbreak"],
        [],
        ["Y", 'a,"b"', "line\nbreak"],
    ]


def test_no_columns_passes_the_stream_through() -> None:
    assert widen(b"C,A\n\nX,1", {}, [3, 5]) == b"C,A\n\nX,1"


@pytest.mark.parametrize("header", [b"C,run_id\n", b"C,Run_ID\n", b'C," run_id"\n'])
def test_a_header_that_already_has_the_column_is_refused(header: bytes) -> None:
    with pytest.raises(SEIInvalidRequestError) as info:
        widen(header + b"X,1\n")
    assert info.value.field == "add_columns"
    assert info.value.value == "run_id"
    assert "ambiguous" in str(info.value)


def test_many_chunks_without_quotes_take_the_fast_path_and_stay_exact() -> None:
    rows = b"".join(b"Team %d,%d.25,\xe2\x80\x94\n" % (i, i) for i in range(20_000))
    body = b"C,A,Rating\n" + rows
    cuts = list(range(7, len(body), 65_537))
    out = widen(body, cuts=cuts)
    assert out == b"C,A,Rating,date_start,run_id\n" + rows.replace(b"\n", SUFFIX + b"\n")


# -- record boundaries ---------------------------------------------------------------------


def test_record_ends_skip_newlines_in_quotes() -> None:
    data = b'a,"b\nc"\nd\n"e\n'
    assert first_record_end(data, False) == (7, False)
    assert first_record_end(data, True) == (4, False)  # the quote at 2 closes the field
    assert last_record_end(data, False) == (9, True)
    assert last_record_end(b"no newline", False) == (-1, False)
    assert last_record_end(b'"open\nstill', False) == (-1, True)


# -- every chunking ------------------------------------------------------------------------


def rfc4180(value: str) -> str:
    """A CSV field as RFC 4180 wants it (Python's writer leaves a bare "\\r" unquoted)."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


cells = st.text(
    alphabet=st.sampled_from(list('ab ,"\n\r—é1.')), max_size=6
)  # quotes, separators, newlines, CR, non-ASCII
rows_strategy = st.lists(st.lists(cells, min_size=2, max_size=2), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    rows=rows_strategy,
    blank=st.lists(st.booleans(), max_size=6),
    terminator=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
    values=st.lists(cells, min_size=1, max_size=3),
    data=st.data(),
)
def test_property_every_chunking_parses_to_the_rows_plus_the_values(
    rows, blank, terminator, final_newline, values, data
) -> None:
    columns = dict(zip(["team_id", "run_id", "exported_at"], values, strict=False))
    suffix = list(columns.values())

    def line(fields: list[str]) -> str:
        return ",".join(map(rfc4180, fields)) + terminator

    text, wanted = line(["Name", "Value"]), line(["Name", "Value", *columns])
    expected: list[list[str]] = []
    for row, blank_before in zip(rows, [*blank, *[False] * len(rows)], strict=False):
        if blank_before:
            text, wanted = text + terminator, wanted + terminator
            expected.append([])
        text, wanted = text + line(row), wanted + line(row + suffix)
        expected.append(row)
    if not final_newline:
        text, wanted = text.removesuffix(terminator), wanted.removesuffix(terminator)
    body = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    out = widen(body, columns, cuts)
    assert out == wanted.encode()  # byte for byte: line ends kept, values escaped
    parsed = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert parsed[0] == ["Name", "Value", *columns]
    assert parsed[1:] == [row + suffix if row else row for row in expected]
