"""``python -m sei_emulator``: serve the synthetic SEI org until SIGINT/SIGTERM.

Prints ``SEI emulator listening on http://HOST:PORT`` (the real port, also with ``--port 0``)
as one flushed line once it accepts connections; logs one line per request to stderr. The
``--v2-*`` flags set :class:`~sei_emulator.V2Settings`, ``--job-faults`` scripts the next
export jobs' faults (:meth:`~sei_emulator.JobFault.parse`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sei_emulator.emulator import DEFAULT_API_KEY, SEIEmulator
from sei_emulator.faults import Faults, JobFault
from sei_emulator.v2_settings import GZIP_MIN_BYTES, REUSE_SECONDS, V2Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sei_emulator",
        description="A local Harness SEI server (legacy reports and V2 export jobs) over a "
        "deterministic synthetic org.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help=f"default {DEFAULT_API_KEY}")
    p.add_argument("--seed", type=int, default=42, help="seed of the org and its activity")
    p.add_argument("--teams", type=int, default=12, help="number of teams (default 12)")
    p.add_argument("--latency-ms", type=int, default=0, help="delay before every response")
    p.add_argument("--error-rate-429", type=float, default=0.0, help="share answered 429")
    p.add_argument("--error-rate-503", type=float, default=0.0, help="share answered 503")
    p.add_argument("--drop-rate", type=float, default=0.0, help="share dropped, no response")
    p.add_argument("--truncate-rate", type=float, default=0.0, help="share with cut bodies")
    p.add_argument("--rate-limit-per-minute", type=int, default=None, help="per API key")
    p.add_argument("--retry-after", type=int, default=None, help="Retry-After on 429s")
    p.add_argument("--report-bytes", type=int, default=None, help="large-report mode size")
    p.add_argument(
        "--gzip-reports",
        action="store_true",
        help="honour Accept-Encoding: gzip on the reports endpoint",
    )
    _v2_arguments(p)
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def _v2_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("V2 export jobs")
    g.add_argument(
        "--v2-complete-after-polls",
        type=int,
        default=2,
        help="polls a job answers before it is done (default 2; -1: by time only)",
    )
    g.add_argument(
        "--v2-complete-after-seconds",
        type=float,
        default=None,
        help="seconds after which a job is done",
    )
    g.add_argument(
        "--v2-reuse-seconds",
        type=float,
        default=REUSE_SECONDS,
        help=f"identical requests reuse a job this long (default {REUSE_SECONDS})",
    )
    g.add_argument(
        "--v2-status-case",
        choices=("upper", "lower"),
        default=None,
        help="status casing (default: per type, as its page documents)",
    )
    g.add_argument(
        "--v2-status-shape",
        choices=("downloadUrl", "download", "download_sized"),
        default=None,
        help="where a status puts the download (default: per type)",
    )
    g.add_argument(
        "--v2-create-shape",
        choices=("status", "no_status", "metadata"),
        default=None,
        help="what a create answer holds (default: per type)",
    )
    g.add_argument(
        "--v2-singular-sprint-url",
        action="store_true",
        help="sprint statuses point at /sprint/, not the documented /sprints/",
    )
    g.add_argument(
        "--v2-compression",
        choices=("auto", "always", "never"),
        default="auto",
        help="when downloads are .csv.gz files (default auto: asked, or large)",
    )
    g.add_argument(
        "--v2-gzip-min-bytes",
        type=int,
        default=GZIP_MIN_BYTES,
        help=f"a CSV this large is large (default {GZIP_MIN_BYTES}; 0: no limit)",
    )
    g.add_argument(
        "--v2-gzip-min-rows", type=int, default=None, help="a CSV with this many rows is large"
    )
    g.add_argument(
        "--v2-gzip-content-type",
        default="application/gzip",
        choices=("application/gzip", "application/x-gzip"),
    )
    g.add_argument(
        "--v2-content-encoding",
        action="store_true",
        help="send downloads with Content-Encoding: gzip to clients that accept it",
    )
    g.add_argument(
        "--v2-no-identifiers",
        action="store_true",
        help="do not require projectIdentifier / orgIdentifier",
    )
    g.add_argument(
        "--job-faults",
        default="",
        help="faults of the next new jobs, in order: comma-separated ok, fail, "
        "cancel, never, cut[:FRACTION]",
    )


def _v2_settings(args: argparse.Namespace) -> V2Settings:
    polls = args.v2_complete_after_polls
    return V2Settings(
        complete_after_polls=None if polls < 0 else polls,
        complete_after_seconds=args.v2_complete_after_seconds,
        reuse_seconds=args.v2_reuse_seconds,
        status_case=args.v2_status_case,
        status_shape=args.v2_status_shape,
        create_shape=args.v2_create_shape,
        plural_sprint_url=not args.v2_singular_sprint_url,
        compression=args.v2_compression,
        gzip_min_bytes=args.v2_gzip_min_bytes or None,
        gzip_min_rows=args.v2_gzip_min_rows,
        gzip_content_type=args.v2_gzip_content_type,
        content_encoding=args.v2_content_encoding,
        require_identifiers=not args.v2_no_identifiers,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(message)s"
    )
    faults = Faults(
        error_rate_429=args.error_rate_429,
        error_rate_503=args.error_rate_503,
        drop_rate=args.drop_rate,
        truncate_rate=args.truncate_rate,
        rate_limit_per_minute=args.rate_limit_per_minute,
        retry_after=args.retry_after,
        jobs=[JobFault.parse(f) for f in args.job_faults.split(",") if f.strip()],
    )
    emulator = SEIEmulator(
        host=args.host, port=args.port, api_key=args.api_key, seed=args.seed,
        teams=args.teams, latency_ms=args.latency_ms, faults=faults,
        report_bytes=args.report_bytes, v2=_v2_settings(args),
        gzip_reports=args.gzip_reports,
    )  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emulator.start()
    print(f"SEI emulator listening on {emulator.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
