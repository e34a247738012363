"""Writing against a hostile server (issue 10): killed workers, stale files, server file names.

* A worker killed mid-download leaves what it was writing: a ``.sei-export.<uuid>.tmp``
  sibling on local disk, an open multipart upload on S3. The next run on local disk removes
  the provider's own stale temporary files (its name pattern only, untouched for 6 h); on S3
  only a bucket lifecycle rule can (``AbortIncompleteMultipartUpload``, documented in
  ``docs/reliability.md`` and checked here against an S3 endpoint).
* A server's file name is used only when it is a plain report name; anything else (a
  sub-folder, an unrelated file, 10,000 characters, ``payload.exe``, ``authorized_keys``,
  control characters, the API key) falls back to the provider's own name, before the body is
  read, and no file that was there is touched.

The killed worker is a real process (the hook in a subprocess, ``SIGKILL``-ed while it
writes); the other runs are real DAG runs against ``tests/hostile.py``'s server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile import Hold, Send, csv, head

from .conftest import record
from .helpers import (
    FALLBACK_NAME,
    GOOD_REPORT,
    HEADER,
    PREVIOUS,
    SECRET_KEY,
    export_run,
    script_reports,
)

SEVEN_HOURS = 7 * 3600
#: The lifecycle rule docs/reliability.md gives for uploads left by killed workers.
LIFECYCLE_RULE = {
    "ID": "abort-incomplete-sei-exports",
    "Filter": {"Prefix": ""},
    "Status": "Enabled",
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}

#: What a killed worker runs: the hook, exporting to the destination given.
WORKER = """
import sys
from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.models import TeamReportRequest

request = TeamReportRequest.build(collection_id="123", date_start="2024-01-01",
                                  date_end="2024-01-31")
SEIHook().download_report(request, sys.argv[1], write_options={"block_size": 5 << 20})
"""


def rows(size: int) -> bytes:
    """Report rows adding up to at least ``size`` bytes."""
    row = b"Team %08d,1.5,3\n"
    count = size // len(row % 0) + 1
    return b"".join(row % i for i in range(count))


def half_sent(size: int) -> list[Any]:
    """A report announced at twice ``size`` bytes; ``size`` of them are sent, then nothing."""
    body = HEADER + rows(size)
    headers = {"Content-Type": "text/csv", "Content-Length": 2 * len(body)}
    return [Send(head(200, headers) + body), Hold()]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``condition`` until it holds (not a timing assertion: a state to reach)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def kill_mid_write(destination: str, written: Callable[[], Any]) -> Any:
    """Start a worker exporting to ``destination``; SIGKILL it once ``written()`` holds."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, destination],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        evidence = wait_for(lambda: worker.poll() is not None or written(), "the worker to write")
        assert worker.poll() is None, worker.communicate()[0].decode(errors="replace")[-2000:]
    finally:
        worker.send_signal(signal.SIGKILL)
        output = worker.communicate()[0]
    assert worker.returncode == -signal.SIGKILL
    assert SECRET_KEY.encode() not in output
    return evidence


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".sei-export.*.tmp"))


def test_a_killed_workers_temp_file_is_removed_by_a_later_run(
    hostile, rel_conn, run_dag, recorder, tmp_path
):
    rel_conn.set(timeout=60)  # the worker must still be writing when it is killed
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_bytes(PREVIOUS)
    script_reports(hostile, half_sent(3 << 20))  # over the 1 MiB the hook reads at a time

    kill_mid_write(
        f"file://{out}/report.csv", lambda: any(p.stat().st_size > 0 for p in temp_files(out))
    )

    (orphan,) = temp_files(out)  # what the killed worker left
    assert (out / "report.csv").read_bytes() == PREVIOUS
    # Other files in the folder: a live export's temp file (young), and look-alikes.
    young = out / f".sei-export.{uuid.uuid4().hex}.tmp"
    young.write_bytes(b"an export in progress")
    lookalike = out / ".sei-export.notours.tmp"
    lookalike.write_bytes(b"not the provider's pattern")
    aged = time.time() - SEVEN_HOURS
    for path in (orphan, lookalike):
        os.utime(path, (aged, aged))  # as if the worker was killed 7 h ago
    script_reports(hostile, csv(GOOD_REPORT))

    outcome = export_run(
        run_dag, recorder, "write_after_kill", destination=f"file://{out}/report.csv"
    )

    record(
        "writing",
        {
            "case": "a killed worker's temp file, 7 h old",
            "store": "local file",
            "state": outcome.state,
            "left_by_kill": "its .sei-export.<uuid>.tmp (3 MiB)",
            "after_next_run": (
                f"{'removed' if not orphan.exists() else 'NOT removed'} (aged 7 h); kept: "
                "report.csv (the new report), a live export's 0-hour-old temp file, "
                ".sei-export.notours.tmp (aged 7 h, not the provider's pattern)"
            ),
        },
    )
    assert outcome.state == "success"
    assert (out / "report.csv").read_bytes() == GOOD_REPORT
    assert not orphan.exists()
    assert young.read_bytes() == b"an export in progress"
    assert lookalike.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.csv", young.name, lookalike.name]
    )


def test_a_killed_workers_multipart_upload_needs_the_lifecycle_rule(
    hostile, rel_conn, s3, run_dag, recorder
):
    """On S3 a worker killed mid-upload leaves an open multipart upload: invisible, billed,
    and out of the provider's reach (it cannot tell it from a live export's). The object
    keeps its previous export; the lifecycle rule the doc gives is accepted by S3."""
    rel_conn.set(timeout=60)
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="out/report.csv", Body=PREVIOUS)
    script_reports(hostile, half_sent(8 << 20))  # over the 5 MiB part size given to the worker

    kill_mid_write(f"s3://aws_default@{s3.bucket}/out/report.csv", s3.uploads)

    assert s3.uploads() == ["out/report.csv"]
    assert s3.read("out/report.csv") == PREVIOUS
    script_reports(hostile, csv(GOOD_REPORT))

    outcome = export_run(
        run_dag,
        recorder,
        "write_after_kill_s3",
        destination=f"s3://aws_default@{s3.bucket}/out/report.csv",
    )

    assert outcome.state == "success"
    assert s3.read("out/report.csv") == GOOD_REPORT
    assert s3.keys() == ["out/report.csv"]
    assert s3.uploads() == ["out/report.csv"]  # the killed worker's, still open
    client.put_bucket_lifecycle_configuration(
        Bucket=s3.bucket, LifecycleConfiguration={"Rules": [LIFECYCLE_RULE]}
    )
    (rule,) = client.get_bucket_lifecycle_configuration(Bucket=s3.bucket)["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    record(
        "writing",
        {
            "case": "a killed worker's multipart upload",
            "store": "S3 object",
            "state": outcome.state,
            "left_by_kill": f"{len(s3.uploads())} open multipart upload (5 MiB part)",
            "after_next_run": "the report published; the killed upload still open, until the "
            "lifecycle rule aborts it (the rule is accepted by the endpoint)",
        },
    )


# -- server file names -------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _sub_folder(out: Path) -> None:
    (out / "reports.csv").mkdir()
    (out / "reports.csv" / "inner.txt").write_bytes(b"inside a folder")


def _important(out: Path) -> None:
    (out / "important.db").write_bytes(b"precious data")


def _previous(out: Path) -> None:
    (out / "report.csv").write_bytes(PREVIOUS)


NAMES: dict[str, tuple[bytes, str | None, Callable[[Path], None] | None]] = {
    # id: (the server's filename, the name used (None: the provider's own), the folder before)
    "plain-report-name": (b"team-2024-01.csv", "team-2024-01.csv", None),
    "existing-report-name": (b"report.csv", "report.csv", _previous),
    "names-a-sub-folder": (b"reports.csv", None, _sub_folder),
    "names-an-unrelated-file": (b"important.db", None, _important),
    "10000-characters": (b"r" * 9996 + b".csv", None, None),
    "payload.exe": (b"payload.exe", None, None),
    "authorized_keys": (b"authorized_keys", None, None),
    "dot-file": (b".bashrc", None, None),
    "path-traversal": (b"../../escape.csv", "escape.csv", None),
    "control-characters": (b"evil\x1b[2J\x07\x08name.csv", None, None),
    "holds-the-api-key": (b"team-" + SECRET_KEY.encode() + b".csv", None, None),
}


def shown(name: bytes) -> str:
    """A server file name for the doc's table: repr'd, long ones cut, the key never shown."""
    text = name.decode("latin-1").replace(SECRET_KEY, "<the API key>")
    if len(text) > 40:
        text = f"{text[:8]}… ({len(text):,} characters)"
    return repr(text)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", list(NAMES), ids=list(NAMES))
def test_a_server_file_name_is_used_only_when_it_is_a_plain_report_name(
    case, hostile, run_dag, recorder, tmp_path, capfd, all_logs
):
    filename, used, setup = NAMES[case]
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    if setup:
        setup(out)
    before = snapshot(out)
    script_reports(hostile, csv(GOOD_REPORT, filename=filename))

    outcome = export_run(
        run_dag,
        recorder,
        f"write_name_{case}".replace("-", "_").replace(".", "_"),
        destination=f"file://{out}/",
    )

    summary = run_dag.xcom(outcome.dag_run, "export") or {}
    written = used or FALLBACK_NAME
    after = snapshot(out)
    output = capfd.readouterr().out + "\n".join(all_logs.texts)
    record(
        "filenames",
        {
            "case": case,
            "server_name": shown(filename),
            "state": outcome.state,
            "written": written,
            "xcom_filename": summary.get("filename"),
        },
    )
    assert outcome.state == "success"
    assert summary["uri"] == f"file://{out}/{written}"
    assert summary["filename"] == used
    assert after == {**before, written: GOOD_REPORT}  # nothing else created or changed
    assert snapshot(tmp_path) == {f"a/b/out/{name}": data for name, data in after.items()}
    assert not CONTROL.search(output.replace("\t", " "))  # no server byte made it raw
