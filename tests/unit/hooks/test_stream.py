"""``Body``: a response body decoded by the provider and accepted only when its end is proven.

Every body here comes off a raw socket (``tests/hostile.py``) through ``requests``, as in the
hook; the hook-level consequences (retried, never published) are in ``test_hook_reports.py``.
"""

from __future__ import annotations

import gzip

import pytest
from hostile import Close, Send, chunk, head, response

from airflow_provider_sei.exceptions import SEIIncompleteReadError, SEIResponseError
from airflow_provider_sei.hooks import stream
from airflow_provider_sei.hooks.redact import Redactor
from airflow_provider_sei.hooks.stream import (
    Body,
    clean,
    excerpt,
    media_type,
    parse_filename,
    server_message,
)

from .support import (
    BIG,
    ROWS,
    body_of,
    compress,
    compressed_prefix,
    http_encoding,
    read,
    row_boundary,
)

CSV = {"Content-Type": "text/csv"}
KINDS = ["gzip", "deflate", "raw-deflate"]


def encoded(kind: str) -> dict[str, str]:
    return {**CSV, "Content-Encoding": http_encoding(kind)}


def drain(body: Body, into: bytearray) -> None:
    """Read ``body`` into ``into``, keeping what came before an error."""
    for piece in body.chunks():
        into += piece


# -- complete bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_complete_compressed_body_is_decoded_whatever_its_framing(server, kind, framing):
    wire = compress(ROWS, kind)
    pieces = [wire[:1], wire[1:7777], wire[7777:]]  # a 1-byte first chunk: the sniffing
    with body_of(server, response(200, encoded(kind), pieces, framing=framing)) as body:
        assert read(body) == ROWS
        assert (body.bytes, body.raw_bytes) == (len(ROWS), len(wire))


@pytest.mark.parametrize("kind", KINDS)
def test_decoded_pieces_never_exceed_the_chunk_size(server, kind):
    wire = compress(BIG, kind)  # ~4 MB from a few hundred KB: each read inflates tenfold
    with body_of(server, response(200, encoded(kind), wire), chunk_size=64 << 10) as body:
        sizes = [len(piece) for piece in body.chunks()]
    assert sum(sizes) == len(BIG)
    assert max(sizes) <= 64 << 10
    assert len(sizes) >= len(BIG) // (64 << 10)


@pytest.mark.parametrize("kind", KINDS)
def test_every_split_of_the_wire_decodes_the_same(kind):
    """Output zlib holds back when a piece is full is still drained (a long match's tail)."""
    data = b"abc\n" * 5000 + b"x" * 3000 + b"\n"
    wire = compress(data, kind)
    for step in (1, 2, 3, 29, 1000):
        for max_length in (1, 217, 888, 4096):
            inflater = stream._Inflater(http_encoding(kind))
            out = b"".join(
                piece
                for start in range(0, len(wire), step)
                for piece in inflater.feed(wire[start : start + step], max_length)
            )
            assert (out == data, inflater.ended) == (True, True), (step, max_length)


def test_an_identity_body_with_a_content_length_or_chunks_is_read_as_sent(server):
    with body_of(server, response(200, CSV, ROWS)) as body:
        assert read(body) == ROWS
        assert body.content_length == len(ROWS)
    with body_of(server, response(200, CSV, [ROWS[:1000], ROWS[1000:]], framing="chunked")) as b:
        assert read(b) == ROWS
        assert (b.chunked, b.content_length) == (True, None)


def test_a_multi_member_gzip_body_is_decoded_in_full(server):
    members = compress(ROWS[:5000]) + compress(ROWS[5000:])
    for pieces in ([members], [members[:10], members[10:-3], members[-3:]]):
        with body_of(server, response(200, encoded("gzip"), pieces, framing="close")) as body:
            assert read(body) == ROWS


def test_an_empty_body_with_a_content_length_of_zero_is_complete(server):
    with body_of(server, response(200, encoded("gzip"), b"")) as body:
        assert read(body) == b""


# -- cut bodies: never taken for complete ones -------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_compressed_body_cut_at_a_row_boundary_without_framing_is_incomplete(server, kind):
    """No Content-Length, no chunks: only the missing end marker tells."""
    keep = row_boundary(ROWS, len(ROWS) // 2)
    wire = compressed_prefix(ROWS, keep, kind)
    seen = bytearray()
    reply = response(200, encoded(kind), wire, framing="close")
    message = f"the {http_encoding(kind)} stream has no end"
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError, match=message):
        drain(body, into=seen)
    assert bytes(seen) == ROWS[:keep]  # every byte decoded, ending on a row: looks whole


def test_an_empty_compressed_body_without_framing_is_incomplete(server):
    reply = [Send(head(200, encoded("gzip"))), Close()]
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError):
        read(body)


def test_a_gzip_body_with_a_content_length_cut_short_is_incomplete(server):
    wire = compress(ROWS)
    reply = response(200, encoded("gzip"), wire, cut_after=len(wire) // 2)
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError) as info:
        read(body)
    assert (info.value.expected, info.value.received) == (len(wire), len(wire) // 2)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_chunked_body_cut_mid_stream_is_incomplete(server, encoding):
    wire = compress(ROWS) if encoding else ROWS
    headers = encoded("gzip") if encoding else CSV
    pieces = [wire[i : i + 4096] for i in range(0, len(wire), 4096)]
    reply = response(200, headers, pieces, framing="chunked", cut_after=len(wire) // 2)
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError):
        read(body)


def test_a_chunked_body_cut_exactly_between_chunks_is_incomplete(server):
    """Whole chunks ending on a row, but no terminating zero-length chunk."""
    keep = row_boundary(ROWS, 1000)
    reply = [Send(head(200, {**CSV, "Transfer-Encoding": "chunked"}) + chunk(ROWS[:keep])), Close()]
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError):
        read(body)


def test_a_content_length_longer_than_the_body_is_incomplete(server):
    reply = response(200, CSV, ROWS, content_length=len(ROWS) + 100)
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError) as info:
        read(body)
    assert (info.value.expected, info.value.received) == (len(ROWS) + 100, len(ROWS))


def test_a_content_length_shorter_than_the_body_ends_the_body_there(server):
    """HTTP ends a message at its Content-Length: what follows is not part of it.

    A cut that falls mid-row is caught by the CSV check (``test_hook_reports.py``); a
    compressed body's missing end is caught here.
    """
    short = row_boundary(ROWS, 1000) + 5
    with body_of(server, response(200, CSV, ROWS, content_length=short)) as body:
        assert read(body) == ROWS[:short]
    wire = compress(ROWS)
    reply = response(200, encoded("gzip"), wire, content_length=len(wire) - 20)
    with body_of(server, reply) as body, pytest.raises(SEIIncompleteReadError):
        read(body)


def test_a_close_delimited_identity_body_is_refused_before_it_is_read(server):
    with body_of(server, response(200, CSV, ROWS, framing="close")) as body:
        with pytest.raises(SEIResponseError) as info:
            read(body)
        assert body.raw_bytes == 0
    message = str(info.value)
    assert not isinstance(info.value, SEIIncompleteReadError)  # no retry can fix it
    assert "neither a Content-Length nor chunked framing" in message
    assert "could not be told from a complete report" in message  # why
    assert "proxy" in message  # and where to look


# -- V2 downloads: a body that is itself a .gz file --------------------------------------------


def test_a_gz_file_body_is_decoded_and_tapped_as_downloaded(server):
    wire = gzip.compress(ROWS, mtime=0)
    tapped = bytearray()
    headers = {"Content-Type": "application/gzip"}
    with body_of(server, response(200, headers, wire), gunzip_files=True) as body:
        body.tap = tapped.extend
        assert read(body) == ROWS
        assert body.gzip_file
    assert bytes(tapped) == wire


def test_a_gz_file_inside_content_encoding_is_decoded_twice(server):
    wire = compress(gzip.compress(ROWS, mtime=0), "gzip")
    with body_of(server, response(200, encoded("gzip"), wire), gunzip_files=True) as body:
        assert read(body) == ROWS
        assert body.gzip_file


def test_a_plain_csv_body_is_not_taken_for_a_gz_file(server):
    with body_of(server, response(200, CSV, ROWS), gunzip_files=True) as body:
        assert read(body) == ROWS
        assert not body.gzip_file


def test_a_cut_gz_file_is_incomplete_even_with_an_honest_content_length(server):
    """The server's framing is whole; the file it framed is not."""
    cut = compressed_prefix(ROWS, row_boundary(ROWS, 30_000))
    headers = {"Content-Type": "application/gzip"}
    with (
        body_of(server, response(200, headers, cut), gunzip_files=True) as body,
        pytest.raises(SEIIncompleteReadError, match="gzip stream has no end"),
    ):
        read(body)


def test_a_gz_file_without_framing_is_accepted_on_its_own_end(server):
    wire = gzip.compress(ROWS, mtime=0)
    reply = response(200, {"Content-Type": "application/gzip"}, wire, framing="close")
    with body_of(server, reply, gunzip_files=True) as body:
        assert read(body) == ROWS


def test_a_one_byte_body_without_framing_is_refused(server):
    with (
        body_of(server, response(200, CSV, b"a", framing="close"), gunzip_files=True) as body,
        pytest.raises(SEIResponseError, match="neither a Content-Length"),
    ):
        read(body)


# -- corrupt and unexpected streams ------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"x", b"garbage after the end\n", b"\x00" * 16])
def test_trailing_garbage_after_a_gzip_stream_is_refused(server, garbage):
    wire = compress(ROWS) + garbage
    with (
        body_of(server, response(200, encoded("gzip"), wire)) as body,
        pytest.raises(SEIResponseError, match="Unexpected bytes after the end"),
    ):
        read(body)


@pytest.mark.parametrize("kind", ["deflate", "raw-deflate"])
def test_trailing_bytes_after_a_deflate_stream_are_refused(server, kind):
    wire = compress(ROWS, kind) + compress(b"more\n", kind)  # deflate has no members
    with (
        body_of(server, response(200, encoded(kind), wire)) as body,
        pytest.raises(SEIResponseError, match="Unexpected bytes after the end"),
    ):
        read(body)


def test_a_corrupt_gzip_stream_is_refused(server):
    wire = bytearray(compress(ROWS))
    wire[len(wire) // 2] ^= 0xFF
    with (
        body_of(server, response(200, encoded("gzip"), bytes(wire))) as body,
        pytest.raises(SEIResponseError, match=r"corrupt|has no end"),
    ):
        read(body)


def test_a_wrong_gzip_checksum_is_refused(server):
    wire = bytearray(compress(ROWS))
    wire[-8] ^= 0x01  # the CRC-32 of the trailer
    with (
        body_of(server, response(200, encoded("gzip"), bytes(wire))) as body,
        pytest.raises(SEIResponseError, match="corrupt"),
    ):
        read(body)


@pytest.mark.parametrize("value", ["br", "zstd", "gzip, br", "compress"])
def test_an_encoding_the_provider_did_not_ask_for_is_refused(server, value):
    headers = {**CSV, "Content-Encoding": value}
    refused = pytest.raises(SEIResponseError, match="Unsupported Content-Encoding")
    with refused, body_of(server, response(200, headers, b"x")):
        pass  # refused when its headers are read, before the body


def test_identity_in_the_encoding_list_is_no_encoding(server):
    headers = {**CSV, "Content-Encoding": "identity"}
    with body_of(server, response(200, headers, ROWS)) as body:
        assert read(body) == ROWS


# -- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="team report.csv"', "team report.csv"),
        ("attachment; filename=team_report.csv", "team_report.csv"),
        ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.csv", "résumé.csv"),
        ("attachment; filename=\"a.csv\"; filename*=UTF-8''b.csv", "b.csv"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\evil.csv"', "evil.csv"),
        ('attachment; filename="a\x01b\x7f.csv"', "ab.csv"),
        ('attachment; filename=".."', None),
        ("attachment", None),
        (None, None),
    ],
)
def test_parse_filename(header, expected):
    assert parse_filename(header) == expected


def test_excerpt_redacts_a_key_folded_over_two_lines_and_stays_short():
    key = "pat.acct.tok.0123456789abcdef"
    text = f"<p>bad key {key[:12]}\r\n{key[12:]}</p>" + "y" * 1000
    quoted = excerpt(text.encode(), Redactor(key))
    assert key[12:] not in quoted
    assert "***" in quoted
    assert "\n" not in quoted
    assert len(quoted) <= 303


def test_server_message_reads_json_errors():
    body = b'{"status": "error", "message": "Invalid team", "correlationId": "c-1"}'
    assert server_message(body) == "Invalid team (correlationId c-1)"
    assert server_message(b'{"error": "nope"}') == "nope"
    assert server_message(b"plain\ntext") == "plain text"


def test_the_module_states_the_completeness_rule():
    doc = stream.__doc__ or ""
    for proof in ("Content-Length", "chunked", "compressed stream", "SEIIncompleteReadError"):
        assert proof in doc
    assert "refused" in doc


def test_small_helpers():
    assert clean("a\x00b\r\nc\x9f") == "abc"
    assert media_type("Text/CSV; charset=utf-8") == "text/csv"
    assert media_type(None) == ""
