"""V2 job faults (failed, cancelled, never finished, cut download) and request faults on V2."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys

import pytest
import requests
from sei_emulator import Fault, Faults, JobFault, JobStatus, SEIEmulator
from v2_helpers import IDS, V2_AUTH, completed, create, download, export_body, poll, raw_get


def test_failed_job_says_why(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.fail("Export failed: query timeout")]))
    export_id, done = completed(emulator, "efficiency")
    assert done["status"] == "FAILED"
    assert done["error"] == "Export failed: query timeout"
    assert "downloadUrl" not in done
    assert done["completedAt"]
    assert emulator.jobs[export_id].fault.label == "fail"
    r = download(emulator, "efficiency", export_id)
    assert r.status_code == 409
    assert "FAILED" in r.json()["message"]


def test_failed_job_message_field_and_lower_case(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.fail("boom", field="message")]))
    _, done = completed(emulator, "productivity")
    assert (done["status"], done["message"]) == ("failed", "boom")
    assert "error" not in done


@pytest.mark.parametrize(
    ("export_type", "status"),
    [
        ("productivity", "cancelled"),
        ("sprint", "CANCELLED"),
    ],
)
def test_cancelled_job(emulator, export_type, status):
    emulator.set_faults(Faults(jobs=[JobFault.cancel()]))
    export_id, done = completed(emulator, export_type)
    assert done["status"] == status
    assert "download" not in done
    assert download(emulator, export_type, export_id).status_code == 409


def test_job_that_never_finishes(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.never_finish()]))
    export_id = create(emulator, "ba").json()["exportId"]
    seen = {poll(emulator, "ba", export_id).json()["status"] for _ in range(20)}
    assert seen == {"QUEUED", "PROCESSING"}
    assert emulator.jobs[export_id].status is JobStatus.PROCESSING


def test_cut_download_then_whole(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.cut_download(0.25)]))
    export_id, _ = completed(emulator, "efficiency")
    path = f"/v2/insights/efficiency/exports/{export_id}/download"
    response, conn = raw_get(emulator, path)
    length = int(response.getheader("Content-Length"))
    with pytest.raises(http.client.IncompleteRead) as err:
        response.read()
    conn.close()
    assert len(err.value.partial) == int(length * 0.25)
    assert emulator.requests[-1].fault == "job:cut_download:0.25"
    assert emulator.requests[-1].bytes_sent == int(length * 0.25)
    whole = download(emulator, "efficiency", export_id)  # the retry gets the whole file
    assert len(whole.content) == length
    assert whole.content.startswith(err.value.partial)
    assert emulator.requests[-1].fault is None
    assert emulator.jobs[export_id].downloads == 2


def test_cut_every_download(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.cut_download(0.5, times=None)]))
    export_id, _ = completed(emulator, "ba")
    for _ in range(3):
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            download(emulator, "ba", export_id)


def test_job_faults_go_to_new_jobs_in_order(emulator):
    script = [JobFault.ok(), JobFault.fail(), JobFault.cancel()]
    emulator.set_faults(Faults(jobs=script))
    first, _ = completed(emulator, "efficiency")
    assert create(emulator, "efficiency").status_code == 200  # reused: takes no fault
    assert emulator.pending_job_faults == script[1:]
    second, _ = completed(emulator, "ba")
    third, _ = completed(emulator, "sprint")
    fourth, _ = completed(emulator, "efficiency", export_body("efficiency", scope={"teamId": "1"}))
    statuses = [emulator.jobs[i].status for i in (first, second, third, fourth)]
    assert statuses == [
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.COMPLETED,
    ]
    assert emulator.pending_job_faults == []


def test_a_failed_job_is_not_reused(emulator):
    emulator.set_faults(Faults(jobs=[JobFault.fail()]))
    first, _ = completed(emulator, "ba")
    again = create(emulator, "ba")
    assert again.status_code == 202
    assert again.json()["exportId"] != first


def test_request_faults_apply_to_v2(emulator):
    export_id = create(emulator, "ba").json()["exportId"]
    emulator.set_faults(Faults(script=[Fault.status(503), Fault.status(429, retry_after=2)]))
    assert poll(emulator, "ba", export_id).status_code == 503
    assert poll(emulator, "ba", export_id).headers["Retry-After"] == "2"
    assert emulator.jobs[export_id].polls == 0  # refused polls never reached the job
    assert [r.fault for r in emulator.requests[-2:]] == ["status:503", "status:429"]


def test_a_truncate_fault_cuts_a_download(emulator):
    export_id, _ = completed(emulator, "efficiency")
    emulator.set_faults(Faults(script=[Fault.truncate(0.5)]))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        download(emulator, "efficiency", export_id)
    assert emulator.requests[-1].fault == "truncate:0.5"


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("ok", JobFault.ok()),
        ("fail", JobFault.fail()),
        ("CANCEL", JobFault.cancel()),
        ("never", JobFault.never_finish()),
        ("cut", JobFault.cut_download()),
        ("cut:0.1", JobFault.cut_download(0.1)),
    ],
)
def test_job_fault_parse(spec, fault):
    assert JobFault.parse(spec) == fault


def test_job_fault_arguments_are_checked():
    for bad in (
        lambda: JobFault.parse("explode"),
        lambda: JobFault.fail(field="reason"),
        lambda: JobFault.cut_download(1.5),
        lambda: JobFault.cut_download(times=0),
    ):
        with pytest.raises(ValueError):
            bad()


def test_cli_job_faults_and_v2_flags():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sei_emulator",
            "--port",
            "0",
            "--job-faults",
            "fail,cancel",
            "--v2-complete-after-polls",
            "0",
            "--v2-status-case",
            "lower",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        got = []
        for export_type in ("efficiency", "ba", "sprint"):
            r = requests.post(
                f"{base}/v2/insights/{export_type}/exports",
                headers=V2_AUTH,
                params=IDS,
                json=export_body(export_type),
                timeout=10,
            )
            export_id = r.json()["exportId"]
            got.append(
                requests.get(
                    f"{base}/v2/insights/{export_type}/exports/{export_id}",
                    headers=V2_AUTH,
                    params=IDS,
                    timeout=10,
                ).json()["status"]
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert got == ["failed", "cancelled", "completed"]


def test_cli_help_lists_v2_flags():
    out = subprocess.run(
        [sys.executable, "-m", "sei_emulator", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--job-faults",
        "--v2-complete-after-polls",
        "--v2-complete-after-seconds",
        "--v2-status-case",
        "--v2-status-shape",
        "--v2-create-shape",
        "--v2-content-encoding",
        "--v2-compression",
        "--gzip-reports",
    ):
        assert flag in out


def test_stop_with_a_never_finishing_job_is_prompt():
    emu = SEIEmulator(port=0, faults=Faults(jobs=[JobFault.never_finish()])).start()
    export_id = create(emu, "ba").json()["exportId"]
    poll(emu, "ba", export_id)
    emu.stop()
