"""Parse cost: what importing the three operator modules adds on top of ``import airflow.sdk``.

A DAG file that uses the operators pays this on every parse (in a fresh interpreter, or once
per DAG-processor process). Each run is a fresh interpreter with a warm bytecode cache (as a
deployed Airflow has); ``-X importtime`` then names the heaviest modules the import pulls in.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from bench.common import PYTHON, child_env, median

OPERATOR_MODULES = (
    "airflow_provider_sei.operators.reports",
    "airflow_provider_sei.operators.fanout",
    "airflow_provider_sei.operators.exports",
)

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
{imports}
t2 = time.perf_counter()
added = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
print(json.dumps({{"sdk": t1 - t0, "operators": t2 - t1, "added": added,
                  "modules": len(set(sys.modules) - before)}}))
"""

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def probe(modules: tuple[str, ...] = OPERATOR_MODULES) -> dict[str, Any]:
    code = _PROBE.format(imports="\n".join(f"import {m}" for m in modules))
    out = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, check=True, env=child_env()
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def heaviest(modules: tuple[str, ...] = OPERATOR_MODULES, top: int = 12) -> list[dict[str, Any]]:
    """The modules imported after ``airflow.sdk``, heaviest (cumulative) first, top levels only."""
    code = "import airflow.sdk\n" + "\n".join(f"import {m}" for m in modules)
    stderr = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    ).stderr
    entries = []
    after_sdk = False
    for line in stderr.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        own, cumulative, indent, name = found.groups()
        depth = len(indent) // 2
        if not after_sdk:
            after_sdk = name == "airflow.sdk" and depth == 0
            continue
        entries.append(
            {
                "module": name,
                "depth": depth,
                "self_ms": int(own) / 1000,
                "cumulative_ms": int(cumulative) / 1000,
            }
        )
    # Modules directly pulled in by our code (depth <= 2), by cumulative time.
    shallow = [e for e in entries if e["depth"] <= 2]
    return sorted(shallow, key=lambda e: -e["cumulative_ms"])[:top]


def bench_parse(runs: int, log: Any = print) -> dict[str, Any]:
    probe()  # fill the bytecode cache
    results = [probe() for _ in range(runs)]
    sdk = median([r["sdk"] for r in results])
    operators = median([r["operators"] for r in results])
    log(f"  parse: import airflow.sdk {sdk * 1000:.0f} ms; + operators {operators * 1000:.0f} ms")
    return {
        "runs": runs,
        "sdk_ms": sdk * 1000,
        "operators_ms": operators * 1000,
        "operators_ms_all": [round(r["operators"] * 1000, 1) for r in results],
        "added_packages": results[-1]["added"],
        "added_modules": results[-1]["modules"],
        "heaviest": heaviest(),
        "per_module_ms": {
            m: median([probe((m,))["operators"] for _ in range(max(3, runs // 3))]) * 1000
            for m in OPERATOR_MODULES
        },
    }
