"""Our export: ``SEITeamReportOperator.execute`` with a real connection, in a fresh process.

First a warm-up export of an empty report (a range without activity: 0 bytes), which pays
the one-time costs of a task's first export -- the connection lookup, the lazy imports of
the hook and ``requests``, and ``ObjectStoragePath`` registering every provider's filesystem
(s3fs and botocore included). Then the measured export, right after
:func:`bench.common.prefault` when ``--prefault`` is given. Reported: ``fixed_seconds`` (the
warm-up), ``seconds``, ``cpu_seconds`` and ``page_faults`` (the export: wall, user + system
time of every thread, minor faults), and the peak RSS after the module imports, after the
warm-up and at the end.

``--patch NAME`` applies a prototype from :mod:`bench.prototypes` first (a proposed change
to a module, measured before it is made); ``--profile`` writes a cProfile of the export.
"""

from __future__ import annotations

import argparse
import os

from bench.common import Clock, peak_rss_bytes, prefault, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--profile", help="write a cProfile of execute() here")
    parser.add_argument("--patch", action="append", default=[], help="a bench.prototypes name")
    parser.add_argument("--output-format", default="csv", help="csv, csv.gz or parquet")
    parser.add_argument("--prefault", type=int, default=0, help="bytes (see common.prefault)")
    args = parser.parse_args()

    from bench import prototypes

    for name in args.patch:
        prototypes.apply(name)

    from airflow_provider_sei.operators.reports import SEITeamReportOperator

    def operator(start: str, end: str, out: str) -> SEITeamReportOperator:
        return SEITeamReportOperator(
            task_id="bench",
            collection_id="1",
            date_start=start,
            date_end=end,
            destination=f"file://{out}",
            output_format=args.output_format,
        )

    rss_import = peak_rss_bytes()
    warm_up = Clock()
    # No activity then: an empty report, written beside the measured file, so that the
    # measured export creates its file as curl does (replacing one costs ext4 a flush).
    warmup = f"{args.out}.warmup"
    operator("2020-01-01", "2020-01-07", warmup).execute({})
    os.unlink(warmup)
    fixed = warm_up.elapsed()["seconds"]
    baseline = peak_rss_bytes()
    export = operator("2024-01-01", "2024-01-31", args.out)
    if args.prefault:
        prefault(os.path.dirname(args.out), args.prefault)
    clock = Clock()
    if args.profile:
        import cProfile

        namespace = {"export": export}
        cProfile.runctx("summary = export.execute({})", globals(), namespace, args.profile)
        summary = namespace["summary"]
    else:
        summary = export.execute({})
    write_result(
        args.result,
        {
            **clock.elapsed(),
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
