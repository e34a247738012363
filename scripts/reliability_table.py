"""Run the hardening suite and write its measured figures into ``docs/reliability.md``.

    .venv/bin/python scripts/reliability_table.py            # run tests/reliability, then write
    .venv/bin/python scripts/reliability_table.py --from F   # write from a saved results file

The suite (``tests/reliability``) records each fault-matrix row, bound, validation case, bad
input and secret-scan path when ``SEI_RELIABILITY_RESULTS`` names a file; this script renders
them as Markdown between the ``<!-- BEGIN name -->`` / ``<!-- END name -->`` markers of the
doc, leaving the prose around them alone. It refuses to write when a test failed.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
RESULTS_ENV = "SEI_RELIABILITY_RESULTS"


def run_suite(results: Path) -> None:
    env = {**os.environ, RESULTS_ENV: str(results)}
    cmd = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:randomly"]
    completed = subprocess.run(cmd, cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(f"tests/reliability failed (exit {completed.returncode}): the doc is not written")


def clean(text: Any, limit: int = 140) -> str:
    """One table cell: ports and temporary paths normalised, pipes escaped, shortened."""
    text = str(text)
    text = re.sub(r" from http://127\.0\.0\.1:\d+\S*:", ":", text)  # the emulator's URL
    text = re.sub(r" from http://127\.0\.0\.1:\d+\S*:", ":", text)  # the emulator's URL
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s'\"]+", "<tmp>", text)
    text = re.sub(r"\s+", " ", text).replace("|", "\\|").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(clean(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def waits(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "-"


def render_faults(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        body.append([
            f"`{r['id']}`", r["group"], r["note"],
            "yes" if r["retried"] else "no", r["state"], r["requests"], f"{r['seconds']:.2f}",
            waits(r["waits"]), f"{r['store']}: {r['destination']}", len(r["leftovers"]),
            r["error"] or "-",
        ])  # fmt: skip
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
         "bound (s)"],
        body,
    )  # fmt: skip


def render_validation(rows: list[dict[str, Any]]) -> str:
    body = [[f"`{r['case']}`", r["state"], r["requests"], r["error"] or "-"] for r in rows]
    return table(["test id", "task state", "requests", "error raised"], body)


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


def render_meta(results: dict[str, Any]) -> str:
    from importlib.metadata import version

    extras = ", ".join(f"`{k}={v}`" for k, v in results["fast_extras"].items())
    counts = {name: len(results.get(name, [])) for name in
              ("faults", "bad_input", "secrets", "validation", "bounds")}  # fmt: skip
    return (
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on Python "
        f"{platform.python_version()}, Airflow {version('apache-airflow')}, "
        f"{platform.system()} {platform.machine()}; one `pytest tests/reliability` run.\n"
        f"Connection extras of every run unless a row says otherwise: {extras}.\n"
        f"Rows: {counts['faults']} fault-matrix rows, {counts['bad_input']} bad-input cases, "
        f"{counts['secrets']} secret-scan paths, {counts['validation']} response-validation "
        f"cases, {counts['bounds']} bound measurements."
    )


RENDERERS = {
    "meta": render_meta,
    "faults": render_faults,
    "bounds": render_bounds,
    "validation": render_validation,
    "bad_input": render_bad_input,
    "secrets": render_secrets,
}


def write_doc(results: dict[str, Any], doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    for name, render in RENDERERS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.DOTALL)
        if not pattern.search(text):
            sys.exit(f"{doc}: no <!-- BEGIN {name} --> ... <!-- END {name} --> block")
        content = render(results) if name == "meta" else render(results.get(name, []))
        text = pattern.sub(lambda m, c=content: m.group(1) + c + "\n" + m.group(2), text)
    doc.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
