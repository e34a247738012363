"""Decompression bombs and endless lines: refused at the header cap, in bounded memory.

The bombs are served and measured in a fresh interpreter (``bomb_script.py``), so that the
peak resident set size it reports belongs to the call alone: Linux's ``clear_refs`` resets
the peak (``VmHWM``) just before the call, so the growth is exact, not sampled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("bomb_script.py")
LIMIT = 64 << 20
MODES = (
    "encoding",  # legacy report: Content-Encoding: gzip, 1 GiB of one field, ~1 MB on the wire
    "file",  # V2 download: a .gz file of the same
    "plain",  # legacy report: 400 MB without a line end, no compression
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every bomb, served and measured in one fresh interpreter (one import of Airflow)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    folder = tmp_path_factory.mktemp("bombs")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), *MODES],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),  # the test session's throwaway AIRFLOW_HOME
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, outcome in results.items():
        outcome["left"] = sorted(p.name for p in (folder / mode).iterdir())
    return results


@pytest.mark.parametrize("mode", MODES)
def test_a_bomb_is_refused_at_the_header_cap_in_bounded_memory(mode, outcomes):
    outcome = outcomes[mode]
    print(mode, json.dumps(outcome))

    assert outcome["error"] == "SEIResponseError", outcome
    assert "max_header_bytes" in outcome["message"]
    assert outcome["growth"] < LIMIT, outcome
    assert outcome["requests"] == 1  # a body no retry can change is not fetched again
    assert outcome["left"] == []  # nothing published, no temporary file left
    assert outcome["seconds"] < 30
    if mode != "plain":
        assert outcome["wire"] < 2 << 20  # the bomb is small on the wire
