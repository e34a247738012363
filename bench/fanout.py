"""Fan-out benchmark: a 500-team org at 100 ms server latency, to files and to a merged CSV.

Without a rate limit the ideal wall time for concurrency ``c`` is ``ceil(teams / c) x latency``
(plus one listing call); with the emulator limiting to 400 requests per minute and the
operator's budget at 400, the floor is ``(teams + 1) / 400`` minutes.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Any

from bench.common import PYTHON, ROOT, child_env, emulator, run_child, sei_connection


def run_fanout(
    base_url: str,
    *,
    concurrency: int,
    files: bool,
    merged: bool,
    rpm: float = 0,
    limiter: str = "ours",
    pythonpath: str | None = None,
    max_failed: int = 0,
) -> dict[str, Any]:
    """Run the fan-out child once; ``pythonpath`` is added to the child's (a limiter library).

    ``max_failed``: teams that may fail with the task still succeeding (and reporting them).
    """
    out = ROOT / "bench" / "results" / "fanout"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    args = [
        PYTHON,
        "-m",
        "bench.client_fanout",
        "--out",
        str(out),
        "--concurrency",
        str(concurrency),
        "--rpm",
        str(rpm),
        "--limiter",
        limiter,
        "--max-failed",
        str(max_failed),
    ]
    args += ["--files"] * files + ["--merged"] * merged
    env = child_env(AIRFLOW_CONN_HARNESS_SEI_DEFAULT=sei_connection(base_url))
    if pythonpath:
        env["PYTHONPATH"] += os.pathsep + pythonpath
    result = run_child(args, env=env)
    shutil.rmtree(out, ignore_errors=True)
    return result


def bench_fanout(
    teams: int,
    latency_ms: int,
    concurrencies: list[int],
    *,
    rate_limit: int | None = 400,
    log: Any = print,
) -> list[dict[str, Any]]:
    latency = latency_ms / 1000
    rows = []
    with emulator("--teams", str(teams), "--latency-ms", str(latency_ms)) as emu:
        run_fanout(emu.base_url, concurrency=8, files=False, merged=True)  # warm the org's cache
        for concurrency in concurrencies:
            for files, merged in ((True, False), (False, True), (True, True)):
                result = run_fanout(
                    emu.base_url, concurrency=concurrency, files=files, merged=merged
                )
                ideal = math.ceil(teams / concurrency) * latency + latency  # + the listing
                rows.append(
                    _row(result, teams, latency_ms, concurrency, files, merged, None, ideal)
                )
                log(
                    f"  fan-out c={concurrency} files={files} merged={merged}: "
                    f"{result['seconds']:.2f} s (ideal {ideal:.2f} s)"
                )
    if rate_limit:
        args = (
            "--teams",
            str(teams),
            "--latency-ms",
            str(latency_ms),
            "--rate-limit-per-minute",
            str(rate_limit),
        )
        with emulator(*args) as emu:
            result = run_fanout(
                emu.base_url, concurrency=8, files=True, merged=True, rpm=rate_limit
            )
            floor = (teams + 1) / rate_limit * 60
            rows.append(_row(result, teams, latency_ms, 8, True, True, rate_limit, floor))
            log(
                f"  fan-out rate-limited {rate_limit}/min: {result['seconds']:.1f} s "
                f"(floor {floor:.1f} s)"
            )
    return rows


def _row(
    result: dict[str, Any],
    teams: int,
    latency_ms: int,
    concurrency: int,
    files: bool,
    merged: bool,
    rpm: int | None,
    ideal: float,
) -> dict[str, Any]:
    summary = result["summary"]
    return {
        "teams": teams,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "files": files,
        "merged": merged,
        "rate_limit": rpm,
        "seconds": result["seconds"],
        "ideal": ideal,
        "ratio": result["seconds"] / ideal,
        "failed": len(summary["failed"]),
        "throttled": result["sends"]["status_429"],
        "requests": result["sends"]["requests"],
        "most_in_60_s": result["sends"]["most_in_60_s"],
        "merged_rows": summary.get("merged_rows"),
        "rows": summary["rows"],
        "rss_growth_mib": (result["rss_peak"] - result["rss_import"]) / (1 << 20),
    }
