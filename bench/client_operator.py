"""Our export: ``SEITeamReportOperator.execute`` with a real connection, in a fresh process.

First a warm-up export of an empty report (a range without activity: 0 bytes), which pays
the one-time costs of a task's first export -- the connection lookup, the lazy imports of
the hook and ``requests``, and ``ObjectStoragePath`` registering every provider's filesystem
(s3fs and botocore included). Then the measured export. Reported: ``fixed_seconds`` (the
warm-up), ``seconds`` (the export), and the peak RSS after the module imports, after the
warm-up and at the end.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.common import peak_rss_bytes, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--profile", help="write a cProfile of execute() here")
    args = parser.parse_args()

    from airflow_provider_sei.operators.reports import SEITeamReportOperator

    def operator(start: str, end: str, out: str) -> SEITeamReportOperator:
        return SEITeamReportOperator(
            task_id="bench",
            collection_id="1",
            date_start=start,
            date_end=end,
            destination=f"file://{out}",
        )

    rss_import = peak_rss_bytes()
    started = time.perf_counter()
    # No activity then: an empty report, written beside the measured file, so that the
    # measured export creates its file as curl does (replacing one costs ext4 a flush).
    warmup = f"{args.out}.warmup"
    operator("2020-01-01", "2020-01-07", warmup).execute({})
    os.unlink(warmup)
    fixed = time.perf_counter() - started
    baseline = peak_rss_bytes()
    export = operator("2024-01-01", "2024-01-31", args.out)
    started = time.perf_counter()
    if args.profile:
        import cProfile

        cProfile.runctx(
            "summary = export.execute({})", globals(), ns := {"export": export}, args.profile
        )
        summary = ns["summary"]
    else:
        summary = export.execute({})
    seconds = time.perf_counter() - started
    write_result(
        args.result,
        {
            "seconds": seconds,
            "fixed_seconds": fixed,
            "bytes": summary["bytes"],
            "rows": summary["rows"],
            "rss_import": rss_import,
            "rss_base": baseline,
            "rss_peak": peak_rss_bytes(),
        },
    )


if __name__ == "__main__":
    main()
