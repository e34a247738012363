"""The naive export, as Airflow's HttpToS3Operator does it: ``response.content``, then write.

``requests`` asks for gzip and decodes it, so against ``--gzip-reports`` this is the naive
export of the gzip-encoded report.
"""

from __future__ import annotations

import argparse
import json
import os

import requests

from bench.common import API_KEY, Clock, peak_rss_bytes, prefault, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prefault", type=int, default=0, help="bytes (see common.prefault)")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    baseline = peak_rss_bytes()
    if args.prefault:
        prefault(os.path.dirname(args.out), args.prefault)
    clock = Clock()
    response = requests.post(
        args.url,
        json=json.loads(args.body),
        headers={"x-api-key": API_KEY, "Accept": "text/csv"},
        timeout=600,
    )
    response.raise_for_status()
    with open(args.out, "wb") as handle:
        handle.write(response.content)
    elapsed = clock.elapsed()
    write_result(
        args.result,
        {
            **elapsed,
            "bytes": len(response.content),
            "rss_base": baseline,
            "rss_peak": peak_rss_bytes(),
        },
    )


if __name__ == "__main__":
    main()
