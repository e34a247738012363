"""Our fan-out: ``SEIMultiTeamReportOperator.execute`` over an org tree, in a fresh process.

``--limiter`` swaps the hook's rate limiter for a maintained library's (see
:mod:`bench.limiters`), or applies a prototype to the provider's own (``ours+NAME``).
"""

from __future__ import annotations

import argparse

from bench.common import Clock, peak_rss_bytes, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="a local folder")
    parser.add_argument("--files", action="store_true", help="one file per team")
    parser.add_argument("--merged", action="store_true", help="one merged CSV")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--rpm", type=float, default=0, help="requests_per_minute; 0 = none")
    parser.add_argument(
        "--limiter", default="ours", help="ours, ours+PROTOTYPE or a library (bench.limiters)"
    )
    parser.add_argument("--max-failed", type=int, default=0, help="max_failed_teams")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    from bench import prototypes

    for name in args.limiter.split("+")[1:]:
        prototypes.apply(name)

    from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator

    operator = SEIMultiTeamReportOperator(
        task_id="bench",
        org_tree_id=1,
        date_start="2024-01-01",
        date_end="2024-01-07",
        destination=f"file://{args.out}/teams/" if args.files else None,
        merged_destination=f"file://{args.out}/merged.csv" if args.merged else None,
        max_concurrency=args.concurrency,
        requests_per_minute=args.rpm or None,
        max_failed_teams=args.max_failed,
    )
    from bench.limiters import SendLog, install

    if not args.limiter.startswith("ours"):
        install(operator, args.limiter, args.rpm)
    sends = SendLog()
    rss_import = peak_rss_bytes()
    clock = Clock()
    summary = operator.execute({})
    elapsed = clock.elapsed()
    summary.pop("columns", None)
    limiter = operator.hook.rate_limiter
    write_result(
        args.result,
        {
            **elapsed,
            "summary": summary,
            "rss_import": rss_import,
            "rss_peak": peak_rss_bytes(),
            "throttled": getattr(limiter, "throttled", 0),
            "limiter_waited": getattr(limiter, "waited", 0.0),
            "sends": sends.summary(),
        },
    )


if __name__ == "__main__":
    main()
