"""Our fan-out: ``SEIMultiTeamReportOperator.execute`` over an org tree, in a fresh process."""

from __future__ import annotations

import argparse
import time

from bench.common import peak_rss_bytes, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="a local folder")
    parser.add_argument("--files", action="store_true", help="one file per team")
    parser.add_argument("--merged", action="store_true", help="one merged CSV")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--rpm", type=float, default=0, help="requests_per_minute; 0 = none")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    from airflow_provider_sei import ratelimit
    from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator

    limiters: list[ratelimit.RateLimiter] = []
    real = ratelimit.RateLimiter

    def keep(*a: object, **k: object) -> ratelimit.RateLimiter:  # to read its counters after
        limiters.append(real(*a, **k))  # type: ignore[arg-type]
        return limiters[-1]

    ratelimit.RateLimiter = keep  # type: ignore[misc,assignment]
    operator = SEIMultiTeamReportOperator(
        task_id="bench",
        org_tree_id=1,
        date_start="2024-01-01",
        date_end="2024-01-07",
        destination=f"file://{args.out}/teams/" if args.files else None,
        merged_destination=f"file://{args.out}/merged.csv" if args.merged else None,
        max_concurrency=args.concurrency,
        requests_per_minute=args.rpm or None,
    )
    rss_import = peak_rss_bytes()
    started = time.perf_counter()
    summary = operator.execute({})
    seconds = time.perf_counter() - started
    summary.pop("columns", None)
    write_result(
        args.result,
        {
            "seconds": seconds,
            "summary": summary,
            "rss_import": rss_import,
            "rss_peak": peak_rss_bytes(),
            "throttled": limiters[0].throttled if limiters else 0,
            "limiter_waited": limiters[0].waited if limiters else 0.0,
        },
    )


if __name__ == "__main__":
    main()
