"""``write_body``: one attempt, from a real response body to a published file -- or to nothing.

Bodies come off a raw socket (``tests/hostile.py``); destinations are local folders and S3
(moto's server mode, the ``s3`` fixture).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import HostileServer, response

from airflow_provider_sei.exceptions import (
    SEIDestinationError,
    SEIIncompleteReadError,
    SEIResponseError,
)
from airflow_provider_sei.output.csvcheck import CSVCheck
from airflow_provider_sei.output.transfer import ExportResult, OutputOptions, copy_csv, write_body
from airflow_provider_sei.output.writer import Target

from ..hooks.support import ROWS, body_of, temp_files

FALLBACK = "sei-team-1-2024-01-01-2024-01-31"
MIB = 1 << 20


@pytest.fixture
def srv() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def attachment(name: str | bytes) -> dict[str, str | bytes]:
    raw = name if isinstance(name, bytes) else name.encode()
    return {"Content-Type": "text/csv", "Content-Disposition": b'attachment; filename="%s"' % raw}


def write(body, target: Target, options: OutputOptions | None = None, **kwargs) -> ExportResult:
    return write_body(
        body,
        target,
        CSVCheck(expect_any=("Collection Name",)),
        options or OutputOptions(),
        fallback_name=lambda suffix: FALLBACK + suffix,
        server_name=kwargs.pop("server_name", body.filename),
        **kwargs,
    )


@dataclass
class Watched(Target):
    """A target that records how much of the body had been read when each step happened."""

    body: object = None
    steps: list[tuple[str, int]] | None = None

    def choose(self, name, fallback):  # type: ignore[no-untyped-def]
        self.steps.append(("choose", self.body.raw_bytes))  # type: ignore[union-attr]
        return super().choose(name, fallback)

    def open(self, path):  # type: ignore[no-untyped-def]
        self.steps.append(("open", self.body.raw_bytes))  # type: ignore[union-attr]
        return super().open(path)


# -- the file name -----------------------------------------------------------------------------


def test_a_plain_server_name_is_used(srv, tmp_path):
    with body_of(srv, response(200, attachment("team_report.csv"), ROWS)) as body:
        result = write(body, Target.resolve(f"{tmp_path}/"))
    assert (tmp_path / "team_report.csv").read_bytes() == ROWS
    assert (result.filename, result.uri) == (
        "team_report.csv",
        f"file://{tmp_path}/team_report.csv",
    )
    assert (result.rows, result.bytes, result.downloaded_bytes) == (20_000, len(ROWS), len(ROWS))


@pytest.mark.parametrize(
    "name",
    [
        b"important.db",
        b"payload.exe",
        b"authorized_keys",
        b"../x.csv.exe",
        b"a" * 10_000 + b".csv",
        b"rep\x01ort\x7f.csv\x00.sh",
        b"..",
    ],
    ids=["db", "exe", "authorized_keys", "traversal", "10k", "control", "dotdot"],
)
def test_an_unsafe_server_name_falls_back_before_the_body_is_read(srv, tmp_path, name):
    (tmp_path / "important.db").write_bytes(b"precious")
    (tmp_path / "authorized_keys").write_bytes(b"ssh-ed25519 AAAA")
    steps: list[tuple[str, int]] = []
    with body_of(srv, response(200, attachment(name), ROWS)) as body:
        target = Watched.resolve(f"{tmp_path}/")
        target.body, target.steps = body, steps
        result = write(body, target)
    assert steps == [("choose", 0), ("open", 0)]  # decided with no byte of the body read
    assert result.filename is None
    assert (tmp_path / f"{FALLBACK}.csv").read_bytes() == ROWS
    assert (tmp_path / "important.db").read_bytes() == b"precious"
    assert (tmp_path / "authorized_keys").read_bytes() == b"ssh-ed25519 AAAA"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["important.db", "authorized_keys", f"{FALLBACK}.csv"]
    )


@pytest.mark.parametrize("name", ["important.db", "authorized_keys", "../important.db"])
def test_an_unrelated_file_in_the_folder_is_never_replaced(srv, tmp_path, name):
    (tmp_path / "important.db").write_bytes(b"precious")
    (tmp_path / "authorized_keys").write_bytes(b"ssh-ed25519 AAAA")
    (tmp_path / "other.csv").write_bytes(b"another report")
    with body_of(srv, response(200, attachment(name), ROWS)) as body:
        result = write(body, Target.resolve(f"{tmp_path}/"))
    assert result.filename is None
    assert (tmp_path / f"{FALLBACK}.csv").read_bytes() == ROWS
    assert (tmp_path / "important.db").read_bytes() == b"precious"
    assert (tmp_path / "authorized_keys").read_bytes() == b"ssh-ed25519 AAAA"
    assert (tmp_path / "other.csv").read_bytes() == b"another report"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["important.db", "authorized_keys", "other.csv", f"{FALLBACK}.csv"]
    )


def test_a_server_name_naming_a_sub_folder_falls_back(srv, tmp_path):
    (tmp_path / "report.csv").mkdir()
    with body_of(srv, response(200, attachment("report.csv"), ROWS)) as body:
        result = write(body, Target.resolve(f"{tmp_path}/"))
    assert (tmp_path / f"{FALLBACK}.csv").read_bytes() == ROWS
    assert result.filename is None
    assert list((tmp_path / "report.csv").iterdir()) == []


# -- failures publish nothing ------------------------------------------------------------------


def test_a_cut_body_publishes_nothing_and_keeps_the_previous_file(srv, tmp_path):
    (tmp_path / "r.csv").write_bytes(b"previous")
    reply = response(200, {"Content-Type": "text/csv"}, ROWS, cut_after=len(ROWS) // 2)
    with body_of(srv, reply) as body, pytest.raises(SEIIncompleteReadError):
        write(body, Target.resolve(tmp_path / "r.csv"))
    assert (tmp_path / "r.csv").read_bytes() == b"previous"
    assert temp_files(tmp_path) == []


def test_a_bad_row_publishes_nothing(srv, tmp_path):
    bad = ROWS + b"one,two,three\n"
    reply = response(200, {"Content-Type": "text/csv"}, bad)
    with body_of(srv, reply) as body, pytest.raises(SEIResponseError, match="data row 20001"):
        write(body, Target.resolve(tmp_path / "r.csv"))
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_fails_before_the_body_is_read(srv, tmp_path):
    (tmp_path / "team_report.csv").write_bytes(b"previous")
    with body_of(srv, response(200, attachment("team_report.csv"), ROWS)) as body:
        with pytest.raises(SEIDestinationError, match="already exists"):
            write(body, Target.resolve(f"{tmp_path}/"), OutputOptions(overwrite=False))
        assert body.raw_bytes == 0
    assert (tmp_path / "team_report.csv").read_bytes() == b"previous"


def test_an_empty_report_is_not_written_when_asked(srv, tmp_path):
    (tmp_path / "r.csv").write_bytes(b"previous")
    with body_of(srv, response(200, {"Content-Type": "text/csv"}, b"Collection Name,x\n")) as body:
        result = write(body, Target.resolve(tmp_path / "r.csv"), OutputOptions(write_empty=False))
    assert (result.written, result.uri, result.bytes, result.rows) == (False, None, 0, 0)
    assert (tmp_path / "r.csv").read_bytes() == b"previous"
    assert temp_files(tmp_path) == []


# -- a body that is itself a .gz file ----------------------------------------------------------


def test_a_gz_body_is_stored_as_downloaded_for_csv_gz(srv, tmp_path):
    wire = gzip.compress(ROWS, mtime=0)
    reply = response(200, {"Content-Type": "application/gzip"}, wire)
    with body_of(srv, reply, gunzip_files=True) as body:
        result = write(body, Target.resolve(tmp_path / "r.csv.gz"), OutputOptions("csv.gz"))
    assert (tmp_path / "r.csv.gz").read_bytes() == wire  # not compressed again
    assert (result.rows, result.bytes) == (20_000, len(wire))


def test_a_gz_body_with_appended_columns_is_encoded_again(srv, tmp_path):
    wire = gzip.compress(ROWS, mtime=0)
    reply = response(200, {"Content-Type": "application/gzip"}, wire)
    options = OutputOptions("csv.gz", columns={"run_id": "r1"})
    with body_of(srv, reply, gunzip_files=True) as body:
        write(body, Target.resolve(tmp_path / "r.csv.gz"), options)
    lines = gzip.decompress((tmp_path / "r.csv.gz").read_bytes()).splitlines()
    assert lines[0] == b"Collection Name,value,run_id"
    assert lines[1] == b"team-00000,0,r1"
    assert len(lines) == 20_001


def test_a_plain_body_for_csv_gz_is_compressed(srv, tmp_path):
    with body_of(srv, response(200, {"Content-Type": "text/csv"}, ROWS), gunzip_files=True) as body:
        write(body, Target.resolve(tmp_path / "r.csv.gz"), OutputOptions("csv.gz"))
    assert gzip.decompress((tmp_path / "r.csv.gz").read_bytes()) == ROWS


# -- S3 ----------------------------------------------------------------------------------------


def big_rows(size: int) -> bytes:
    row = b"team-0000000000,1234567\n"
    return b"Collection Name,value\n" + row * (size // len(row))


def test_a_body_cut_mid_upload_leaves_no_object_and_no_multipart_upload(srv, s3):
    data = big_rows(8 * MIB)
    target = Target.resolve(
        f"s3://{s3.bucket}/r.csv", conn_id=s3.conn_id, write_options={"block_size": 5 * MIB}
    )
    reply = response(200, {"Content-Type": "text/csv"}, data, cut_after=7 * MIB)  # a part sent
    with body_of(srv, reply) as body, pytest.raises(SEIIncompleteReadError):
        write(body, target)
    assert s3.keys() == []
    assert s3.uploads() == []


def test_a_complete_body_is_exactly_the_object(srv, s3):
    data = big_rows(8 * MIB)
    target = Target.resolve(
        f"s3://{s3.bucket}/out/", conn_id=s3.conn_id, write_options={"block_size": 5 * MIB}
    )
    with body_of(srv, response(200, attachment("team_report.csv"), data)) as body:
        result = write(body, target)
    assert s3.keys() == ["out/team_report.csv"]
    assert s3.read("out/team_report.csv") == data
    assert s3.uploads() == []
    assert result.uri == f"s3://{s3.bucket}/out/team_report.csv"


# -- copy_csv (the fan-out's per-team files) ---------------------------------------------------


def test_copy_csv(tmp_path):
    source = tmp_path / "spool.csv"
    source.write_bytes(ROWS)
    target = Target.resolve(f"{tmp_path}/out/")
    written = copy_csv(
        str(source), target, target.choose(None, "t.csv.gz"), OutputOptions("csv.gz")
    )
    out = Path(tmp_path / "out" / "t.csv.gz").read_bytes()
    assert written == len(out)
    assert gzip.decompress(out) == ROWS
