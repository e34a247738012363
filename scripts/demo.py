"""``make demo``: run every example DAG against a local SEI emulator and show what they wrote.

1. Starts the emulator (``python -m sei_emulator --port 0``) on a free port.
2. Points ``harness_sei_default`` at it through ``AIRFLOW_CONN_HARNESS_SEI_DEFAULT``, with the
   ``project_identifier`` and ``org_identifier`` extras every V2 export job needs, and sets
   what the example DAGs read: ``SEI_EXPORT_BASE`` (``./out/``), ``SEI_ORG_TREE_NAME`` (the
   emulator's org tree) and ``SEI_POLL_INTERVAL`` (1 s, so the V2 jobs finish in seconds).
   ``SEI_S3_EXPORT_BASE`` is left unset: the productivity export falls back to ``./out/``.
3. Uses a throwaway Airflow home with SQLite in ``.demo-airflow/`` (recreated on each run),
   runs ``airflow db migrate`` once, then ``airflow dags test <dag_id> <date>`` for each DAG
   in ``example_dags/``. A deferrable task's trigger runs in-process there; the demo checks
   in the log that it did.
4. Previews every file each DAG wrote under ``./out/``: CSV as text, ``csv.gz`` decompressed,
   Parquet as its schema and first rows (pyarrow).
5. Stops the emulator, also on failure or Ctrl-C; prints a summary and exits non-zero if a
   DAG failed, wrote nothing, or (deferrable) never ran its trigger. Each DAG's full log is
   kept in ``.demo-airflow/logs/``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".demo-airflow"
OUT = REPO / "out"
DAGS = REPO / "example_dags"
BIN = Path(sys.executable).parent
API_KEY = "sei-emulator-key"  # the emulator's default key
LOGICAL_DATE = "2024-03-04"  # a Monday inside the emulator's synthetic activity (2023-2026)
# The consumer summarises the weekly team report, so it runs after it.
ORDER = [
    "sei_team_weekly",
    "sei_team_report_consumer",
    "sei_dora_monthly",
    "sei_contributors_weekly",
    "sei_team_fanout",
    "sei_export_dora_org_tree_monthly",
    "sei_export_productivity_weekly",
    "sei_export_sprint_quarterly",
]
PREVIEW_LINES = 4
PREVIEW_WIDTH = 110
#: ``dag.test()`` logs this when it runs a deferred task's trigger in-process.
INLINE_TRIGGER = "[DAG TEST] running trigger in line"


@dataclass
class Outcome:
    """What one ``airflow dags test`` did."""

    dag_id: str
    ok: bool
    seconds: float
    files: list[Path] = field(default_factory=list)
    note: str = ""


def main() -> int:
    """Run the demo; return the exit code."""
    started = time.monotonic()
    shutil.rmtree(HOME, ignore_errors=True)
    (HOME / "logs").mkdir(parents=True)
    OUT.mkdir(exist_ok=True)
    outcomes: list[Outcome] = []
    emulator = start_emulator()
    try:
        env = airflow_env(emulator.base_url, org_tree_name(emulator.base_url))
        step("Creating the metadata DB in .demo-airflow/ (airflow db migrate)")
        run_logged([str(BIN / "airflow"), "db", "migrate"], env, HOME / "logs" / "db-migrate.log")
        for dag_id, path in dag_files().items():
            if emulator.process.poll() is not None:
                raise SystemExit(f"The SEI emulator exited (code {emulator.process.returncode})")
            outcomes.append(run_dag(dag_id, path, env))
    finally:
        emulator.stop()
    print_summary(outcomes, time.monotonic() - started)
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


class Emulator:
    """The emulator as a child process; ``stop()`` ends it (and only it)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    def stop(self) -> None:
        """Terminate the emulator, then kill it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        print(f"Stopped the SEI emulator (pid {self.process.pid})")


def start_emulator() -> Emulator:
    """Start ``python -m sei_emulator --port 0``; return it once it printed its URL."""
    log = open(HOME / "logs" / "emulator.log", "w")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(
        [sys.executable, "-m", "sei_emulator", "--port", "0", "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO,
        start_new_session=True,  # out of reach of signals sent to the demo's process group
    )
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"https?://[\w.\-]+:\d+", line)
        if match:
            step(f"SEI emulator listening on {match.group(0)} (pid {process.pid})")
            return Emulator(process, match.group(0))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"The SEI emulator did not start; see {HOME / 'logs' / 'emulator.log'}")


def org_tree_name(base_url: str) -> str:
    """The name of the emulator's org tree (``GET /v2/org-trees``), for the org-tree export."""
    request = urllib.request.Request(f"{base_url}/v2/org-trees", headers={"x-api-key": API_KEY})
    with urllib.request.urlopen(request, timeout=30) as response:
        trees = json.load(response)
    if isinstance(trees, dict):  # a wrapped listing
        trees = next((v for v in trees.values() if isinstance(v, list)), [])
    if not trees:
        raise SystemExit("The SEI emulator lists no org tree")
    return str(trees[0]["name"])


def airflow_env(base_url: str, tree: str) -> dict[str, str]:
    """The environment of every ``airflow`` command: a throwaway home, the emulator, ``out/``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "SEI_"))
    }
    connection = {
        "conn_type": "harness_sei",
        "host": base_url,
        "password": API_KEY,
        # V2 export jobs send both on every request; the emulator requires them.
        "extra": {"project_identifier": "demo_project", "org_identifier": "demo_org"},
    }
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_HARNESS_SEI_DEFAULT=json.dumps(connection),
        SEI_EXPORT_BASE=f"file://{OUT}",
        SEI_ORG_TREE_NAME=tree,
        SEI_POLL_INTERVAL="1",
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def dag_files() -> dict[str, Path]:
    """Every ``dag_id`` in ``example_dags/`` and its file: the known order first, then new ones."""
    found: dict[str, Path] = {}
    for path in sorted(DAGS.glob("*.py")):
        for dag_id in re.findall(r'dag_id="([^"]+)"', path.read_text()):
            found[dag_id] = path
    ordered = [d for d in ORDER if d in found] + sorted(set(found) - set(ORDER))
    return {dag_id: found[dag_id] for dag_id in ordered}


def run_dag(dag_id: str, path: Path, env: dict[str, str]) -> Outcome:
    """``airflow dags test`` one DAG; check it wrote files (and ran its trigger); preview them."""
    step(f"airflow dags test {dag_id} {LOGICAL_DATE}")
    before = snapshot()
    log = HOME / "logs" / f"{dag_id}.log"
    started = time.monotonic()
    code = run_logged(
        [str(BIN / "airflow"), "dags", "test", dag_id, LOGICAL_DATE], env, log, check=False
    )
    took = time.monotonic() - started
    files = sorted(p for p, stamp in snapshot().items() if before.get(p) != stamp)
    outcome = Outcome(dag_id, ok=False, seconds=took, files=files)
    text = log.read_text(errors="replace")
    if code != 0:
        outcome.note = f"exit {code}"
        print(f"  FAILED (exit {code}, {took:.0f} s); the end of {log.relative_to(REPO)}:")
        print("    " + "\n    ".join(text.splitlines()[-15:]))
        return outcome
    if not files:
        outcome.note = "wrote nothing"
        print(f"  FAILED: it succeeded but wrote no file under {OUT.relative_to(REPO)}/")
        return outcome
    if "deferrable=True" in path.read_text():
        polls = len(re.findall(r"SEI export job \S+: \w+ \[[\w.]*Trigger\]", text))
        if INLINE_TRIGGER not in text:
            outcome.note = "its deferrable task never ran a trigger"
            print(f"  FAILED: no '{INLINE_TRIGGER}' in {log.relative_to(REPO)}")
            return outcome
        outcome.note = f"deferred; the trigger polled {polls}x in-process"
        print(f"  deferred: the trigger ran in-process and polled the job {polls} time(s)")
    outcome.ok = True
    print(f"  ok in {took:.0f} s, {len(files)} file(s):")
    for file in files:
        preview(file)
    return outcome


def snapshot() -> dict[Path, int]:
    """Each output file (temporary files excluded) and its modification time."""
    return {
        p: p.stat().st_mtime_ns
        for p in OUT.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def file_format(path: Path) -> str:
    """``parquet``, ``csv.gz``, ``csv`` or the file's suffix."""
    name = path.name.lower()
    for fmt in ("parquet", "csv.gz", "csv"):
        if name.endswith("." + fmt):
            return fmt
    return path.suffix.lstrip(".") or "?"


def preview(path: Path) -> None:
    """Print the file's name, size and first lines (decompressed; Parquet: schema and rows)."""
    fmt = file_format(path)
    print(f"  {path.relative_to(REPO)} ({path.stat().st_size:,} bytes, {fmt})")
    if fmt == "parquet":
        lines = parquet_lines(path)
    else:
        opener = gzip.open if fmt == "csv.gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            lines = [handle.readline().rstrip("\n") for _ in range(PREVIEW_LINES)]
    for line in filter(None, lines):
        print("    | " + (line if len(line) <= PREVIEW_WIDTH else line[: PREVIEW_WIDTH - 1] + "…"))


def parquet_lines(path: Path) -> list[str]:
    """The Parquet file's row count, schema (one line per column) and first rows."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return ["(install pyarrow, e.g. airflow-provider-sei[parquet], to preview Parquet)"]
    parquet = pq.ParquetFile(path)
    lines = [f"{parquet.metadata.num_rows} rows, {parquet.metadata.num_row_groups} row group(s)"]
    lines += [f"{f.name}: {f.type}" for f in parquet.schema_arrow]
    first = next(parquet.iter_batches(batch_size=PREVIEW_LINES - 1), None)
    if first is not None:
        table = first.to_pylist()
        lines.append(",".join(parquet.schema_arrow.names))
        lines += [",".join("" if v is None else str(v) for v in row.values()) for row in table]
    return lines


def print_summary(outcomes: list[Outcome], seconds: float) -> None:
    """One line per DAG: its result, time, files and formats; then the total."""
    print()
    print(f"{'DAG':<36} {'result':<7} {'time':>6}  {'files':>5}  formats / notes")
    for o in outcomes:
        formats = ", ".join(sorted({file_format(p) for p in o.files})) or "-"
        note = f"; {o.note}" if o.note else ""
        result = "ok" if o.ok else "FAILED"
        print(f"{o.dag_id:<36} {result:<7} {o.seconds:>5.0f}s  {len(o.files):>5}  {formats}{note}")
    failed = [o.dag_id for o in outcomes if not o.ok]
    files = sum(len(o.files) for o in outcomes)
    print()
    if failed or not outcomes:
        logs = HOME.relative_to(REPO) / "logs"
        print(f"FAILED: {', '.join(failed) or 'no DAG ran'} (logs in {logs}/)")
    else:
        print(
            f"All {len(outcomes)} example DAGs ran in {seconds:.0f} s and wrote {files} files "
            f"under {OUT.relative_to(REPO)}/"
        )


def run_logged(cmd: list[str], env: dict[str, str], log: Path, check: bool = True) -> int:
    """Run ``cmd`` with its output in ``log``; return its exit code (or stop when ``check``)."""
    with log.open("w") as handle:
        code = subprocess.run(
            cmd, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
        ).returncode
    if check and code != 0:
        raise SystemExit(f"{' '.join(cmd[-2:])} failed (exit {code}); see {log}")
    return code


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
