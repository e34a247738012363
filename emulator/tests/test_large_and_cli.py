"""Large-report mode (report_bytes) and the command line."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys

import pytest
import requests
from emu_helpers import contributor_body, post_report, rows, team_body
from sei_emulator import SEIEmulator


@pytest.mark.parametrize("size", [10_000, 1_048_576 + 12_345, 3 * 1_048_576])
@pytest.mark.parametrize("body", [team_body(), contributor_body(includeRatings=True)])
def test_report_bytes_repeats_real_rows_to_exactly_n_bytes(size, body):
    with SEIEmulator(port=0) as normal:
        real = rows(post_report(normal, body))
    with SEIEmulator(port=0, report_bytes=size) as emu:
        r = post_report(emu, body, stream=True)
        data = b"".join(r.iter_content(1 << 20))
    assert int(r.headers["Content-Length"]) == size == len(data)
    assert data.endswith(b"\n")
    table = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert table[0] == real[0]
    body_rows = table[1:]
    n = len(real) - 1
    for i, row in enumerate(body_rows[:-1]):
        assert row == real[1 + i % n]
    last = body_rows[-1]
    assert last[0].rstrip() == real[1 + (len(body_rows) - 1) % n][0]
    assert last[1:] == real[1 + (len(body_rows) - 1) % n][1:]


def test_report_bytes_keeps_empty_reports_empty():
    with SEIEmulator(port=0, report_bytes=100_000) as emu:
        r = post_report(emu, team_body(dateStart="2020-01-01", dateEnd="2020-12-31"))
    assert r.content == b""


def test_cli_prints_its_url_serves_and_stops_on_sigterm():
    key = "cli-secret-key-123"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sei_emulator", "--port", "0",
         "--api-key", key, "--teams", "30", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SEI emulator listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        assert not base_url.endswith(":0")
        teams = requests.get(f"{base_url}/v2/org-trees/1/teams", headers={"x-api-key": key},
                             timeout=10).json()  # fmt: skip
        assert len(teams) == 30
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "GET /v2/org-trees/1/teams 200" in err
    assert key not in err


def test_cli_help_lists_fault_flags():
    out = subprocess.run(
        [sys.executable, "-m", "sei_emulator", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for flag in (
        "--error-rate-429",
        "--error-rate-503",
        "--drop-rate",
        "--truncate-rate",
        "--rate-limit-per-minute",
        "--retry-after",
        "--report-bytes",
        "--latency-ms",
    ):
        assert flag in out
