"""Run the hardening suite and write its measured figures into ``docs/reliability.md``.

    .venv/bin/python scripts/reliability_table.py            # run the suite, then write
    .venv/bin/python scripts/reliability_table.py --from F   # write from a saved results file

The suite (``tests/integration/reliability``) records each fault-matrix row, time bound,
drip, streaming, memory and CPU measurement, write, file name, validation case, fail-fast
condition, bad input and secret scan when ``SEI_RELIABILITY_RESULTS`` names a file. This
script renders them as Markdown between the ``<!-- BEGIN name -->`` / ``<!-- END name -->``
markers of the doc, leaving the prose around them alone. Two tables come from the code
itself, not from a run: the fail-fast policy (``RetryPolicy.is_retryable``, the operators'
``fail_fast`` and the messages ``hooks/errors.py`` builds) and the forms the redactor removes
(``hooks/redact.py``). It refuses to write when a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
SUITE = "tests/integration/reliability"
RESULTS_ENV = "SEI_RELIABILITY_RESULTS"
#: A made-up key, to show what each redacted form of a key looks like.
EXAMPLE_KEY = "pat.AbCdAcct.TokId01.s3cr+t/Val=ue"


def run_suite(results: Path) -> None:
    env = {**os.environ, RESULTS_ENV: str(results)}
    cmd = [sys.executable, "-m", "pytest", SUITE, "-q", "-p", "no:randomly"]
    completed = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(f"{SUITE} failed (exit {completed.returncode}): the doc is not written")


# -- cells and tables --------------------------------------------------------------------------


def clean(text: Any, limit: int = 140) -> str:
    """One table cell: ports and temporary paths normalised, pipes escaped, shortened."""
    text = str(text)
    text = re.sub(r" from http://127\.0\.0\.1:\d+\S*:", ":", text)  # the server's URL
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s'\"]+", "<tmp>", text)
    text = re.sub(r"sei-[0-9a-f]{12}\b", "<bucket>", text)
    text = re.sub(r"\s+", " ", text).replace("|", "\\|").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: list[str], rows: list[list[Any]], limit: int = 140) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(clean(cell, limit) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def waits(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "-"


def _error(text: str) -> str:
    return text or "-"


# -- measured tables ---------------------------------------------------------------------------


def render_faults(rows: list[dict[str, Any]]) -> str:
    body = [
        [f"`{r['id']}`", r["group"], r["note"], "yes" if r["retried"] else "no", r["state"],
         r["requests"], f"{r['seconds']:.2f}", waits(r["waits"]),
         f"{r['store']}: {r['destination']}", len(r["leftovers"]), _error(r["error"])]
        for r in rows
    ]  # fmt: skip
    return table(
        ["test id", "fault", "scenario", "retried", "task state", "requests", "time (s)",
         "retry waits logged (s)", "destination", "temp files left", "error raised"],
        body,
    )  # fmt: skip


def render_bounds(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["case"], r["requests"], waits(r["waits"]), f"{sum(r['waits']):.2f}",
         f"{r['seconds']:.2f}", f"{r['bound']:.1f}"]
        for r in rows
    ]  # fmt: skip
    return table(
        ["case", "requests", "waits logged (s)", "sum of waits (s)", "export time (s)",
         "bound: max_elapsed + timeout (s)"],
        body,
    )  # fmt: skip


def render_drips(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["case"], r["store"], f"{r['max_elapsed']:g}", f"{r['timeout']:g}",
         f"{r['seconds']:.3f}", f"{r['bound']:g}", f"{r['try_seconds']:.3f}", r["requests"],
         r["state"], r["error"]]
        for r in rows
    ]  # fmt: skip
    return table(
        ["drip", "destination", "max_elapsed (s)", "timeout (s)",
         "from the first request to the task's end (s)", "bound (s)", "whole try (s)",
         "requests", "task state", "error raised"],
        body,
        110,
    )  # fmt: skip


def render_streaming(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["case"], r["store"], r["state"], r["requests"], f"{r['seconds']:.2f}", r["error"]]
        for r in rows
    ]
    return table(
        ["body", "destination", "task state", "requests", "time (s)", "error raised"], body
    )


def render_memory(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["case"], r["state"], r["requests"], f"{r['rss_growth_mib']:.1f}",
         "VmHWM" if r["exact"] else "sampled", f"{r['seconds']:.2f}", r["error"]]
        for r in rows
    ]  # fmt: skip
    return table(
        ["body", "task state", "requests", "peak RSS growth (MiB)", "measured by", "time (s)",
         "error raised"],
        body,
        120,
    )  # fmt: skip


def render_cpu(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["case"], f"{r['body_bytes']:,}", r["state"], f"{r['cpu_seconds']:.3f}",
         _error(r["error"])]
        for r in rows
    ]  # fmt: skip
    return table(["body", "decoded bytes", "task state", "task CPU (s)", "error raised"], body)


def render_writing(rows: list[dict[str, Any]]) -> str:
    body = [[r["case"], r["store"], r["left_by_kill"], r["state"], r["after_next_run"]]
            for r in rows]  # fmt: skip
    return table(
        ["case", "destination", "left by the SIGKILL", "next run", "the folder / bucket after"],
        body,
        240,
    )


def render_filenames(rows: list[dict[str, Any]]) -> str:
    body = [
        [f"`{r['case']}`", f"`{r['server_name']}`", r["state"], f"`{r['written']}`",
         r["xcom_filename"] or "None (the provider's name)"]
        for r in rows
    ]  # fmt: skip
    return table(["case", "server's file name", "task state", "file written", "XCom filename"],
                 body)  # fmt: skip


def render_validation(rows: list[dict[str, Any]]) -> str:
    body = [[f"`{r['case']}`", r["state"], r["requests"], _error(r["error"])] for r in rows]
    return table(["test id", "task state", "requests", "error raised"], body)


def render_not_a_report(rows: list[dict[str, Any]]) -> str:
    body = [
        [f"`{r['case']}`", r["content_type"], r["store"], r["state"], r["tries"], r["requests"],
         r["error"]]
        for r in rows
    ]  # fmt: skip
    return table(
        ["200 body", "Content-Type", "destination", "task state", "tries", "requests",
         "error raised"],
        body,
        320,
    )  # fmt: skip


def render_fail_fast(rows: list[dict[str, Any]]) -> str:
    body = [
        [r["condition"], "no" if r["tries"] == 1 else "yes", r["tries"], r["requests"],
         r["error"]]
        for r in rows
    ]  # fmt: skip
    return table(
        ["condition", "task retried", "tries (retries=2)", "requests", "error raised"],
        body,
        260,
    )


def render_bad_input(rows: list[dict[str, Any]]) -> str:
    body = [
        [f"`{r['id']}`", r["kind"], r["operator"].replace("Operator", ""), r["field"],
         clean(r["error"], 160)]
        for r in rows
    ]  # fmt: skip
    return table(["test id", "kind", "operator", "field named", "message (requests sent: 0)"], body)


def render_secrets(rows: list[dict[str, Any]]) -> str:
    sinks = sorted({sink for r in rows for sink in r["sinks"]})
    body = [
        [f"`{r['path']}`", r["state"], len(r["sinks"]), ", ".join(r["leaks"]) or "none"]
        for r in rows
    ]
    listing = "\n".join(f"- {sink}" for sink in sinks)
    return table(["path", "task state", "places scanned", "leaks found"], body) + (
        f"\n\nPlaces scanned on every path:\n\n{listing}"
    )


def render_redaction(rows: list[dict[str, Any]]) -> str:
    sinks = sorted({sink for r in rows for sink in r["sinks"]})
    body = [
        [f"`{r['case']}`", r["form"], r["state"], r["tries"], r["requests"], len(r["sinks"]),
         ", ".join(r["leaks"]) or "none", r["error"]]
        for r in rows
    ]  # fmt: skip
    listing = "\n".join(f"- {sink}" for sink in sinks)
    return table(
        ["case", "what the server (or the connection) holds", "task state", "tries",
         "requests", "places scanned", "leaks found", "error raised"],
        body,
        320,
    ) + f"\n\nPlaces scanned in every case, for every form of the key:\n\n{listing}"  # fmt: skip


# -- tables generated from the code --------------------------------------------------------------


def _provider() -> None:
    """Make the provider importable without touching ``~/airflow``."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sei-reliability-table-"))
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    sys.path.insert(0, str(ROOT))


def _task_outcome(error: BaseException) -> tuple[bool, str]:
    """Whether a task retry follows ``error`` (the operators' ``fail_fast``), and its text."""
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_sei.operators._base import fail_fast

    try:
        with fail_fast():
            raise error
    except AirflowFailException as raised:
        return False, str(raised)
    except BaseException as raised:
        return True, str(raised)
    raise AssertionError("fail_fast swallowed an error")


def policy_rows() -> list[list[Any]]:
    """One row per status or condition: what the hook and the task do, and the message."""
    _provider()
    import requests
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    from airflow_provider_sei.exceptions import (
        SEIDestinationError,
        SEIExportJobError,
        SEIIncompleteReadError,
        SEIInvalidRequestError,
        SEIResponseError,
        SEITimeoutError,
    )
    from airflow_provider_sei.hooks.errors import status_error, unreachable
    from airflow_provider_sei.hooks.redact import Redactor
    from airflow_provider_sei.hooks.retry import RETRY_STATUSES, RetryPolicy

    policy = RetryPolicy()
    url = "https://app.harness.io/gateway/sei/api/v2/insights/teams/reports?format=csv"
    host, timeout = "app.harness.io", (10.0, 300.0)
    conditions: list[tuple[str, BaseException]] = []
    for status in sorted({400, 401, 403, 404, 405, 409, 413, 422, 501, 505} | RETRY_STATUSES):
        body = json.dumps({"status": "error", "message": "<the server's message>"}).encode()
        conditions.append((f"HTTP {status}", status_error(status, "", {}, url, body, Redactor(),
                                                          "reports")))  # fmt: skip
    conditions += [
        ("HTTP 302 (any 3xx: redirects are not followed)",
         status_error(302, "Found", {"Location": "https://sso.example/login"}, url, b"",
                      Redactor(), "reports")),
        ("connection refused or reset", unreachable(requests.ConnectionError(), host, timeout,
                                                    False)),
        ("connect timeout", unreachable(requests.ConnectTimeout(), host, timeout, False)),
        ("read timeout", unreachable(requests.ReadTimeout(), host, timeout, False)),
        ("TLS failure, https:// assumed (no scheme given)",
         unreachable(requests.exceptions.SSLError(), host, timeout, True)),
        ("TLS failure, scheme given", unreachable(requests.exceptions.SSLError(), host, timeout,
                                                  False)),
        ("body cut short (Content-Length, chunks, gzip end)",
         SEIIncompleteReadError(2048, 1024, "the gzip stream has no end")),
        ("max_elapsed passed", SEITimeoutError("download to s3://b/k.csv exceeded its time bound "
                                               "(max_elapsed=1800 s)")),
        ("200 that is no report, or whose end cannot be proven",
         SEIResponseError("The response is not a report: ...")),
        ("invalid parameter or connection setting",
         SEIInvalidRequestError("team_ref_id", "²", "a non-negative integer id of at most 18 "
                                "digits")),
        ("unknown harness_sei_conn_id",
         AirflowNotFoundException("The conn_id `no_such_sei` isn't defined")),
        ("unknown dest_conn_id, missing bucket, unreachable store",
         SEIDestinationError("Writing s3://b/k.csv with connection 'aws' failed: ...")),
        ("V2 export job FAILED or CANCELLED", SEIExportJobError("e1", "FAILED", "reason")),
    ]  # fmt: skip
    rows = []
    for name, error in conditions:
        hook_retries = policy.is_retryable(error)
        task_retries, message = _task_outcome(error)
        rows.append([name, "yes" if hook_retries else "no", "yes" if task_retries else "no",
                     type(error).__name__, message])  # fmt: skip
    return rows


def render_policy(_: Any) -> str:
    return table(
        ["status or condition", "retried by the hook", "task retries used",
         "raised by the hook", "task error message (example)"],
        policy_rows(),
        400,
    )  # fmt: skip


def render_redaction_forms(_: Any) -> str:
    """The forms ``Redactor`` removes, shown for a made-up key."""
    _provider()
    from urllib.parse import quote, quote_plus

    from airflow_provider_sei.hooks.redact import Redactor, secret_segment

    redactor = Redactor(EXAMPLE_KEY)
    segment = secret_segment(EXAMPLE_KEY) or ""
    named = {
        "the key": EXAMPLE_KEY,
        "the key, `quote(key, safe='')`": quote(EXAMPLE_KEY, safe=""),
        "the key, `quote(key)` (`/` kept)": quote(EXAMPLE_KEY),
        "the key, `quote_plus`": quote_plus(EXAMPLE_KEY),
        "the key, JSON-escaped (`/` as `\\/`)": json.dumps(EXAMPLE_KEY)[1:-1].replace("/", "\\/"),
        "the secret segment alone": segment,
        "the secret segment, `quote(…, safe='')`": quote(segment, safe=""),
        "the secret segment, `quote_plus`": quote_plus(segment),
        "the key split by a line break": EXAMPLE_KEY[:14] + "\n" + EXAMPLE_KEY[14:],
        "the key in another case (`%2f` for `%2F`)": quote(EXAMPLE_KEY, safe="").lower(),
    }
    rows = [[name, f"`{form!r}`"[1:-1] if "\n" in form else f"`{form}`",
             "yes" if redactor(f"<{form}>") == "<***>" else "NO"]
            for name, form in named.items()]  # fmt: skip
    return table(["form", f"example for the made-up key `{EXAMPLE_KEY}`", "removed"], rows)


def render_meta(results: dict[str, Any]) -> str:
    from importlib.metadata import version

    extras = ", ".join(f"`{k}={v}`" for k, v in results["fast_extras"].items())
    names = {"faults": "fault-matrix rows", "bounds": "bound measurements", "drips": "drips",
             "streaming": "streaming cases", "memory": "memory cases", "cpu": "CPU cases",
             "writing": "killed-worker cases", "filenames": "server file names",
             "validation": "response-validation cases", "not_a_report": "200s that are no report",
             "fail_fast": "fail-fast conditions", "bad_input": "bad-input cases",
             "secrets": "secret-scan paths", "redaction": "key-echo cases"}  # fmt: skip
    counts = ", ".join(f"{len(results.get(key, []))} {name}" for key, name in names.items())
    return (
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on Python "
        f"{platform.python_version()}, Airflow {version('apache-airflow')}, "
        f"{platform.system()} {platform.machine()} ({os.cpu_count()} CPUs, shared); one "
        f"`pytest {SUITE}` run.\n"
        f"Connection extras of every run unless a row says otherwise: {extras}.\n"
        f"Rows: {counts}."
    )


RENDERERS: dict[str, Callable[[Any], str]] = {
    "meta": render_meta,
    "faults": render_faults,
    "bounds": render_bounds,
    "drips": render_drips,
    "streaming": render_streaming,
    "memory": render_memory,
    "cpu": render_cpu,
    "writing": render_writing,
    "filenames": render_filenames,
    "validation": render_validation,
    "not_a_report": render_not_a_report,
    "policy": render_policy,
    "fail_fast": render_fail_fast,
    "bad_input": render_bad_input,
    "secrets": render_secrets,
    "redaction_forms": render_redaction_forms,
    "redaction": render_redaction,
}


def _block(content: str) -> Callable[[re.Match[str]], str]:
    """The replacement of one generated block: its markers kept, ``content`` between them."""
    return lambda match: match.group(1) + content + "\n" + match.group(2)


def write_doc(results: dict[str, Any], doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    for name, render in RENDERERS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.DOTALL)
        if not pattern.search(text):
            sys.exit(f"{doc}: no <!-- BEGIN {name} --> ... <!-- END {name} --> block")
        content = render(results) if name == "meta" else render(results.get(name, []))
        text = pattern.sub(_block(content), text)
    doc.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="a saved results JSON file")
    args = parser.parse_args()
    if args.source:
        results = json.loads(args.source.read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.json"
            run_suite(path)
            results = json.loads(path.read_text(encoding="utf-8"))
    write_doc(results)
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
