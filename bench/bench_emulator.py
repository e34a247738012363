"""Benchmark the SEI emulator: a cold 1000-team report, streaming throughput, server memory.

Run: ``.venv/bin/python bench/bench_emulator.py``. Prints a markdown table.

1. In-process ``SEIEmulator(teams=1000)``: a cold one-year team report from the root (org and
   activity generated on the spot), all metrics, MEAN and P95.
2. A CLI emulator (``--report-bytes``) streaming a large report: throughput of the pipe.
3. A CLI emulator with ``--teams 5000``: a one-year contributor export from the root, streamed;
   the server process's peak RSS (``VmHWM``) before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests
from sei_emulator import SEIEmulator

KEY = {"x-api-key": "sei-emulator-key"}
REPORTS = "/v2/insights/teams/reports?format=csv"
YEAR = {"dateStart": "2024-01-01", "dateEnd": "2024-12-31", "granularity": "weekly"}


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sei_emulator", "--port", "0",
         "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip().rsplit(" ", 1)[1]


def stream(url: str, body: dict) -> tuple[int, int, float]:
    start = time.perf_counter()
    with requests.post(url, json=body, headers=KEY, stream=True, timeout=600) as r:
        r.raise_for_status()
        size = rows = 0
        for chunk in r.iter_content(1 << 20):
            size += len(chunk)
            rows += chunk.count(b"\n")
    return size, rows, time.perf_counter() - start


def measure() -> list[str]:
    """The emulator's own numbers, as the rows of a Markdown table."""
    out = ["| measurement | value |", "| --- | --- |"]
    for calc in ("MEAN", "P95"):
        with SEIEmulator(port=0, teams=1000) as emu:
            body = {
                **YEAR,
                "teamRefId": 1,
                "productivity": {},
                "efficiency": {"calculationType": calc},
            }
            size, rows, seconds = stream(emu.base_url + REPORTS, body)
        out.append(f"| cold 1000-team yearly team report, root, {calc} | "
                   f"{seconds:.2f} s, {rows - 1} rows, {size:,} bytes |")  # fmt: skip

    for mib in (64, 1024):
        proc, base = cli("--report-bytes", str(mib << 20))
        try:
            body = {**YEAR, "teamRefId": 1}
            stream(base + REPORTS, body)  # warm the org
            size, _, seconds = stream(base + REPORTS, body)
            rss = peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        out.append(f"| --report-bytes {mib} MiB team report | {size / seconds / 2**20:,.0f} MiB/s "
                   f"({seconds:.2f} s), server peak RSS {rss:.0f} MiB |")  # fmt: skip

    proc, base = cli("--teams", "5000")
    try:
        idle = peak_rss_mib(proc.pid)
        body = {**YEAR, "collectionId": "1", "includeRatings": True,
                "productivityContributors": {"metrics": []}}  # fmt: skip
        size, rows, seconds = stream(base + REPORTS, body)
        after = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    out.append(f"| 5000-team yearly contributor export, root | {seconds:.2f} s, {rows - 1:,} rows, "
               f"{size:,} bytes |")  # fmt: skip
    out.append(f"| server peak RSS idle -> after that export | {idle:.0f} MiB -> {after:.0f} MiB |")
    return out


def main() -> None:
    out = measure()
    print(f"SEI emulator benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
