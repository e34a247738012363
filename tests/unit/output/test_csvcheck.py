"""The streaming CSV check: counts equal the csv module's, problems are named, cost stays flat."""

from __future__ import annotations

import codecs
import csv
import io
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIResponseError
from airflow_provider_sei.output.csvcheck import CSVCheck

FIELD = st.one_of(
    st.sampled_from(["", "1", "2.5", "Team A", "a,b", 'say "hi"', "two\nlines", "x\r\ny", "é"]),
    st.text(alphabet='ab,"\n ', max_size=6),  # csv.writer leaves a lone "\r" unquoted
)
MiB = 1 << 20
Outcome = tuple  # ('ok', rows, columns, bytes) or ('error', message)


def pieces(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        yield data[start:cut]
        start = cut


def feed_all(check: CSVCheck, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` in the pieces ``cuts`` makes, without finishing."""
    for piece in pieces(data, cuts):
        check.feed(piece)


def feed(data: bytes, cuts: list[int] | None = None, **kwargs) -> CSVCheck:
    check = CSVCheck(**kwargs)
    feed_all(check, data, cuts or [])
    check.finish()
    return check


def outcome(
    data: bytes, cuts: list[int], block: int | None = None, walk: bool = False, **kwargs
) -> Outcome:
    """What a check says of ``data`` fed in pieces: its counts, or the error it raised.

    ``block`` shrinks the blocks the body is looked at in (to cross many block boundaries
    on a small body); ``walk`` sends every block through the exact byte-by-byte walk.
    """
    check = CSVCheck(**kwargs)
    if block is not None:
        check._block = check._qblock = min(block, check._block)
    if walk:
        check._fast = lambda chunk, start, end, quote: False  # type: ignore[method-assign]
    try:
        for piece in pieces(data, cuts):
            check.feed(piece)
        check.finish()
    except SEIResponseError as exc:
        return ("error", str(exc))
    return ("ok", check.rows, check.columns, check.bytes)


def write_csv(rows: list[list[str]], terminator: str, quoting: int = csv.QUOTE_MINIMAL) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator, quoting=quoting).writerows(rows)
    return buffer.getvalue().encode()


def csv_module(raw: bytes, delimiter: str = ",") -> tuple[list[str], int]:
    # csv gives a blank line as [] (and the check accepts blank lines only at the end)
    text = io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline="")
    parsed = [row for row in csv.reader(text, delimiter=delimiter, strict=True) if row]
    return (parsed[0] if parsed else []), max(len(parsed) - 1, 0)


# -- what CSVStats promised, kept --------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    columns=st.integers(1, 5).flatmap(lambda n: st.lists(FIELD, min_size=n, max_size=n)),
    rows=st.integers(0, 12),
    data=st.data(),
    terminator=st.sampled_from(["\n", "\r\n"]),
    trailing_newline=st.booleans(),
    block=st.sampled_from([None, 1, 2, 3, 5, 8, 64]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_counts_match_the_csv_module(
    columns, rows, data, terminator, trailing_newline, block, quoting
):
    body = [columns] + [
        data.draw(st.lists(FIELD, min_size=len(columns), max_size=len(columns)))
        for _ in range(rows)
    ]
    if len(columns) == 1:  # csv writes an empty single field as a blank line: not a row
        body = [row if row != [""] else ['""'] for row in body]
    raw = write_csv(body, terminator, quoting)
    if not trailing_newline:
        raw = raw[: -len(terminator)]
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    assert outcome(raw, cuts, block) == ("ok", *reversed(csv_module(raw)), len(raw))


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
        (b'a,b\n1,2\n3,x"y\n', 2),  # a quote inside an unquoted field
        (b'a,b\n1,2\n"3"x,4\n', 2),  # text after a closing quote
        (b"a,b\n1,2\r3,4\n", 1),  # a bare carriage return
        (b"a\n1\n\n2\n", 2),  # one column: a blank line leaves no trace in the separators
    ],
)
def test_the_first_bad_row_is_named(raw, bad_row, chunk):
    cuts = list(range(chunk, len(raw), chunk))
    if bad_row is None:
        assert feed(raw, cuts).rows == 2
        return
    with pytest.raises(SEIResponseError, match=rf"data row {bad_row} \(header excluded\)"):
        feed(raw, cuts)


def test_a_bad_row_reads_as_before():
    with pytest.raises(SEIResponseError) as caught:
        feed(b"a,b,c,d,e\n" + b"1,2,3,4,5\n" * 16 + b"1,2,3\n")
    assert str(caught.value) == (
        "The report does not match its header: "
        "data row 17 (header excluded) has 3 fields, the header 5 columns"
    )


@pytest.mark.parametrize("chunk", [7, 1 << 20])
@pytest.mark.parametrize("name", [b"T1", b'"T, 1"'])
def test_a_wide_row_and_a_narrow_row_do_not_cancel_out(name, chunk):
    # One row with a field too many, the next with one too few, in one block: each row's
    # fields are checked, not the block's sum of separators.
    row = name + b",1,2\n"
    raw = b"a,b,c\n" + row * 100 + name + b",1,2,3\n" + name + b",1\n" + row * 100
    cuts = list(range(chunk, len(raw), chunk))
    with pytest.raises(SEIResponseError, match=r"data row 101 \(header excluded\) has 4 fields"):
        feed(raw, cuts)


@pytest.mark.parametrize(
    ("raw", "rows", "columns"),
    [
        (b"", 0, []),
        (b"a,b\n", 0, ["a", "b"]),
        (b"a,b", 0, ["a", "b"]),
        (b"a,b\r", 0, ["a", "b"]),  # a final CR ends the line, as for csv
        (b"\xef\xbb\xbfCollection Name,X\r\nT,1\r\n", 1, ["Collection Name", "X"]),
        (b'"Name, full","Lead ""Time"""\nT,1\n\n\n', 1, ["Name, full", 'Lead "Time"']),
        (b"a\n1\n2\n", 2, ["a"]),
        (b'a,b\n"",""\n"x\r\ny",\n', 2, ["a", "b"]),
        (b"a,b\n1,2\n\r\n\n\r\n", 1, ["a", "b"]),  # trailing blank lines are not rows
        (b'"multi\nline\r\nheader",b\n1,2\n', 1, ["multi\nline\r\nheader", "b"]),
    ],
)
def test_edges(raw, rows, columns):
    check = feed(raw)
    assert (check.rows, check.columns, check.bytes) == (rows, columns, len(raw))


def test_reset_forgets_a_cut_short_attempt():
    check = CSVCheck()
    check.feed(b"a,b\n1,2\n3,")
    check.reset()
    check.feed(b"a,b\n1,2\n3,4\n")
    check.finish()
    assert (check.rows, check.bytes) == (2, 12)


def test_reset_forgets_an_error():
    check = CSVCheck()
    with pytest.raises(SEIResponseError):
        check.feed(b"\n\n")
    with pytest.raises(SEIResponseError):  # the error stands until the next attempt
        check.feed(b"a,b\n")
    check.reset()
    check.feed(b"a,b\n1,2\n")
    check.finish()
    assert check.rows == 1


def test_throughput_is_hundreds_of_mib_per_second():
    header = b"Collection Name,A,B,C,D,E,F,G,H,I\n"
    rows = b"".join(b"Team %06d,1.25,3.5,12,0.5,7,2.25,14.0,3,Elite\n" % i for i in range(22_000))
    quoted = rows.replace(b"Team ", b'"Team, ').replace(b",1.25", b'",1.25')
    for sample, floor in ((rows, 300), (quoted, 60)):  # MiB/s, with headroom for slow CI
        check = CSVCheck()
        check.feed(header)
        started = time.perf_counter()
        for _ in range(64):
            check.feed(sample)
        rate = 64 * len(sample) / MiB / (time.perf_counter() - started)
        check.finish()
        assert check.rows == 64 * 22_000
        assert rate > floor, f"{rate:.0f} MiB/s"


# -- any bytes, any chunks: the fast path agrees with the exact walk and with csv --------------

SOUP = st.lists(
    st.sampled_from(
        [b"a", b";", b'"', b'""', b"\n", b"\r\n", b"\r", b"b;c", b'"x"', b'"\n"', codecs.BOM_UTF8]
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(
    header=st.sampled_from([b"", b"a;b\n", b"a\n", b'"x ""y"""\tz\r\n', b"a;b;c\r\n"]),
    body=SOUP.map(b"".join),
    data=st.data(),
    block=st.sampled_from([None, 1, 2, 4, 7]),
    max_row_bytes=st.sampled_from([None, 1, 2, 3, 9, 64]),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_bytes_in_any_chunks(header, body, data, block, max_row_bytes, delimiter):
    raw = (header + body).replace(b";", delimiter.encode())
    kwargs = {"delimiter": delimiter.encode(), "max_row_bytes": max_row_bytes}
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    exact = outcome(raw, [], walk=True, **kwargs)
    # The exact walk gives one answer whatever the chunks and blocks.
    assert outcome(raw, cuts, block, walk=True, **kwargs) == exact
    fast = outcome(raw, cuts, block, **kwargs)
    if exact[0] == "ok":
        assert fast == exact
        if max_row_bytes is None:  # what the check accepts, csv reads the same way
            assert (exact[2], exact[1]) == csv_module(raw, delimiter)
    if fast[0] == "error":
        # The separator sum may let a too-long and a too-short row cancel out: the fast path
        # may miss a problem, never invent one.
        assert exact[0] == "error"


@pytest.mark.parametrize(
    "raw",
    [
        b"a,b\n1,2\n\n3,4\n",
        b'a,b\n"1\n\n2",3\n\n',
        b'a,b\n1,"x""\n""",\n\n\r\n',
        b"a,b\n1,2\n\r\n\r\n" + b"\n" * 5000 + b"x",
        b'a,b\n"' + b'""' * 3000 + b'",2\n',
    ],
)
def test_chunking_never_changes_the_answer(raw):
    expected = outcome(raw, [])
    for size in (1, 2, 3, 5, 64, 4096):
        cuts = list(range(size, len(raw), size))
        assert outcome(raw, cuts) == expected
        assert outcome(raw, cuts, block=size) == expected


# -- the header ---------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"\n" * 1000, b"\r\n" * 1000, b"\n\r\n"])
def test_a_body_of_blank_lines_is_no_report(blank):
    with pytest.raises(SEIResponseError, match=r"header \(first line\) is empty"):
        feed(blank)


def test_an_empty_body_is_a_valid_empty_report():
    check = feed(b"")
    assert (check.rows, check.columns, check.bytes, check.empty) == (0, [], 0, True)


@pytest.mark.parametrize(
    ("raw", "empty"),
    [(b"", True), (b"a,b", True), (b"a,b\n", True), (b"a,b\n\n\n", True), (b"a,b\n1,2", False)],
)
def test_empty_means_no_data_rows(raw, empty):
    assert feed(raw).empty is empty


@pytest.mark.parametrize(
    "raw",
    [b"a,\rb\nx,y\n", b"a\r,b\n", b'"a"\rb\n', b"a,b\r\r\n"],
)
@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_a_bare_cr_in_the_header_is_an_sei_error(raw, chunk):
    with pytest.raises(SEIResponseError, match="header has a carriage return"):
        feed(raw, list(range(chunk, len(raw), chunk)))


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b'a,b"c\n1,2\n', "a double quote inside an unquoted field"),
        (b'"a"b,c\n1,2\n', "text after a closing double quote"),
        (b'a,"b\n1,2\n', "an unterminated quoted field"),
        (b'{"error": "no"}', "a double quote inside an unquoted field"),
        (b"\xef\xbb\xbfa,b\r\r\n", "a carriage return outside quotes and not before a newline"),
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 1 << 20])
def test_a_malformed_header_is_named(raw, what, chunk):
    with pytest.raises(SEIResponseError) as caught:
        feed(raw, list(range(chunk, len(raw), chunk)))
    assert str(caught.value) == f"The response is not valid CSV: its header has {what}"


def test_a_malformed_header_stops_the_download():
    check = CSVCheck()
    check.feed(b'Collection Name,"Lead')
    with pytest.raises(SEIResponseError, match="its header has text after a closing"):
        check.feed(b' Time"s,x\n' + b"1,2\n" * 1000)


@pytest.mark.parametrize("raw", [b'\xef\xbb\xbf"Name, full",b\n1,2\n', b'\xef\xbb\xbf"a\n"\n1\n'])
@pytest.mark.parametrize("chunk", [1, 2, 4, 1 << 20])
def test_a_byte_order_mark_may_precede_a_quoted_name(raw, chunk):
    check = feed(raw, list(range(chunk, len(raw), chunk)))
    assert (check.rows, check.columns[0]) == (1, raw[4:].split(b'"')[0].decode())


def test_a_partial_byte_order_mark_is_text():
    with pytest.raises(SEIResponseError, match="double quote inside an unquoted field"):
        feed(b'\xef\xbb"a",b\n1,2\n', [1, 2])


def test_a_header_field_too_long_for_csv_is_an_sei_error():
    raw = b'"' + b"x" * (200 << 10) + b'",b\n1,2\n'  # over csv's field_size_limit
    with pytest.raises(SEIResponseError, match="header cannot be parsed: field larger"):
        feed(raw)


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_a_header_line_that_never_ends_is_capped(chunk):
    check = CSVCheck(max_header_bytes=1000)
    with pytest.raises(SEIResponseError) as caught:
        feed_all(check, b"x" * 10_000, list(range(chunk, 10_000, chunk)))
    assert str(caught.value) == (
        "The response exceeds max_header_bytes=1000: its header line is longer than 1000 bytes"
    )
    assert check.bytes <= 1000 + chunk  # raised during the chunk that went over, not later


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"a" * 998 + b"\r\n", True),
        (b"a" * 999 + b"\r\n", False),
        (b'"' + b"\n" * 997 + b'"\n', True),
        (b'"' + b"\n" * 998 + b'"\n', False),
    ],
)
def test_the_header_cap_counts_the_line_end(header, ok):
    if ok:
        assert feed(header + b"1\n", max_header_bytes=1000).rows == 1
    else:
        with pytest.raises(SEIResponseError, match="max_header_bytes=1000"):
            feed(header + b"1\n", max_header_bytes=1000)


def sixteen_mib_quoted_header() -> bytes:
    return b'"' + b"\n" * (16 * MiB) + b'",b\n1,2\n'


@pytest.mark.parametrize("chunk", [64 << 10, 17 * MiB])
def test_a_16_mib_quoted_header_is_rejected_in_milliseconds(chunk):
    raw = sixteen_mib_quoted_header()
    started = time.process_time()
    with pytest.raises(SEIResponseError, match="max_header_bytes"):
        feed(raw, list(range(chunk, len(raw), chunk)))
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize("chunk", [64 << 10, 17 * MiB])
def test_a_16_mib_quoted_header_is_scanned_once_even_when_allowed(chunk):
    raw = sixteen_mib_quoted_header()
    started = time.process_time()
    with pytest.raises(SEIResponseError, match="header cannot be parsed: field larger"):
        feed(raw, list(range(chunk, len(raw), chunk)), max_header_bytes=32 * MiB)
    assert time.process_time() - started < 1.0


def test_a_quoted_header_in_one_byte_chunks_is_linear():
    raw = b'"' + b'\n""' * 20_000 + b'",b\n1,2\n'  # newlines, escaped quotes, quotes split
    started = time.process_time()
    check = feed(raw, list(range(1, len(raw))))
    assert time.process_time() - started < 1.0
    assert (check.rows, len(check.columns[0])) == (1, 40_000)  # "" reads as one quote


# -- the header check: is this a report? ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"Collection Name,A\n",
        b"a,collection_name\n",
        b"x,y,COLLECTIONNAME,z\n",
        b"\xef\xbb\xbf Collection  name ,b\n",
        b"Team,b\n",
    ],
)
def test_the_header_check_matches_loosely(header):
    row = b",".join([b"1"] * (header.count(b",") + 1)) + b"\n"
    assert feed(header + row, expect_any=["Collection Name", "team"]).rows == 1


def test_a_header_without_expected_columns_is_no_report_and_is_redacted():
    secret = "sk-123456"
    header = f"<html>  <body>\t\t denied for key {secret}   " + "x " * 300
    raw = header.encode() + b"\n<p>more</p>\n"
    check = CSVCheck(expect_any=["Collection Name"], redact=lambda s: s.replace(secret, "***"))
    with pytest.raises(SEIResponseError) as caught:
        feed_all(check, raw, list(range(7, len(raw), 7)))  # raised in feed: the download stops
    message = str(caught.value)
    assert message.startswith(
        "The response is not a report: the header names none of the expected columns "
        "(Collection Name): '<html> <body> denied for key *** x x x "
    )
    assert secret not in message
    assert message.endswith(" x x x…'")
    assert len(message.split(": ", 2)[2]) <= 200 + 2  # the quotes


def test_a_json_error_body_is_no_report():
    with pytest.raises(SEIResponseError, match=r"not a report.*'\{\"error\": \"bad key\"\}'"):
        feed(b'{"error": "bad key"}', expect_any=["Collection Name"])


def test_redaction_comes_before_the_excerpt_is_cut():
    secret = "sk-" + "9" * 40  # straddles the 200th character
    raw = ("x" * 180 + " " + secret + "\n").encode()
    check = CSVCheck(expect_any="Collection Name", redact=lambda s: s.replace(secret, "[key]"))
    with pytest.raises(SEIResponseError) as caught:
        feed_all(check, raw, [])
    assert "sk-" not in str(caught.value)
    assert "[key]" in str(caught.value)


def test_a_malformed_header_with_an_expected_column_is_named_as_malformed():
    with pytest.raises(SEIResponseError, match="its header has text after a closing double"):
        feed(b'Collection Name,"a"b\n1,2\n', expect_any=["collection_name"])


def test_a_first_line_over_the_cap_without_expected_columns_is_no_report():
    raw = b'{"error": "' + b"x" * 5000 + b'"}'
    with pytest.raises(SEIResponseError, match="not a report: the header names none"):
        feed(raw, [1000, 2000], expect_any=["Collection Name"], max_header_bytes=1000)


def test_no_expected_columns_no_header_check():
    assert feed(b"anything,at all\n1,2\n").rows == 1


# -- caps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 20])
@pytest.mark.parametrize(
    ("row", "ok"),
    [
        (b"x" * 98 + b",\n", True),  # 100 bytes, the newline included
        (b"x" * 99 + b",\n", False),
        (b'"' + b"\n" * 96 + b'",\n', True),
        (b'"' + b"\n" * 97 + b'",\n', False),
        (b"x" * 97 + b",\r\n", True),
    ],
)
def test_max_row_bytes_is_exact_across_chunks(row, ok, chunk):
    raw = b"a,b\n1,2\n" + row + b"3,4\n"
    cuts = list(range(chunk, len(raw), chunk))
    if ok:
        assert feed(raw, cuts, max_row_bytes=100).rows == 3
        return
    with pytest.raises(SEIResponseError) as caught:
        feed(raw, cuts, max_row_bytes=100)
    assert str(caught.value) == (
        "The report exceeds max_row_bytes=100: "
        "data row 2 (header excluded) is longer than 100 bytes"
    )


def test_a_row_that_never_ends_stops_the_download():
    check = CSVCheck(max_row_bytes=MiB)
    check.feed(b"a,b\n1,2\n")
    with pytest.raises(SEIResponseError, match=r"max_row_bytes=1048576: data row 2 "):
        feed_all(check, b"y" * (4 * MiB), list(range(64 << 10, 4 * MiB, 64 << 10)))
    assert check.bytes < MiB + (128 << 10)


def test_max_row_bytes_none_means_no_cap():
    assert feed(b"a,b\n" + b"x" * (3 * MiB) + b",y\n", max_row_bytes=None).rows == 1


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_max_bytes_stops_the_download_naming_the_row(chunk):
    raw = b"a,b\n1,2\n3,4\n5,6\n"
    assert feed(raw, max_bytes=len(raw)).rows == 3
    check = CSVCheck(max_bytes=10)
    with pytest.raises(SEIResponseError) as caught:
        feed_all(check, raw, list(range(chunk, len(raw), chunk)))
    assert str(caught.value) == (
        "The response exceeds max_bytes=10: it is longer than 10 bytes "
        "(the excess begins in data row 2 (header excluded))"
    )
    with pytest.raises(SEIResponseError, match=r"max_bytes=2: .*in the header\)"):
        feed(raw, max_bytes=2)


def test_an_earlier_problem_wins_over_max_bytes():
    with pytest.raises(SEIResponseError, match=r"data row 1 .* has 1 fields"):
        feed(b"a,b\n1\n2,3\n", max_bytes=8)


# -- linear time and flat memory on hostile bodies -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b'"' * (8 * MiB), "max_row_bytes"),  # quotes everywhere: one escaped-quote field
        (b'""""""",' * MiB, "max_row_bytes"),  # odd runs of quotes
        (b'"",' * (3 * MiB), "max_row_bytes"),  # a row that never ends
        (b'"a"b' * (3 * MiB), "text after a closing double quote"),
        (b'x"' * (3 * MiB), "double quote inside an unquoted field"),
        ((b'"' + b"\n," * 1000 + b'",x\n') * 2000, 2000),  # long quoted newlines
        ((b'"a\nb",' + b'"\n"' + b'""' * 5 + b"\n") * 200_000, 200_000),  # at every block end
        (b"1,2\n" + b"\r\n" * (4 * MiB), 1),  # trailing blank lines
        (b"1,2\n" + b"\n" * (4 * MiB) + b"3,4\n", r"data row 2 \(header excluded\) is empty"),
    ],
)
@pytest.mark.parametrize("chunk", [1 << 20, 64 << 10, 997])
def test_hostile_bodies_take_linear_time(body, rows, chunk):
    raw = b"a,b\n" + body
    cuts = list(range(chunk, len(raw), chunk))
    started = time.process_time()
    if isinstance(rows, int):
        assert feed(raw, cuts).rows == rows
    else:
        with pytest.raises(SEIResponseError, match=rows):
            feed(raw, cuts)
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize("quoted", [False, True])
def test_memory_stays_flat(quoted):
    row = b'"Team 42, Platform",1.23,4.56,7.89\n' if quoted else b"Team 42,1.23,4.56,7.89\n"
    chunk = row * (MiB // len(row))
    check = CSVCheck()
    check.feed(b"Collection Name,A,B,C\n")
    tracemalloc.start()
    try:
        for _ in range(32):
            check.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check.finish()
    assert check.rows == 32 * (MiB // len(row))
    assert peak < 2 * MiB, peak
