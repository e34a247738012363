"""``python -m sei_emulator``: serve the synthetic SEI org until SIGINT/SIGTERM.

Prints ``SEI emulator listening on http://HOST:PORT`` (the real port, also with ``--port 0``)
as one flushed line once it accepts connections; logs one line per request to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sei_emulator.faults import Faults
from sei_emulator.server import DEFAULT_API_KEY, SEIEmulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sei_emulator",
        description="A local Harness SEI reports server over a deterministic synthetic org.",
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
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


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
    )
    emulator = SEIEmulator(
        host=args.host, port=args.port, api_key=args.api_key, seed=args.seed,
        teams=args.teams, latency_ms=args.latency_ms, faults=faults,
        report_bytes=args.report_bytes,
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
