"""``make bench``: streaming, output formats, fan-out and parse cost; writes ``docs/benchmarks.md``.

Everything runs against the emulator (``python -m sei_emulator``) on 127.0.0.1, each exporter
in its own process. The defaults are the issues' benchmarks (about 10 minutes on 2 cores);
``--quick`` is a short smoke run. Raw results go to ``bench/results/results.json``
(git-ignored). The rate-limiter comparison is not re-run here (it needs libraries that are
not dependencies): ``python -m bench.limiters`` stores it in ``bench/limiters.json``, and this
renders it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the ``bench`` package importable

from bench import report  # noqa: E402
from bench.common import machine  # noqa: E402

ALL = "stream,phases,formats,output,fanout,parse,emulator"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    p.add_argument("--only", default=ALL, help=f"benchmarks to run, of {ALL}")
    p.add_argument("--sizes", type=_ints, default=[10, 512, 1024], help="MiB, comma-separated")
    p.add_argument("--encodings", type=_names, default=("identity", "gzip"))
    p.add_argument("--repeats", type=int, default=3, help="runs per size and tool (median)")
    p.add_argument("--naive-max-mib", type=int, default=512, help="larger: no naive run")
    p.add_argument("--prototypes", type=_names, default=(), help="bench.prototypes names")
    p.add_argument("--phases-mib", type=int, default=512)
    p.add_argument("--formats-mib", type=int, default=256, help="our export in each format")
    p.add_argument("--output-mib", type=int, default=256, help="the encoders alone")
    p.add_argument("--teams", type=int, default=500)
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--concurrency", type=_ints, default=[8, 32], help="comma-separated")
    p.add_argument("--rate-limit", type=int, default=400, help="per minute; 0 skips that run")
    p.add_argument("--parse-runs", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat, 100 teams")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument(
        "--render", action="store_true", help="only re-render the document from the last results"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.teams, args.phases_mib = [10, 64], 1, 100, 64
        args.formats_mib, args.output_mib = 32, 16
        args.rate_limit, args.parse_runs, args.concurrency = 0, 5, [8]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw = ROOT / "bench" / "results" / "results.json"
    if args.render:  # after editing bench/explanation.md or bench/report.py
        Path(args.output).write_text(report.render(json.loads(raw.read_text())))
        print(f"Wrote {args.output} from {raw}")
        return 0
    only = set(_names(args.only))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine(),
        "command": "make bench  # " + shlex.join(["bench/run.py", *(argv or sys.argv[1:])]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print("Machine:", results["machine"])
    load = results["load"] = {"start": os.getloadavg()[0]}
    if "stream" in only:
        from bench.stream import bench_stream

        print(f"Streaming {args.sizes} MiB, {args.encodings}, x {args.repeats}")
        results["stream"] = bench_stream(
            args.sizes,
            args.repeats,
            encodings=args.encodings,
            naive_max_mib=args.naive_max_mib,
            prototypes=args.prototypes,
        )
        load["after streaming"] = os.getloadavg()[0]
    if "phases" in only:
        from bench.phases import bench_phases

        print(f"Phases of a {args.phases_mib} MiB export")
        results["phases"] = bench_phases(
            args.phases_mib, args.repeats, encodings=args.encodings, prototypes=args.prototypes
        )
        load["after phases"] = os.getloadavg()[0]
    if "formats" in only:
        from bench.stream import bench_formats

        print(f"Our {args.formats_mib} MiB export in each output format")
        results["formats"] = bench_formats(args.formats_mib, max(1, args.repeats - 1))
        load["after formats"] = os.getloadavg()[0]
    if "output" in only:
        from bench.output_formats import measure as measure_output

        print(f"Output encoders on {args.output_mib} MiB")
        results["output"] = {"mib": args.output_mib, "rows": measure_output(args.output_mib)}
        load["after output"] = os.getloadavg()[0]
    if "fanout" in only:
        from bench.fanout import bench_fanout

        print(f"Fan-out: {args.teams} teams at {args.latency_ms} ms")
        results["fanout"] = bench_fanout(
            args.teams, args.latency_ms, args.concurrency, rate_limit=args.rate_limit or None
        )
        load["after fan-out"] = os.getloadavg()[0]
    if "parse" in only:
        from bench.parse import bench_parse

        print(f"Parse cost x {args.parse_runs}")
        results["parse"] = bench_parse(args.parse_runs)
        load["after parse"] = os.getloadavg()[0]
    if "emulator" in only:
        from bench.bench_emulator import measure

        print("Emulator: 1,000-team yearly report, large reports, 5,000-team contributors")
        results["emulator"] = measure()
        load["after emulator"] = os.getloadavg()[0]
    results["total_seconds"] = time.perf_counter() - started
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=1))
    Path(args.output).write_text(report.render(results))
    print(f"Wrote {args.output} and {raw} in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
