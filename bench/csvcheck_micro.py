"""Micro-benchmark of the streaming CSV check: ``CSVCheck`` against the ``CSVStats`` it replaced.

Builds a report in memory (about 256 MiB by default, in 1 MiB chunks as the hook hands them
over) in three shapes -- plain rows, rows with a quoted name column, and plain rows ending in
CRLF -- and prints the throughput of each check on each (best of ``--repeat`` runs, wall and
CPU time). Then times the hostile header the rewrite is for (a 16 MiB quoted first line full
of newlines) and the memory peak of a 32 MiB feed.

``CSVStats`` is loaded from the git history (the commit before the one that deleted it).

Run: ``python -m bench.csvcheck_micro [--mib 256] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_sei.exceptions import SEIResponseError
from airflow_provider_sei.output.csvcheck import CSVCheck


def _old_counter() -> Any:
    """``CSVStats``, the counter ``CSVCheck`` replaced, from the git history (None without it).

    Measured on the happy path only: it counted rows and compared a block's separator sum,
    without checking quotes, carriage returns or caps.
    """
    path = "airflow_provider_sei/csvstats.py"
    root = Path(__file__).resolve().parent.parent
    try:
        deleted = subprocess.run(
            ["git", "rev-list", "-n", "1", "HEAD", "--", path],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        source = subprocess.run(
            ["git", "show", f"{deleted}^:{path}"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    namespace: dict[str, Any] = {"__name__": "csvstats"}
    exec(compile(source, path, "exec"), namespace)  # our own history
    return namespace["CSVStats"]


CSVStats = _old_counter()

MiB = 1 << 20
HEADER = b"Collection Name,Lead Time,Deployment Frequency,Change Failure Rate,MTTR,Rows,Score\n"


def chunks(mib: int, quoted: bool, crlf: bool = False) -> list[bytes]:
    """``mib`` chunks of about 1 MiB each, of complete report rows."""
    end = b"\r\n" if crlf else b"\n"
    name = b'"Team %d, Platform"' if quoted else b"Team %d Platform"
    row = name + b",%d.%02d,%d.%02d,0.%03d,%d.5,%d,Elite" + end
    out, number = [], 0
    for _ in range(mib):
        rows = []
        size = 0
        while size < MiB - 80:
            n = number
            line = row % (n % 5000, n % 97, n % 100, n % 13, n % 89, n % 1000, n % 48, n % 9999)
            rows.append(line)
            size += len(line)
            number += 1
        out.append(b"".join(rows))
    return out


def run(make: Callable[[], Any], body: list[bytes]) -> tuple[float, float]:
    """Feed the header and ``body`` to a fresh check; return (wall, CPU) seconds."""
    check = make()
    check.feed(HEADER if not body[0].endswith(b"\r\n") else HEADER.replace(b"\n", b"\r\n"))
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in body:
        check.feed(chunk)
    check.finish()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(mib: int, repeat: int) -> None:
    checks: list[tuple[str, Callable[[], Any]]] = [("CSVCheck", CSVCheck)]
    if CSVStats is not None:
        checks.insert(0, ("CSVStats", CSVStats))
    for shape, quoted, crlf in (
        ("plain", False, False),
        ("quoted", True, False),
        ("CRLF", False, True),
    ):
        body = chunks(mib, quoted, crlf)
        size = sum(map(len, body)) / MiB
        best = {name: [float("inf"), float("inf")] for name, _ in checks}
        for round_ in range(repeat):  # interleaved, turn about: a busy moment hurts both alike
            for name, make in checks if round_ % 2 else checks[::-1]:
                wall, cpu = run(make, body)
                best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
        for name, (wall, cpu) in best.items():
            print(
                f"{shape:7s} {name:9s} {size:6.0f} MiB  "
                f"{size / wall:7.0f} MiB/s wall  {size / cpu:7.0f} MiB/s CPU"
            )
        del body


def hostile_header() -> None:
    raw = b'"' + b"\n" * (16 * MiB) + b'",b\n1,2\n'
    for label, size in (("64 KiB chunks", 64 << 10), ("one chunk", len(raw))):
        for cap in (None, 32 * MiB):
            check = CSVCheck() if cap is None else CSVCheck(max_header_bytes=cap)
            started = time.process_time()
            try:
                for start in range(0, len(raw), size):
                    check.feed(raw[start : start + size])
                check.finish()
                verdict = "accepted"
            except SEIResponseError as exc:
                verdict = str(exc)[:70]
            took = (time.process_time() - started) * 1000
            cap_name = "default cap" if cap is None else "32 MiB cap"
            print(f"16 MiB quoted header, {label}, {cap_name}: {took:6.1f} ms CPU -- {verdict}")


def memory() -> None:
    for quoted in (False, True):
        body = chunks(32, quoted)
        check = CSVCheck()
        check.feed(HEADER)
        tracemalloc.start()
        for chunk in body:
            check.feed(chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        check.finish()
        shape = "quoted" if quoted else "plain"
        print(f"tracemalloc peak over a 32 MiB {shape} feed (1 MiB chunks): {peak / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="report size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per check; the best counts")
    args = parser.parse_args()
    throughput(args.mib, args.repeat)
    hostile_header()
    memory()


if __name__ == "__main__":
    main()
