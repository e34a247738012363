"""Destinations and staged files: nothing half-written is ever visible, nothing else is touched.

Local disk through ``file://``, S3 through moto's server mode (the ``s3`` fixture), ``memory://``
and file objects: the real stores a user has.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_sei.exceptions import SEIDestinationError, SEIInvalidRequestError
from airflow_provider_sei.output import writer
from airflow_provider_sei.output.writer import (
    STALE_TEMP_SECONDS,
    Target,
    public_uri,
    remove_stale_temp_files,
    report_name,
)

from ..hooks.support import Pipe

MIB = 1 << 20


def temp_name() -> str:
    return f".sei-export.{uuid.uuid4().hex}.tmp"


def age(path: Path, seconds: float) -> Path:
    """Make ``path`` look untouched for ``seconds``."""
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".sei-export."))


# -- the server's file name --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("team_report.csv", ".csv", "team_report.csv"),
        ("Team-Report.2024.CSV", ".csv", "Team-Report.2024.csv"),
        ("sprint-2024.csv.gz", ".csv", "sprint-2024.csv"),
        ("sprint-2024.csv.gz", ".csv.gz", "sprint-2024.csv.gz"),
        ("report.csv", ".parquet", "report.parquet"),
        ("important.db", ".csv", None),
        ("payload.exe", ".csv", None),
        ("authorized_keys", ".csv", None),
        ("../x.csv", ".csv", None),
        ("sub/x.csv", ".csv", None),
        (".hidden.csv", ".csv", None),
        (".csv", ".csv", None),
        ("a" * 10_000 + ".csv", ".csv", None),
        ("a" * 146 + ".csv", ".csv", "a" * 146 + ".csv"),  # 150 characters: the most
        ("a" * 147 + ".csv", ".csv", None),
        ("rep\x00ort.csv", ".csv", None),
        ("rep\nort.csv", ".csv", None),
        ("rep\rort.csv", ".csv", None),
        ("report.csv\x00.exe", ".csv", None),
        ("rapport-é.csv", ".csv", None),
        ("report .csv", ".csv", None),
        ("con.csv:stream", ".csv", None),
        ("", ".csv", None),
        (None, ".csv", None),
    ],
)
def test_report_name_takes_plain_report_names_only(name, suffix, expected):
    assert report_name(name, suffix) == expected


# -- resolving a destination -------------------------------------------------------------------


@pytest.mark.parametrize(
    "destination",
    [None, "", "   ", "None", "out.csv", "./out.csv", "file://", "s3://", 42, ["s3://b/k"]],
)
def test_a_destination_that_names_no_place_is_refused(destination):
    with pytest.raises(SEIInvalidRequestError) as info:
        Target.resolve(destination)
    assert info.value.field == "destination"


def test_an_unknown_scheme_is_refused_naming_the_field():
    with pytest.raises(SEIInvalidRequestError) as info:
        Target.resolve("nosuchstore://bucket/key.csv", field_name="dest")
    assert info.value.field == "dest"


def test_an_unknown_connection_fails_at_once(tmp_path):
    with pytest.raises(SEIDestinationError, match=r"'no_such_conn'.*not defined"):
        Target.resolve(f"file://{tmp_path}/r.csv", conn_id="no_such_conn")


def test_folders_files_paths_and_handles(tmp_path):
    (tmp_path / "existing").mkdir()
    assert Target.resolve(f"{tmp_path}/new/").folder
    assert Target.resolve(f"file://{tmp_path}/existing").folder  # an existing folder
    file_target = Target.resolve(tmp_path / "r.csv")  # a PathLike
    assert not file_target.folder
    assert file_target.describe() == f"file://{tmp_path}/r.csv"
    handle = io.BytesIO()
    assert Target.resolve(handle).handle is handle


# -- choosing the file -------------------------------------------------------------------------


def test_a_server_name_naming_a_sub_folder_falls_back(tmp_path):
    (tmp_path / "report.csv").mkdir()
    target = Target.resolve(f"{tmp_path}/")
    chosen = target.choose("report.csv", "sei-team-1.csv")
    assert public_uri(chosen) == f"file://{tmp_path}/sei-team-1.csv"


def test_a_fallback_that_is_a_folder_fails(tmp_path):
    (tmp_path / "sei-team-1.csv").mkdir()
    with pytest.raises(SEIDestinationError, match="it is a folder"):
        Target.resolve(f"{tmp_path}/").choose(None, "sei-team-1.csv")


def test_a_file_target_is_itself_whatever_the_server_says(tmp_path):
    target = Target.resolve(tmp_path / "mine.csv")
    assert public_uri(target.choose("theirs.csv", "fallback.csv")) == f"file://{tmp_path}/mine.csv"


# -- local disk: a temporary sibling and os.replace ----------------------------------------------


def test_a_local_file_is_published_by_os_replace_of_a_sibling(tmp_path, monkeypatch):
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source: str, destination: str) -> None:
        replaced.append((source, destination))
        assert not os.path.isdir(destination)
        real_replace(source, destination)

    monkeypatch.setattr(writer.os, "replace", spy)
    final = tmp_path / "r.csv"
    final.write_bytes(b"old\n")
    target = Target.resolve(final)
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"new\n")
    staged.flush()
    assert final.read_bytes() == b"old\n"  # invisible until published
    (temp,) = leftovers(tmp_path)
    staged.commit()

    assert final.read_bytes() == b"new\n"
    assert replaced == [(str(tmp_path / temp), str(final))]
    assert leftovers(tmp_path) == []


def test_an_aborted_local_file_leaves_the_previous_one(tmp_path):
    final = tmp_path / "r.csv"
    final.write_bytes(b"old\n")
    target = Target.resolve(final)
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"half a rep")
    staged.abort()
    assert final.read_bytes() == b"old\n"
    assert leftovers(tmp_path) == []


def test_a_file_turned_into_a_folder_before_publishing_is_not_replaced(tmp_path):
    final = tmp_path / "r.csv"
    target = Target.resolve(final)
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"data\n")
    final.mkdir()
    (final / "keep.txt").write_text("mine")
    with pytest.raises(SEIDestinationError, match="it is a folder"):
        staged.commit()
    staged.abort()
    assert (final / "keep.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def test_opening_a_folder_fails(tmp_path):
    target = Target.resolve(f"{tmp_path}/")
    with pytest.raises(SEIDestinationError, match="it is a folder"):
        target.open(target.path)


def test_the_providers_stale_temp_files_are_removed_before_writing(tmp_path):
    stale = tmp_path / temp_name()
    stale.write_bytes(b"left by a killed worker")
    age(stale, STALE_TEMP_SECONDS + 60)
    young = tmp_path / temp_name()
    young.write_bytes(b"another export, still running")
    age(young, STALE_TEMP_SECONDS - 600)
    keep = {
        ".sei-export.%s.tmp" % ("A" * 32): b"upper case: not ours",
        ".sei-export.%s.tmp" % ("a" * 31): b"31 digits: not ours",
        ".sei-export.%s.tmp.bak" % ("a" * 32): b"another suffix",
        "report.csv": b"an unrelated file",
        "x.sei-export.%s.tmp" % ("a" * 32): b"a prefix",
    }
    for name, data in keep.items():
        (tmp_path / name).write_bytes(data)
        age(tmp_path / name, STALE_TEMP_SECONDS * 10)
    stale_folder = tmp_path / temp_name()
    stale_folder.mkdir()
    age(stale_folder, STALE_TEMP_SECONDS * 10)
    important = tmp_path.parent / f"important-{uuid.uuid4().hex}.db"
    important.write_bytes(b"not in the folder")
    link = tmp_path / temp_name()
    link.symlink_to(important)
    age(link, STALE_TEMP_SECONDS * 10)

    target = Target.resolve(tmp_path / "new.csv")
    staged = target.open(target.choose(None, "x.csv"))  # before any byte of a body
    assert not stale.exists()
    staged.abort()

    assert young.read_bytes() == b"another export, still running"
    for name, data in keep.items():
        assert (tmp_path / name).read_bytes() == data
    assert stale_folder.is_dir()
    assert link.is_symlink()
    assert important.read_bytes() == b"not in the folder"
    important.unlink()


def test_remove_stale_temp_files_reports_what_it_removed(tmp_path):
    old = tmp_path / temp_name()
    old.write_bytes(b"x")
    age(old, 7200)
    assert remove_stale_temp_files(str(tmp_path), older_than=3600) == [old.name]
    assert remove_stale_temp_files(str(tmp_path / "missing")) == []


# -- file objects ------------------------------------------------------------------------------


def test_a_file_object_is_rewound_to_where_the_attempt_began(tmp_path):
    handle = io.BytesIO(b"header kept\n")
    handle.seek(0, io.SEEK_END)
    target = Target.resolve(handle)
    staged = target.open(None)
    staged.write(b"half a report")
    staged.abort()
    assert handle.getvalue() == b"header kept\n"
    staged = target.open(None)
    staged.write(b"the report\n")
    staged.commit()
    assert handle.getvalue() == b"header kept\nthe report\n"


def test_a_file_object_that_cannot_seek_back_stops_the_retries():
    pipe = Pipe()
    staged = Target.resolve(pipe).open(None)
    staged.write(b"half a report")
    with pytest.raises(SEIDestinationError, match="cannot seek back"):
        staged.abort()
    untouched = Target.resolve(Pipe()).open(None)
    untouched.abort()  # nothing written: nothing spoiled


# -- S3: straight to the final key, the multipart upload aborted on failure ---------------------


def s3_target(s3, key: str = "reports/r.csv") -> Target:
    """A target whose uploads go multipart past 5 MiB (S3's smallest part; s3fs's default
    is 50 MiB)."""
    return Target.resolve(
        f"s3://{s3.bucket}/{key}", conn_id=s3.conn_id, write_options={"block_size": 5 * MIB}
    )


def test_an_aborted_s3_upload_leaves_no_object_and_no_multipart_upload(s3):
    target = s3_target(s3)
    target.preflight()
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"x" * (6 * MIB))  # past the 5 MiB block: a multipart upload is open
    staged.flush()
    assert s3.uploads() == ["reports/r.csv"]
    assert s3.keys() == []  # nothing visible while it uploads
    staged.abort()
    assert s3.keys() == []
    assert s3.uploads() == []


def test_an_aborted_small_s3_upload_leaves_no_object(s3):
    target = s3_target(s3)
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"small")
    staged.abort()
    assert (s3.keys(), s3.uploads()) == ([], [])


def test_an_aborted_s3_upload_keeps_the_previous_object(s3):
    s3.client().put_object(Bucket=s3.bucket, Key="reports/r.csv", Body=b"previous")
    target = s3_target(s3)
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"y" * (6 * MIB))
    staged.abort()
    assert s3.read("reports/r.csv") == b"previous"
    assert s3.uploads() == []


def test_a_committed_s3_upload_is_exactly_the_object(s3):
    target = Target.resolve(
        f"s3://{s3.bucket}/reports/r.csv",
        conn_id=s3.conn_id,
        write_options={"ContentType": "text/csv", "block_size": 5 * MIB},
    )
    staged = target.open(target.choose(None, "x.csv"))
    data = b"Collection Name,value\n" + b"a,1\n" * (3 * MIB)  # 12 MiB: three parts
    for start in range(0, len(data), MIB):
        staged.write(data[start : start + MIB])
    staged.commit()
    assert s3.keys() == ["reports/r.csv"]  # no temporary key, no copy
    assert s3.read("reports/r.csv") == data
    assert s3.uploads() == []
    head = s3.client().head_object(Bucket=s3.bucket, Key="reports/r.csv")
    assert head["ContentType"] == "text/csv"


def test_preflight_fails_for_a_missing_bucket(s3):
    target = Target.resolve("s3://no-such-bucket-sei/r.csv", conn_id=s3.conn_id)
    with pytest.raises(SEIDestinationError, match="no-such-bucket-sei"):
        target.preflight()
    assert (s3.keys(), s3.uploads()) == ([], [])


def test_preflight_fails_for_a_local_folder_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SEIDestinationError, match="not a folder"):
        Target.resolve(f"{tmp_path}/file/sub/r.csv").preflight()


# -- other stores: a temporary sibling and a move ------------------------------------------------


def test_memory_store_publishes_by_a_move_and_aborts_without_a_trace():
    from fsspec import filesystem

    fs = filesystem("memory")
    folder = f"/sei-{uuid.uuid4().hex[:8]}"
    target = Target.resolve(f"memory://{folder}/r.csv")
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"half")
    staged.abort()
    assert not fs.exists(f"{folder}/r.csv")
    assert [p for p in fs.find(folder) if ".sei-export." in p] == []
    staged = target.open(target.choose(None, "x.csv"))
    staged.write(b"whole\n")
    staged.commit()
    assert fs.cat(f"{folder}/r.csv") == b"whole\n"
    assert [p for p in fs.find(folder) if ".sei-export." in p] == []
