"""Where the time of a large export goes: the stages of :mod:`bench.client_phases`, per encoding.

One child process per encoding (and per prototype asked for) against one emulator; see
:mod:`bench.client_phases` for the stages.
"""

from __future__ import annotations

from typing import Any

from bench.client_phases import STAGES
from bench.common import PYTHON, ROOT, MiB, child_env, emulator, run_child, sei_connection


def bench_phases(
    size_mib: int,
    repeats: int,
    *,
    encodings: tuple[str, ...] = ("identity", "gzip"),
    prototypes: tuple[str, ...] = (),
    log: Any = print,
) -> list[dict[str, Any]]:
    """The median time and CPU of each stage, per encoding and variant (as is, or patched)."""
    out = ROOT / "bench" / "results" / "phases.csv"
    rows = []
    for encoding in encodings:
        args = ["--report-bytes", str(size_mib * MiB)] + ["--gzip-reports"] * (encoding == "gzip")
        with emulator(*args) as emu:
            env = child_env(AIRFLOW_CONN_HARNESS_SEI_DEFAULT=sei_connection(emu.base_url))
            for variant in ("", *prototypes):
                command = [PYTHON, "-m", "bench.client_phases", "--out", str(out)]
                command += ["--repeats", str(repeats)] + ["--patch", variant] * bool(variant)
                result = run_child(command, env=env)
                for stage in STAGES:
                    measured = result[stage]
                    if measured["bytes"] != size_mib * MiB:
                        raise RuntimeError(f"{stage} moved {measured['bytes']} bytes")
                    rows.append(
                        {
                            "encoding": encoding,
                            "variant": variant or "as is",
                            "stage": stage,
                            "size_mib": size_mib,
                            "seconds": measured["seconds"],
                            "cpu_seconds": measured["cpu_seconds"],
                            "page_faults": measured["page_faults"],
                        }
                    )
                    log(
                        f"  phases {encoding} {variant or 'as is'} {stage}: "
                        f"{measured['seconds']:.2f} s, CPU {measured['cpu_seconds']:.2f} s, "
                        f"{measured['page_faults']:.0f} page faults"
                    )
    return rows
