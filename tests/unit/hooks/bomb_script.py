"""Serve decompression bombs to the hook and measure its peak memory (run by test_bombs.py).

``python bomb_script.py FOLDER MODE...`` prints one JSON object: for each mode, the error the
hook raised, the growth of the peak resident set size during the call (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs`` just before), the seconds it took, the requests served and
the bytes the bomb takes on the wire. Nothing big is ever built: the 1 GiB gzip body is one
1 MiB block compressed once (a full flush makes each repetition independent) and repeated;
the 400 MB plain body is a 1 MiB block sent 400 times.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for hostile.py

from hostile import Act, HostileServer, Send, head

MIB = 1 << 20
BLOCK = b"a" * MIB  # one field: no separator, no line end
KEY = "pat.acct.tok.0123456789abcdef"


@dataclass(frozen=True)
class Repeat(Act):
    """Send ``data`` ``times`` times."""

    data: bytes
    times: int

    def play(self, sock: socket.socket, stopping: threading.Event) -> bool:
        for _ in range(self.times):
            if stopping.is_set():
                return False
            sock.sendall(self.data)
        return True


def gzip_of_repeated_block(prefix: bytes, times: int) -> bytes:
    """A valid gzip file of ``prefix`` and ``times`` blocks, built from one compressed block."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    segment = packer.compress(BLOCK) + packer.flush(zlib.Z_FULL_FLUSH)
    assert segment == packer.compress(BLOCK) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()
    crc = zlib.crc32(prefix)
    for _ in range(times):
        crc = zlib.crc32(BLOCK, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (len(prefix) + times * MIB) & 0xFFFFFFFF)
    return header + first + segment * times + end + trailer


def bomb_of(mode: str) -> tuple[list[Act], int]:
    """The reply of ``mode``, and its size on the wire."""
    # A legacy report must name an expected column to be taken for a report at all: the bomb
    # does, then its second field never ends. A V2 download has no such check.
    prefix = b"" if mode == "file" else b"Collection Name,"
    if mode == "plain":
        size = len(prefix) + 400 * MIB
        start = head(200, {"Content-Type": "text/csv", "Content-Length": size})
        return [Send(start + prefix), Repeat(BLOCK, 400)], size
    wire = gzip_of_repeated_block(prefix, 1024)
    headers = (
        {"Content-Type": "text/csv", "Content-Encoding": "gzip"}
        if mode == "encoding"
        else {"Content-Type": "application/gzip"}
    )
    return [Send(head(200, {**headers, "Content-Length": len(wire)}) + wire)], len(wire)


def release_freed_memory() -> None:
    """Give memory freed by earlier calls back to the system, so the baseline is honest."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def main(folder: str, modes: list[str]) -> dict[str, dict]:
    from airflow_provider_sei.hooks.retry import RetryPolicy
    from airflow_provider_sei.hooks.sei import SEIHook
    from airflow_provider_sei.metrics import ExportType
    from airflow_provider_sei.models import ExportJob, TeamReportRequest

    small = [
        Send(
            head(200, {"Content-Type": "text/csv", "Content-Length": 20}) + b"Collection Name,x\n1,"
        )
    ]
    request = TeamReportRequest.build(
        collection_id="1",
        date_start="2024-01-01",
        date_end="2024-01-31",
        productivity_metrics=["PR_VELOCITY_PER_DEV"],
    )
    job = ExportJob("exp_1", ExportType.EFFICIENCY, status="COMPLETED", download_url="/dl")
    outcomes: dict[str, dict] = {}
    with HostileServer() as srv:
        os.environ["AIRFLOW_CONN_BOMB"] = json.dumps(
            {
                "conn_type": "harness_sei",
                "host": srv.url,
                "password": KEY,
                "extra": {"project_identifier": "p", "org_identifier": "o"},
            }
        )
        hook = SEIHook("bomb", retry_policy=RetryPolicy(max_retries=2, backoff_initial=0.01))

        def call(mode: str) -> object:
            destination = os.path.join(folder, mode, "report.csv")
            if mode == "file":
                return hook.download_export(job, destination)
            return hook.download_report(request, destination)

        for mode in modes:
            srv.script(small)
            call(mode)  # warm up: every import and the session, before the baseline
            os.remove(os.path.join(folder, mode, "report.csv"))
            bomb, wire = bomb_of(mode)
            srv.reset()
            srv.script(bomb)
            release_freed_memory()
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # reset the peak resident set size to the current one
            before = rss("VmRSS")
            started = time.monotonic()
            try:
                call(mode)
                outcome: dict = {"error": None}
            except Exception as exc:
                outcome = {"error": type(exc).__name__, "message": str(exc)}
            outcome["seconds"] = time.monotonic() - started
            outcome["growth"] = rss("VmHWM") - before
            outcome["requests"] = srv.hits
            outcome["wire"] = wire
            outcomes[mode] = outcome
    return outcomes


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
