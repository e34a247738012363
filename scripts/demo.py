"""``make demo``: run every example DAG against a local SEI emulator and show what they wrote.

1. Starts the emulator (``python -m sei_emulator --port 0``) on a free port.
2. Points ``sei_default`` at it through ``AIRFLOW_CONN_SEI_DEFAULT``.
3. Uses a throwaway Airflow home with SQLite in ``.demo-airflow/`` (recreated on each run),
   runs ``airflow db migrate`` once, then ``airflow dags test <dag_id> <date>`` for each DAG
   in ``example_dags/``.
4. Prints every CSV each DAG wrote under ``./out/`` with a short preview.
5. Stops the emulator, also on failure or Ctrl-C; exits non-zero if a DAG failed or wrote
   nothing. Each DAG's full log is kept in ``.demo-airflow/logs/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".demo-airflow"
OUT = REPO / "out"
DAGS = REPO / "example_dags"
BIN = Path(sys.executable).parent
LOGICAL_DATE = "2024-03-04"  # a Monday inside the emulator's synthetic activity (2023-2026)
# The consumer summarises the weekly team report, so it runs after it.
ORDER = [
    "sei_team_weekly",
    "sei_dora_monthly",
    "sei_contributors_weekly",
    "sei_team_fanout",
    "sei_team_report_consumer",
]
PREVIEW_LINES = 4
PREVIEW_WIDTH = 110


def main() -> int:
    shutil.rmtree(HOME, ignore_errors=True)
    (HOME / "logs").mkdir(parents=True)
    OUT.mkdir(exist_ok=True)
    emulator = start_emulator()
    try:
        env = airflow_env(emulator.base_url)
        step("Creating the metadata DB in .demo-airflow/ (airflow db migrate)")
        run_logged([str(BIN / "airflow"), "db", "migrate"], env, HOME / "logs" / "db-migrate.log")
        failures = []
        for dag_id in dag_ids():
            if emulator.process.poll() is not None:
                raise SystemExit(f"The SEI emulator exited (code {emulator.process.returncode})")
            if not run_dag(dag_id, env):
                failures.append(dag_id)
    finally:
        emulator.stop()
    print()
    if failures:
        print(f"FAILED: {', '.join(failures)} (logs in {HOME.relative_to(REPO)}/logs/)")
        return 1
    print(f"All example DAGs ran; their CSVs are under {OUT.relative_to(REPO)}/")
    return 0


class Emulator:
    """The emulator as a child process; ``stop()`` ends it (and only it)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        print(f"Stopped the SEI emulator (pid {self.process.pid})")


def start_emulator() -> Emulator:
    log = open(HOME / "logs" / "emulator.log", "w")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(
        [sys.executable, "-m", "sei_emulator", "--port", "0"],
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


def airflow_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_SEI_DEFAULT=json.dumps(
            {"conn_type": "harness_sei", "host": base_url, "password": "sei-emulator-key"}
        ),
        SEI_EXPORT_BASE=f"file://{OUT}",
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def dag_ids() -> list[str]:
    """Every ``dag_id`` in ``example_dags/``: the known order first, then any new ones."""
    found = set()
    for path in sorted(DAGS.glob("*.py")):
        found.update(re.findall(r'dag_id="([^"]+)"', path.read_text()))
    return [d for d in ORDER if d in found] + sorted(found - set(ORDER))


def run_dag(dag_id: str, env: dict[str, str]) -> bool:
    step(f"airflow dags test {dag_id} {LOGICAL_DATE}")
    before = snapshot()
    log = HOME / "logs" / f"{dag_id}.log"
    started = time.monotonic()
    code = run_logged(
        [str(BIN / "airflow"), "dags", "test", dag_id, LOGICAL_DATE], env, log, check=False
    )
    written = sorted(path for path, stamp in snapshot().items() if before.get(path) != stamp)
    took = time.monotonic() - started
    if code != 0:
        print(f"  FAILED (exit {code}, {took:.0f} s); the end of {log.relative_to(REPO)}:")
        print("    " + "\n    ".join(log.read_text().splitlines()[-15:]))
        return False
    if not written:
        print(f"  FAILED: it succeeded but wrote no CSV under {OUT.relative_to(REPO)}/")
        return False
    print(f"  ok in {took:.0f} s, {len(written)} file(s):")
    for path in written:
        preview(path)
    return True


def snapshot() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in OUT.rglob("*.csv") if p.is_file()}


def preview(path: Path) -> None:
    size = path.stat().st_size
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = [handle.readline().rstrip("\n") for _ in range(PREVIEW_LINES)]
    print(f"  {path.relative_to(REPO)} ({size:,} bytes)")
    for line in filter(None, lines):
        print("    | " + (line if len(line) <= PREVIEW_WIDTH else line[: PREVIEW_WIDTH - 1] + "…"))


def run_logged(cmd: list[str], env: dict[str, str], log: Path, check: bool = True) -> int:
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
