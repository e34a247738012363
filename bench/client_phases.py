"""Where the time of one large export goes: its stages added one at a time, in one process.

Every stage runs on the provider's own parts against the same emulator, over the hook's
session (a kept-alive connection), and costs one request of the whole report:

* ``read``: the body through ``Body.chunks()`` (socket reads, gzip decoding, the end proven),
  dropped;
* ``read + check``: the same, each chunk fed to ``CSVCheck``;
* ``read + write``: each chunk written through the writer's staged local file (its
  write-behind thread, the temporary sibling, ``os.replace``), no check;
* ``write_body``: check and write together, as one attempt does (``transfer.write_body``);
* ``download_report``: the hook's whole call (retry policy, deadline, content-type check,
  progress, logging);
* ``execute``: the operator's (rendering aside: dates, request, lineage facts, XCom summary).

Each stage runs ``--repeats`` times, the stages taking turns; the median is reported, wall
and CPU (user + system, every thread). ``--patch NAME`` applies a prototype first.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from typing import Any

from bench.common import Clock, write_result

STAGES = ("read", "read + check", "read + write", "write_body", "download_report", "execute")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="a local file to write")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patch", action="append", default=[])
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    from bench import prototypes

    for name in args.patch:
        prototypes.apply(name)
    stages = _stages(args.out)
    stages["execute"]()  # warm-up: connection, lazy imports, filesystems
    times: dict[str, list[dict[str, float]]] = {name: [] for name in STAGES}
    for repeat in range(args.repeats):
        order = STAGES[repeat % len(STAGES) :] + STAGES[: repeat % len(STAGES)]
        for name in order:
            clock = Clock()
            size = stages[name]()
            times[name].append({**clock.elapsed(), "bytes": size})
            if os.path.exists(args.out):
                os.unlink(args.out)
    write_result(
        args.result,
        {
            name: {
                key: statistics.median(run[key] for run in runs)
                for key in ("seconds", "cpu_seconds", "page_faults", "bytes")
            }
            for name, runs in times.items()
        },
    )


def _stages(out: str) -> dict[str, Callable[[], int]]:
    from airflow_provider_sei.hooks.sei import SEIHook
    from airflow_provider_sei.hooks.stream import Body
    from airflow_provider_sei.models import TeamReportRequest, header_names
    from airflow_provider_sei.operators.reports import SEITeamReportOperator
    from airflow_provider_sei.output.csvcheck import CSVCheck
    from airflow_provider_sei.output.transfer import OutputOptions, write_body
    from airflow_provider_sei.output.writer import Target

    request = TeamReportRequest.build(
        collection_id="1", date_start="2024-01-01", date_end="2024-01-31"
    )
    hook = SEIHook()
    destination = f"file://{out}"

    def body() -> Body:
        response = hook.get_conn().post(
            f"{hook.base_url}/v2/insights/teams/reports",
            params={"format": "csv"},
            json=request.to_json(),
            headers={"Accept": "text/csv", **hook.settings.auth_headers()},
            stream=True,
            timeout=hook.timeout,
        )
        response.raise_for_status()
        return Body(response, redact=hook.redactor)

    def check() -> CSVCheck:
        return CSVCheck(expect_any=header_names(request), redact=hook.redactor)

    def read(feed: Callable[[bytes], Any] | None = None) -> int:
        source = body()
        try:
            for chunk in source.chunks():
                if feed is not None:
                    feed(chunk)
        finally:
            source.close()
        return source.bytes

    def read_check() -> int:
        checker = check()
        size = read(checker.feed)
        checker.finish()
        return size

    def read_write() -> int:
        staged = Target.resolve(destination).open(Target.resolve(destination).path)
        try:
            size = read(staged.write)
        except BaseException:
            staged.abort()
            raise
        staged.commit()
        return size

    def transfer() -> int:
        source = body()
        try:
            result = write_body(
                source,
                Target.resolve(destination),
                check(),
                OutputOptions(),
                fallback_name=lambda suffix: "report" + suffix,
                server_name=None,
            )
        finally:
            source.close()
        return result.bytes

    def download() -> int:
        return hook.download_report(request, destination).bytes

    def execute() -> int:
        operator = SEITeamReportOperator(
            task_id="bench",
            collection_id="1",
            date_start="2024-01-01",
            date_end="2024-01-31",
            destination=destination,
        )
        return int(operator.execute({})["bytes"])

    return {
        "read": read,
        "read + check": read_check,
        "read + write": read_write,
        "write_body": transfer,
        "download_report": download,
        "execute": execute,
    }


if __name__ == "__main__":
    main()
