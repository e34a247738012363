"""What every benchmark shares: the machine, the emulator in its own process, child processes."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
API_KEY = "sei-emulator-key"
MiB = 1 << 20


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class Clock:
    """Wall time, CPU time (user + system, every thread) and page faults since it was made."""

    def __init__(self) -> None:
        self._wall, self._usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)

    def elapsed(self) -> dict[str, float]:
        """``seconds`` (wall), ``cpu_seconds`` and ``page_faults`` (minor) so far."""
        now, before = resource.getrusage(resource.RUSAGE_SELF), self._usage
        return {
            "seconds": time.perf_counter() - self._wall,
            "cpu_seconds": now.ru_utime + now.ru_stime - before.ru_utime - before.ru_stime,
            "page_faults": now.ru_minflt - before.ru_minflt,
        }


def prefault(folder: str | Path, size: int) -> None:
    """Write ``size`` bytes to a scratch file in ``folder`` and delete it: recycle memory.

    On a VM whose balloon driver reports free memory to the host (this one: virtio_balloon,
    free page reporting), memory freed for about 2 seconds goes back to the host, and the
    next write into the page cache pays for fresh pages: measured here, 1 GiB written to a
    file takes 0.3 s of system time right after another GiB was written and deleted, 3 s
    two seconds later. A tool started right after the previous run ended (curl) would write
    into recycled memory and one that imports Airflow first (ours) into fresh memory; so
    every measured export is preceded by this, within milliseconds, whatever the tool.
    """
    block = b"\0" * MiB
    path = Path(folder) / f".prefault-{os.getpid()}"
    with open(path, "wb") as handle:
        for _ in range(-(-size // MiB)):
            handle.write(block)
    path.unlink()


def peak_rss_bytes(pid: int | str = "self") -> int:
    """A process's peak RSS so far: ``VmHWM``, the high-water mark of its own memory.

    Not ``ru_maxrss``: on Linux that survives ``exec``, so a child forked from this (large)
    process would report the parent's size as its own peak.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        if pid != "self":
            return 0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) * 1024 if found else 0


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    try:
        mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        memory = f"{mem_kib / (1 << 20):.1f} GiB"
    except (OSError, AttributeError):
        memory = "unknown"
    versions = (
        subprocess.run(
            [
                PYTHON,
                "-c",
                "import airflow, requests, urllib3, fsspec; print(airflow.__version__, "
                "requests.__version__, urllib3.__version__, fsspec.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=child_env(),
        )
        .stdout.strip()
        .splitlines()[-1]
        .split()
    )
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    return {
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "airflow": versions[0],
        "requests / urllib3 / fsspec": " / ".join(versions[1:4]),
        "curl": curl.split("\n", 1)[0].split(" (")[0] if curl else "missing",
    }


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark child: a throwaway Airflow home, no bytecode writes."""
    env = dict(os.environ)
    home = ROOT / "bench" / "results" / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    # Bytecode is cached (outside the venv): a deployed Airflow has its .pyc files, so neither
    # a task nor DAG parsing compiles the sources every time, as they would here without it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPYCACHEPREFIX=str(ROOT / "bench" / "results" / "pycache"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def sei_connection(base_url: str) -> str:
    return json.dumps({"conn_type": "harness_sei", "host": base_url, "password": API_KEY})


@dataclass
class Emulator:
    base_url: str
    process: subprocess.Popen[str]


@contextmanager
def emulator(*args: str) -> Iterator[Emulator]:
    """``python -m sei_emulator --port 0 ARGS`` in its own process."""
    cmd = [PYTHON, "-m", "sei_emulator", "--port", "0", "--log-level", "WARNING"]
    process = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not found:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield Emulator(found.group(1), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a benchmark child that writes its result as JSON to the path given as --result.

    Returns the child's result plus ``process_seconds`` (start to exit, as seen from here).
    """
    result_path = ROOT / "bench" / "results" / f"child-{os.getpid()}-{time.monotonic_ns()}.json"
    started = time.perf_counter()
    process = subprocess.run(
        [*args, "--result", str(result_path)],
        env=env or child_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    seconds = time.perf_counter() - started
    if process.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{args[:3]} failed ({process.returncode}): {process.stderr[-3000:]!r}")
    result = json.loads(result_path.read_text())
    result_path.unlink()
    result.update(process_seconds=seconds)
    return result


def write_result(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result))
