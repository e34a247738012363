"""Streaming CSV statistics: counts equal the csv module's, bad rows are named, fast path holds."""

from __future__ import annotations

import csv
import io
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sei.csvstats import CSVStats
from airflow_provider_sei.exceptions import SEIResponseError

FIELD = st.one_of(
    st.sampled_from(["", "1", "2.5", "Team A", "a,b", 'say "hi"', "two\nlines", "x\r\ny", "é"]),
    st.text(alphabet='ab,"\n ', max_size=6),
)


def feed(data: bytes, cuts: list[int]) -> CSVStats:
    stats = CSVStats()
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        stats.feed(data[start:cut])
        start = cut
    stats.finish()
    return stats


def write_csv(rows: list[list[str]], terminator: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue().encode()


@settings(max_examples=300, deadline=None)
@given(
    columns=st.integers(1, 5).flatmap(lambda n: st.lists(FIELD, min_size=n, max_size=n)),
    rows=st.integers(0, 12),
    data=st.data(),
    terminator=st.sampled_from(["\n", "\r\n"]),
    trailing_newline=st.booleans(),
)
def test_counts_match_the_csv_module(columns, rows, data, terminator, trailing_newline):
    body = [columns] + [
        data.draw(st.lists(FIELD, min_size=len(columns), max_size=len(columns)))
        for _ in range(rows)
    ]
    if len(columns) == 1:  # csv writes an empty single field as a blank line: not a row
        body = [row if row != [""] else ['""'] for row in body]
    raw = write_csv(body, terminator)
    if not trailing_newline:
        raw = raw[: -len(terminator)]
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    stats = feed(raw, cuts)
    parsed = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert stats.columns == parsed[0]
    assert stats.rows == len(parsed) - 1
    assert stats.bytes == len(raw)


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
@pytest.mark.parametrize(
    ("raw", "bad_row"),
    [
        (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", 2),
        (b"a,b,c\n1,2,3\n4,5,6,7\n", 2),
        (b'a,b,c\n"x,y",2,3\n"p\nq",5\n', 2),
        (b"a,b\n1,2\n3,4", None),
        (b"a,b\n1,2\n3", 2),
        (b"a,b\n1,2\n\n3,4\n", 2),
        (b'a,b\n1,"2\n', 1),
    ],
)
def test_the_first_bad_row_is_named(raw, bad_row, chunk):
    cuts = list(range(chunk, len(raw), chunk))
    if bad_row is None:
        assert feed(raw, cuts).rows == 2
        return
    with pytest.raises(SEIResponseError, match=rf"data row {bad_row} \(header excluded\)"):
        feed(raw, cuts)


@pytest.mark.parametrize(
    ("raw", "rows", "columns"),
    [
        (b"", 0, []),
        (b"a,b\n", 0, ["a", "b"]),
        (b"a,b", 0, ["a", "b"]),
        (b"\xef\xbb\xbfCollection Name,X\r\nT,1\r\n", 1, ["Collection Name", "X"]),
        (b'"Name, full","Lead ""Time"""\nT,1\n\n\n', 1, ["Name, full", 'Lead "Time"']),
        (b"a\n1\n2\n", 2, ["a"]),
    ],
)
def test_edges(raw, rows, columns):
    stats = feed(raw, [])
    assert (stats.rows, stats.columns, stats.bytes) == (rows, columns, len(raw))


def test_reset_forgets_a_cut_short_attempt():
    stats = CSVStats()
    stats.feed(b"a,b\n1,2\n3,")
    stats.reset()
    stats.feed(b"a,b\n1,2\n3,4\n")
    stats.finish()
    assert (stats.rows, stats.bytes) == (2, 12)


def test_throughput_is_hundreds_of_mib_per_second():
    header = b"Collection Name,A,B,C,D,E,F,G,H,I\n"
    rows = b"".join(b"Team %06d,1.25,3.5,12,0.5,7,2.25,14.0,3,Elite\n" % i for i in range(22_000))
    quoted = rows.replace(b"Team ", b'"Team, ').replace(b",1.25", b'",1.25')
    for sample, floor in ((rows, 300), (quoted, 60)):  # MiB/s, with headroom for slow CI
        stats = CSVStats()
        stats.feed(header)
        started = time.perf_counter()
        for _ in range(64):
            stats.feed(sample)
        rate = 64 * len(sample) / (1 << 20) / (time.perf_counter() - started)
        stats.finish()
        assert stats.rows == 64 * 22_000
        assert rate > floor, f"{rate:.0f} MiB/s"
