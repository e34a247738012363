"""Streaming benchmark: one team report of N bytes to a local file, three ways, side by side.

* ``curl -o``: the near-limit baseline (C, no parsing, straight to disk).
* naive: ``requests.post(...).content`` then one write -- what ``HttpToS3Operator`` does.
* ours: ``SEITeamReportOperator.execute`` (hook, retries, CSV row counting, atomic write).

Each run is a fresh process against one emulator process (``--report-bytes N``) on 127.0.0.1.
Time is the export inside the process (no interpreter start-up or imports; curl's own
``time_total``); RSS growth is the peak during the export minus the peak after imports.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    API_KEY,
    PYTHON,
    ROOT,
    MiB,
    child_env,
    emulator,
    median,
    run_child,
    sei_connection,
)

TOOLS = ("curl", "naive", "ours")


def request_body() -> dict[str, Any]:
    from airflow_provider_sei.models import TeamReportRequest

    return TeamReportRequest.build(
        collection_id="1", date_start="2024-01-01", date_end="2024-01-31"
    ).to_json()


def run_curl(url: str, body: str, out: Path) -> dict[str, Any]:
    """curl under GNU time: its own peak RSS (``%M``, from a small parent: no inherited peak)."""
    started = time.perf_counter()
    rss_file = out.with_suffix(".rss")
    process = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            "-o",
            str(rss_file),
            "curl",
            "-sS",
            "--fail",
            "-o",
            str(out),
            "-X",
            "POST",
            "-H",
            f"x-api-key: {API_KEY}",
            "-H",
            "Content-Type: application/json",
            "-H",
            "Accept: text/csv",
            "--data",
            body,
            "-w",
            "%{time_total} %{size_download}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"curl failed: {process.stderr[-500:]}")
    seconds, size = process.stdout.split()
    peak = int(rss_file.read_text().split()[-1]) * 1024
    rss_file.unlink()
    return {
        "seconds": float(seconds),
        "bytes": int(size),
        "rss_base": 0,  # curl has no imports to discount: its whole peak counts
        "rss_peak": peak,
        "process_seconds": time.perf_counter() - started,
    }


def run_once(tool: str, base_url: str, body: str, out: Path) -> dict[str, Any]:
    url = f"{base_url}/v2/insights/teams/reports?format=csv"
    if tool == "curl":
        return run_curl(url, body, out)
    if tool == "naive":
        args = ["--url", url, "--body", body, "--out", str(out)]
        return run_child([PYTHON, "-m", "bench.client_naive", *args])
    env = child_env(AIRFLOW_CONN_SEI_DEFAULT=sei_connection(base_url))
    return run_child([PYTHON, "-m", "bench.client_operator", "--out", str(out)], env=env)


def bench_stream(sizes_mib: list[int], repeats: int, log: Any = print) -> list[dict[str, Any]]:
    """Median of ``repeats`` runs per size and tool; the tools interleave within a repeat."""
    body = json.dumps(request_body())
    out_dir = ROOT / "bench" / "results" / "stream"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes_mib:
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
        with emulator("--report-bytes", str(size * MiB)) as emu:
            for repeat in range(repeats):
                order = TOOLS[repeat % 3 :] + TOOLS[: repeat % 3]  # rotate: no tool always first
                for tool in order:
                    out = out_dir / f"{tool}.csv"
                    result = run_once(tool, emu.base_url, body, out)
                    if out.stat().st_size != size * MiB or result["bytes"] != size * MiB:
                        raise RuntimeError(
                            f"{tool} wrote {out.stat().st_size} bytes, not {size} MiB"
                        )
                    out.unlink()
                    runs[tool].append(result)
                    log(
                        f"  stream {size} MiB {tool} #{repeat + 1}: {result['seconds']:.2f} s, "
                        f"RSS +{(result['rss_peak'] - result['rss_base']) / MiB:.1f} MiB"
                    )
        curl_rate = size / median([r["seconds"] for r in runs["curl"]])
        for tool in TOOLS:
            seconds = median([r["seconds"] for r in runs[tool]])
            growth = median([r["rss_peak"] - r["rss_base"] for r in runs[tool]])
            rows.append(
                {
                    "size_mib": size,
                    "tool": tool,
                    "seconds": seconds,
                    "mib_per_s": size / seconds,
                    "vs_curl": (size / seconds) / curl_rate,
                    "rss_growth_mib": growth / MiB,
                    "peak_rss_mib": median([r["rss_peak"] for r in runs[tool]]) / MiB,
                    "process_seconds": median([r["process_seconds"] for r in runs[tool]]),
                    "fixed_seconds": median([r["fixed_seconds"] for r in runs[tool]])
                    if tool == "ours"
                    else None,
                    "rss_growth_incl_lazy_imports_mib": median(
                        [r["rss_peak"] - r.get("rss_import", r["rss_base"]) for r in runs[tool]]
                    )
                    / MiB,
                    "runs": [r["seconds"] for r in runs[tool]],
                }
            )
    return rows
