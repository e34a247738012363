"""The naive export, as Airflow's HttpToS3Operator does it: ``response.content``, then write."""

from __future__ import annotations

import argparse
import json
import time

import requests

from bench.common import API_KEY, peak_rss_bytes, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    baseline = peak_rss_bytes()
    started = time.perf_counter()
    response = requests.post(
        args.url,
        json=json.loads(args.body),
        headers={"x-api-key": API_KEY, "Accept": "text/csv"},
        timeout=600,
    )
    response.raise_for_status()
    with open(args.out, "wb") as handle:
        handle.write(response.content)
    seconds = time.perf_counter() - started
    write_result(
        args.result,
        {
            "seconds": seconds,
            "bytes": len(response.content),
            "rss_base": baseline,
            "rss_peak": peak_rss_bytes(),
        },
    )


if __name__ == "__main__":
    main()
