"""Streaming benchmark: one team report of N bytes to a local file, side by side with curl.

* ``curl -o`` (``curl --compressed -o`` for the gzip-encoded report): the near-limit baseline
  (C, no parsing, straight to disk).
* naive: ``requests.post(...).content`` then one write -- what ``HttpToS3Operator`` does.
* ours: ``SEITeamReportOperator.execute`` (hook, retries, CSV check, atomic write).
* ours+NAME: ours with the prototype NAME of :mod:`bench.prototypes` applied (only when asked).

Each run is a fresh process against one emulator process (``--report-bytes N``, and
``--gzip-reports`` for the encoded report: it honours ``Accept-Encoding: gzip`` with a body
compressed once and cached) on 127.0.0.1. The tools take turns within a repeat, in rotating
order, and each export starts right after the same amount of memory was recycled
(:func:`bench.common.prefault`). *time* is the export inside the process (no interpreter
start-up or imports; curl's own ``time_total``); *CPU* is the user + system time the export
took (every thread; for curl, its whole process); RSS growth is the peak during the export
minus the peak after imports.
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
    prefault,
    run_child,
    sei_connection,
)

TOOLS = ("curl", "naive", "ours")
ENCODINGS = ("identity", "gzip")
REPORTS_PATH = "/v2/insights/teams/reports?format=csv"


def request_body() -> dict[str, Any]:
    """The body of the measured request: one month of collection 1's team report."""
    from airflow_provider_sei.models import TeamReportRequest

    return TeamReportRequest.build(
        collection_id="1", date_start="2024-01-01", date_end="2024-01-31"
    ).to_json()


def run_curl(
    url: str, body: str, out: Path, *, gzip: bool, prefault_bytes: int = 0
) -> dict[str, Any]:
    """Run curl under GNU time: its own peak RSS (``%M``, from a small parent) and CPU time."""
    if prefault_bytes:
        prefault(out.parent, prefault_bytes)
    started = time.perf_counter()
    usage_file = out.with_suffix(".usage")
    command = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(usage_file), "curl", "-sS", "--fail"]
    command += ["--compressed"] * gzip
    command += [
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
    ]
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise RuntimeError(f"curl failed: {process.stderr[-500:]}")
    seconds, wire = process.stdout.split()
    peak, user, system = usage_file.read_text().split()[-3:]
    usage_file.unlink()
    return {
        "seconds": float(seconds),
        "cpu_seconds": float(user) + float(system),
        "bytes": out.stat().st_size,
        "wire_bytes": int(wire),
        "rss_base": 0,  # curl has no imports to discount: its whole peak counts
        "rss_peak": int(peak) * 1024,
        "process_seconds": time.perf_counter() - started,
    }


def run_once(
    tool: str, base_url: str, body: str, out: Path, *, gzip: bool, size: int
) -> dict[str, Any]:
    """Run one export of ``size`` bytes with ``tool`` into ``out``, memory recycled first."""
    url = f"{base_url}{REPORTS_PATH}"
    if tool == "curl":
        return run_curl(url, body, out, gzip=gzip, prefault_bytes=size)
    if tool == "naive":
        args = ["--url", url, "--body", body, "--out", str(out), "--prefault", str(size)]
        return run_child([PYTHON, "-m", "bench.client_naive", *args])
    patches = [arg for name in tool.split("+")[1:] for arg in ("--patch", name)]
    env = child_env(AIRFLOW_CONN_HARNESS_SEI_DEFAULT=sei_connection(base_url))
    command = [PYTHON, "-m", "bench.client_operator", "--out", str(out), *patches]
    return run_child([*command, "--prefault", str(size)], env=env)


def bench_stream(
    sizes_mib: list[int],
    repeats: int,
    *,
    encodings: tuple[str, ...] = ENCODINGS,
    naive_max_mib: int = 512,
    prototypes: tuple[str, ...] = (),
    log: Any = print,
) -> list[dict[str, Any]]:
    """Median of ``repeats`` runs per size, encoding and tool; the tools take turns."""
    body = json.dumps(request_body())
    out_dir = ROOT / "bench" / "results" / "stream"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for encoding in encodings:
        gzip = encoding == "gzip"
        for size in sizes_mib:
            tools = [t for t in TOOLS if t != "naive" or (size <= naive_max_mib and not gzip)]
            tools += [f"ours+{name}" for name in prototypes]
            runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
            args = ["--report-bytes", str(size * MiB)] + ["--gzip-reports"] * gzip
            with emulator(*args) as emu:
                if gzip:  # the emulator compresses the report on the first request
                    run_curl(f"{emu.base_url}{REPORTS_PATH}", body, out_dir / "warm", gzip=True)
                    (out_dir / "warm").unlink()
                for repeat in range(repeats):
                    turn = repeat % len(tools)
                    for tool in tools[turn:] + tools[:turn]:  # no tool always first
                        runs[tool].append(_measure(tool, emu.base_url, body, out_dir, size, gzip))
                        result = runs[tool][-1]
                        log(
                            f"  stream {size} MiB {encoding} {tool} #{repeat + 1}: "
                            f"{result['seconds']:.2f} s, CPU {result['cpu_seconds']:.2f} s, "
                            f"RSS +{(result['rss_peak'] - result['rss_base']) / MiB:.1f} MiB"
                        )
            rows += _rows(size, encoding, runs)
    return rows


def _measure(
    tool: str, base_url: str, body: str, out_dir: Path, size: int, gzip: bool
) -> dict[str, Any]:
    out = out_dir / f"{tool}.csv"
    result = run_once(tool, base_url, body, out, gzip=gzip, size=size * MiB)
    written = out.stat().st_size
    out.unlink()
    if written != size * MiB or result["bytes"] != size * MiB:
        raise RuntimeError(f"{tool} wrote {written} bytes, not {size} MiB")
    return result


def _rows(size: int, encoding: str, runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    curl_seconds = median([r["seconds"] for r in runs["curl"]])
    curl_cpu = median([r["cpu_seconds"] for r in runs["curl"]])
    rows = []
    for tool, results in runs.items():
        seconds = median([r["seconds"] for r in results])
        cpu = median([r["cpu_seconds"] for r in results])
        ours = tool.startswith("ours")
        rows.append(
            {
                "size_mib": size,
                "encoding": encoding,
                "tool": tool,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "mib_per_s": size / seconds,
                "vs_curl": curl_seconds / seconds,
                "cpu_vs_curl": cpu / curl_cpu if curl_cpu else None,
                "rss_growth_mib": median([r["rss_peak"] - r["rss_base"] for r in results]) / MiB,
                "peak_rss_mib": median([r["rss_peak"] for r in results]) / MiB,
                "process_seconds": median([r["process_seconds"] for r in results]),
                "fixed_seconds": median([r["fixed_seconds"] for r in results]) if ours else None,
                "rss_growth_incl_lazy_imports_mib": median(
                    [r["rss_peak"] - r.get("rss_import", r["rss_base"]) for r in results]
                )
                / MiB,
                "wire_mib": median([r["wire_bytes"] for r in results]) / MiB
                if tool == "curl"
                else None,
                "page_faults": median([r["page_faults"] for r in results]) if ours else None,
                "runs": [r["seconds"] for r in results],
                "cpu_runs": [r["cpu_seconds"] for r in results],
            }
        )
    return rows


def bench_formats(
    size_mib: int,
    repeats: int,
    formats: tuple[str, ...] = ("csv", "csv.gz", "parquet"),
    log: Any = print,
) -> list[dict[str, Any]]:
    """Our export of one report in each output format: median time, CPU, RSS and file size."""
    out_dir = ROOT / "bench" / "results" / "stream"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {fmt: [] for fmt in formats}
    with emulator("--report-bytes", str(size_mib * MiB)) as emu:
        env = child_env(AIRFLOW_CONN_HARNESS_SEI_DEFAULT=sei_connection(emu.base_url))
        for repeat in range(repeats):
            turn = repeat % len(formats)
            for fmt in formats[turn:] + formats[:turn]:
                out = out_dir / f"ours-format.{fmt}"
                command = [PYTHON, "-m", "bench.client_operator", "--out", str(out)]
                result = run_child([*command, "--output-format", fmt], env=env)
                result["file_bytes"] = out.stat().st_size
                out.unlink()
                runs[fmt].append(result)
                log(
                    f"  export as {fmt} #{repeat + 1}: {result['seconds']:.2f} s, "
                    f"RSS +{(result['rss_peak'] - result['rss_base']) / MiB:.1f} MiB"
                )
    if len({r["rows"] for results in runs.values() for r in results}) != 1:
        raise RuntimeError(f"the formats disagree on the rows: {runs}")
    rows = []
    for fmt, results in runs.items():
        seconds = median([r["seconds"] for r in results])
        rows.append(
            {
                "format": fmt,
                "size_mib": size_mib,
                "seconds": seconds,
                "mib_per_s": size_mib / seconds,
                "cpu_seconds": median([r["cpu_seconds"] for r in results]),
                "rss_growth_mib": median([r["rss_peak"] - r["rss_base"] for r in results]) / MiB,
                "file_mib": median([r["file_bytes"] for r in results]) / MiB,
                "rows": results[0]["rows"],
                "runs": [r["seconds"] for r in results],
            }
        )
    return rows
