"""Benchmark the output stage: each output format, with and without appended columns.

Run: ``.venv/bin/python bench/output_formats.py [--mib 256] [--sweep]``. Prints a markdown table.
``make bench`` runs the same cases (:func:`measure`) and puts the table in ``docs/benchmarks.md``.

Each case runs in a fresh child process, which streams a generated report-like CSV (a team
name, the catalogue's metrics with two decimals and some empty cells, ratings, dates) in 1 MiB
chunks through ``open_encoder`` into a local temporary file. The input is generated from a
4 MiB pool of rows, so it is never held whole in memory. Reported per case:

* **MiB/s to file**: MiB of input CSV per second of ``write`` + ``close``, into the file.
* **MiB/s encoder only**: the same into a handle that keeps nothing (no disk in the way).
* **output MiB** and the ratio input / output.
* **RSS growth**: the child's peak RSS while encoding minus its RSS just before (Airflow,
  pyarrow and the pool loaded, the encoder warmed up on 64 KiB so that the libraries' code
  is paged in); the kernel's high-water mark, reset before encoding
  (``/proc/self/clear_refs``), or, where that is not allowed, psutil sampled every 2 ms.

``--sweep`` adds the measurements behind the defaults: gzip levels and Parquet codecs.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
CHUNK = MiB
COLUMNS = {"date_start": "2024-01-01", "exported_at": "2024-07-01T06:00:00+00:00",
           "run_id": "scheduled__2024-07-01T06:00:00+00:00"}  # fmt: skip


def report_pool(size: int = 4 * MiB, seed: int = 7) -> tuple[bytes, bytes]:
    """Return a report's header line and about ``size`` bytes of whole rows (``\\n`` ends)."""
    from airflow_provider_sei.metrics import CONTRIBUTOR_METRICS, EFFICIENCY_METRICS

    metrics = [m.column() for m in CONTRIBUTOR_METRICS + EFFICIENCY_METRICS]
    header = ["Collection Name", *metrics, "Lead Time for Changes Rating", "Start_Date"]
    rng = random.Random(seed)
    ratings = ("Elite", "High", "Medium", "Low", "—")
    rows, total, n = [], 0, 0
    while total < size:
        n += 1
        cells = [f"Developer {n:06d} — Team {n % 997:03d}"]
        cells += ["" if rng.random() < 0.05 else f"{rng.uniform(0, 500):.2f}" for _ in metrics]
        cells += [rng.choice(ratings), f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]
        line = (",".join(cells) + "\n").encode()
        rows.append(line)
        total += len(line)
    return (",".join(header) + "\n").encode(), b"".join(rows)


def chunks(total: int, header: bytes, pool: bytes):
    """Yield about ``total`` bytes of CSV in 1 MiB chunks: the header, then the pool's rows
    over and over, ending with a whole row."""
    data, sent, offset = header + pool[: CHUNK - len(header)], 0, CHUNK - len(header)
    while True:
        if sent + len(data) >= total:
            yield data[: data.rfind(b"\n") + 1]
            return
        yield data
        sent += len(data)
        end = offset + CHUNK
        data = pool[offset:end] if end <= len(pool) else pool[offset:] + pool[: end - len(pool)]
        offset = end % len(pool) if end > len(pool) else end


class PeakRSS:
    """The peak RSS while a block runs, above the RSS at its start."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = self.start = 0
        self.method = "VmHWM"

    def __enter__(self) -> PeakRSS:
        self.start = self._process.memory_info().rss
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        except OSError:
            self.method = "psutil"
        self.peak = self.start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.method == "VmHWM":
            status = Path("/proc/self/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
            self.peak = max(self.peak, int(hwm.split()[1]) * 1024)


class NullSink:
    """A handle that keeps nothing: the encoder's own speed, without the disk's."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += memoryview(data).nbytes
        return self.size


def make_encoder(args: argparse.Namespace, handle: Any) -> Any:
    """The encoder of the case, as the operator would open it."""
    from airflow_provider_sei.output import formats

    encoder: formats.Encoder
    if args.format == "csv.gz" and args.level is not None:
        encoder = formats.GzipEncoder(handle, level=args.level)
    elif args.format == "parquet" and (args.codec or args.block_mib):
        encoder = formats.ParquetEncoder(
            handle,
            compression=args.codec or formats.PARQUET_COMPRESSION,
            block_size=int(args.block_mib * MiB) if args.block_mib else formats.PARQUET_BLOCK_SIZE,
        )
    else:
        encoder = formats.open_encoder(args.format, handle)
    return formats.AppendColumns(encoder, COLUMNS) if args.columns else encoder


def encode(args: argparse.Namespace, handle: Any, header: bytes, pool: bytes) -> tuple:
    """Stream the input through the case's encoder into ``handle``: (bytes in, seconds)."""
    encoder, fed = make_encoder(args, handle), 0
    start = time.perf_counter()
    for chunk in chunks(args.mib * MiB, header, pool):
        encoder.write(chunk)
        fed += len(chunk)
    encoder.close()
    return fed, time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    """Run one case in this process and print its result as JSON."""
    # Loaded before the baseline: the libraries' own memory is not the encoder's.
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    from airflow_provider_sei.output import formats

    header, pool = report_pool()
    # Warm up on 64 KiB: the libraries' code and thread pools are loaded once per process,
    # whatever the report's size; what is left to measure is what the data costs.
    warm_up = make_encoder(args, io.BytesIO())
    warm_up.write(header + pool[: pool.rfind(b"\n", 0, 64 << 10) + 1])
    warm_up.close()
    gc.collect()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"out{formats.file_suffix(args.format)}"
        with open(path, "wb") as handle, PeakRSS() as rss:  # first: a fresh memory pool
            fed, seconds = encode(args, handle, header, pool)
            handle.flush()
        size = path.stat().st_size
    _, cpu_seconds = encode(args, NullSink(), header, pool)
    print(json.dumps({"in": fed, "seconds": seconds, "cpu_seconds": cpu_seconds, "out": size,
                      "rss": rss.peak - rss.start, "rss_method": rss.method}))  # fmt: skip


def run_case(mib: int, fmt: str, columns: bool, **extra: object) -> dict:
    """Run one case in a fresh process."""
    cmd = [sys.executable, __file__, "--child", "--mib", str(mib), "--format", fmt]
    if columns:
        cmd.append("--columns")
    for key, value in extra.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def row(label: str, columns: bool, result: dict) -> str:
    in_mib, out_mib = result["in"] / MiB, result["out"] / MiB
    return (f"| {label} | {'+3' if columns else '-'} | {in_mib:.0f} | "
            f"{in_mib / result['seconds']:.0f} | {in_mib / result['cpu_seconds']:.0f} | "
            f"{out_mib:.1f} | {in_mib / out_mib:.1f}x | {result['rss'] / MiB:.1f} |")  # fmt: skip


HEADER = [
    "| format | columns | input MiB | MiB/s to file | MiB/s encoder only | output MiB "
    "| ratio | RSS growth MiB |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]
FORMATS = ("csv", "csv.gz", "parquet")


def measure(mib: int, log: Any = print) -> list[dict[str, Any]]:
    """Run every format, without and with appended columns; each case in a fresh process."""
    results = []
    for fmt in FORMATS:
        for columns in (False, True):
            result = {"format": fmt, "columns": columns, **run_case(mib, fmt, columns)}
            results.append(result)
            log(f"  output {fmt}{' +3 columns' if columns else ''}: "
                f"{result['in'] / MiB / result['seconds']:.0f} MiB/s, "
                f"RSS +{result['rss'] / MiB:.1f} MiB")  # fmt: skip
    return results


def table(results: list[dict[str, Any]]) -> list[str]:
    """The results of :func:`measure` as the lines of a Markdown table."""
    return [*HEADER, *(row(r["format"], r["columns"], r) for r in results)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB of CSV input (default 256)")
    parser.add_argument("--sweep", action="store_true", help="also gzip levels, Parquet codecs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--columns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--level", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--codec", help=argparse.SUPPRESS)
    parser.add_argument("--block-mib", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"Input: {args.mib} MiB of generated report CSV, 1 MiB chunks, to a local file.\n")
    print("\n".join(HEADER))
    for fmt in FORMATS:
        for columns in (False, True):
            print(row(fmt, columns, run_case(args.mib, fmt, columns)), flush=True)
    if args.sweep:
        for level in (1, 3, 6, 9):
            print(row(f"csv.gz level {level}", False,
                      run_case(args.mib, "csv.gz", False, level=level)), flush=True)  # fmt: skip
        for codec in ("snappy", "zstd", "lz4", "gzip", "none"):
            print(row(f"parquet {codec}", False,
                      run_case(args.mib, "parquet", False, codec=codec)), flush=True)  # fmt: skip
        for block in (4, 8, 16, 32):
            result = run_case(args.mib, "parquet", False, block_mib=block)
            print(row(f"parquet, {block} MiB blocks", False, result), flush=True)


if __name__ == "__main__":
    main()
