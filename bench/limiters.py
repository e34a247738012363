"""The rate-limiter decision: the provider's limiter against maintained libraries, measured.

Issue 9 asks for a maintained limiter library if one fits. This runs the fan-out benchmark
(500 teams at 100 ms, 8 threads, per-team files and a merged CSV) against the emulator
limiting to 400 requests per sliding minute, as Harness does, with each limiter in turn:

* ``ours``: :class:`~airflow_provider_sei.hooks.ratelimit.RateLimiter` (evenly spaced sends,
  halves its rate on a 429);
* ``pyrate-limiter``: a ``Limiter(Rate(budget, Duration.MINUTE))`` behind the hook's limiter
  interface (what a user of ``SEIHook(rate_limiter=...)`` would write);
* ``requests-ratelimiter``: its ``LimiterMixin`` around the hook's transport adapter (what
  its documentation suggests for a custom adapter), which also fills its bucket on a 429;
* ``ours+window-limiter``: the proposed replacement of ours, a sliding window with the same
  feedback on 429s (:class:`bench.prototypes.WindowRateLimiter`).

Each at two budgets: the limit itself (400/min), and above it (500/min: another job sharing
the key, or a limit lower than documented), where 429s happen and what the limiter does
about them decides whether teams fail. Measured per run: wall time, requests sent, 429s,
failed teams, and the most requests the client sent in any 60-second window.

The libraries are not dependencies: install them anywhere outside the project and point
``--libs`` at it, e.g.::

    .venv/bin/uv pip install --target /tmp/sei-limiters requests-ratelimiter pyrate-limiter
    .venv/bin/python -m bench.limiters --libs /tmp/sei-limiters

Results go to ``bench/limiters.json`` (kept in git: ``make bench`` renders them into
``docs/benchmarks.md`` without re-running them). About 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import threading
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "limiters.json"
LIMITERS = ("ours", "pyrate-limiter", "requests-ratelimiter", "ours+window-limiter")


# -- inside the fan-out child ---------------------------------------------------------------------


class PyrateRateLimiter:
    """``pyrate-limiter`` behind the interface the hook's transport calls.

    pyrate-limiter keeps a log of the last minute's grants and lets a request through while
    fewer than ``rate`` are in it: the first ``rate`` requests go at once (a burst), later ones
    when the oldest grant leaves the window. It has no notion of a 429.
    """

    def __init__(self, requests_per_minute: float) -> None:
        from pyrate_limiter import Duration, Limiter, Rate

        self._limiter = Limiter(Rate(int(requests_per_minute), Duration.MINUTE))
        self.throttled = 0
        self.waited = 0.0
        self._lock = threading.Lock()

    def acquire(
        self, cancel: threading.Event | None = None, max_wait: float | None = None
    ) -> float:
        started = time.monotonic()
        timeout = -1 if max_wait is None else max_wait  # cancel: pyrate's sleep cannot be woken
        if not self._limiter.try_acquire("sei", blocking=True, timeout=timeout):
            raise TimeoutError(f"no request slot within {max_wait} s")
        with self._lock:
            self.waited += time.monotonic() - started
        return time.monotonic()

    def reserve(self, max_wait: float | None = None) -> tuple[float, float]:
        raise NotImplementedError("pyrate-limiter cannot reserve a slot without waiting")

    def on_throttled(self, retry_after: float | None = None) -> None:
        with self._lock:
            self.throttled += 1

    def on_success(self) -> None:
        pass


def install(operator: Any, name: str, requests_per_minute: float) -> None:
    """Give ``operator`` a hook whose requests pay the library limiter ``name``."""
    from airflow_provider_sei.hooks.sei import SEIHook
    from airflow_provider_sei.hooks.transport import SEIAdapter

    concurrency = int(operator.max_concurrency)
    if name == "pyrate-limiter":
        hook = SEIHook(
            operator.harness_sei_conn_id,
            pool_maxsize=concurrency,
            rate_limiter=PyrateRateLimiter(requests_per_minute),  # type: ignore[arg-type]
        )
    elif name == "requests-ratelimiter":
        hook = SEIHook(operator.harness_sei_conn_id, pool_maxsize=concurrency)
        adapter = _limited(SEIAdapter(pool_maxsize=concurrency), requests_per_minute)
        hook.get_conn().mount("http://", adapter)
        hook.get_conn().mount("https://", adapter)
    else:
        raise SystemExit(f"unknown limiter {name!r}: one of {LIMITERS}")
    operator.__dict__["hook"] = hook  # the operator's cached_property


def _limited(inner: Any, requests_per_minute: float) -> Any:
    """``inner`` (the hook's adapter) behind requests-ratelimiter's ``LimiterMixin``.

    Wrapped, not mixed in: ``LimiterMixin`` and ``SEIAdapter`` both keep their limiter in an
    attribute named ``limiter``, so mixing one into the other breaks both.
    """
    from requests.adapters import HTTPAdapter
    from requests_ratelimiter import LimiterMixin

    class Delegate(HTTPAdapter):
        def __init__(self, inner: Any, **kwargs: Any) -> None:
            self.inner = inner
            super().__init__(**kwargs)

        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return self.inner.send(request, **kwargs)

        def close(self) -> None:
            self.inner.close()
            super().close()

    class LimitedAdapter(LimiterMixin, Delegate):  # type: ignore[misc]
        pass

    return LimitedAdapter(per_minute=requests_per_minute, inner=inner)


class SendLog:
    """Records the time and status of every response the hook's transport gets."""

    def __init__(self) -> None:
        from airflow_provider_sei.hooks.transport import SEIAdapter

        self.sends: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        send = SEIAdapter.send

        def logged(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = send(adapter, request, *args, **kwargs)
            with self._lock:
                self.sends.append((time.monotonic(), response.status_code))
            return response

        SEIAdapter.send = logged  # type: ignore[method-assign]

    def summary(self) -> dict[str, Any]:
        """Requests, 429s, and the most requests in any 60-second window."""
        times = sorted(t for t, _ in self.sends)
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= 60:
                start += 1
            most = max(most, end - start + 1)
        return {
            "requests": len(self.sends),
            "status_429": sum(1 for _, status in self.sends if status == 429),
            "most_in_60_s": most,
        }


# -- the runs -------------------------------------------------------------------------------------


def measure(
    libs: str | None, teams: int, latency_ms: int, limit: int, budgets: list[int], log: Any = print
) -> list[dict[str, Any]]:
    """Run every limiter at every budget against an emulator limiting to ``limit`` per minute."""
    from bench.common import emulator
    from bench.fanout import run_fanout

    rows = []
    args = ("--teams", str(teams), "--latency-ms", str(latency_ms))
    for budget in budgets:
        for name in LIMITERS:
            # A fresh emulator per run: its sliding window starts empty.
            with emulator(*args, "--rate-limit-per-minute", str(limit)) as emu:
                result = run_fanout(
                    emu.base_url,
                    concurrency=8,
                    files=True,
                    merged=True,
                    rpm=budget,
                    limiter=name,
                    pythonpath=libs,
                    max_failed=teams,  # a team that fails is counted, not the end of the run
                )
            floor = _floor(teams + 1, limit)
            summary = result["summary"]
            row = {
                "limiter": name,
                "budget": budget,
                "limit": limit,
                "teams": teams,
                "seconds": result["seconds"],
                "cpu_seconds": result["cpu_seconds"],
                "floor": floor,
                "even_floor": (teams + 1) / limit * 60,
                "failed": len(summary["failed"]),
                **result["sends"],
                "waited": result["limiter_waited"],
            }
            rows.append(row)
            log(
                f"  {name} at {budget}/min: {row['seconds']:.1f} s, {row['requests']} requests, "
                f"{row['status_429']} 429s, {row['failed']} failed, at most "
                f"{row['most_in_60_s']} in 60 s"
            )
    return rows


def _floor(requests: int, limit: int) -> float:
    """The least time ``requests`` can take under ``limit`` per sliding minute: whole windows
    of ``limit`` requests, the last one starting after ``60 x (windows - 1)`` seconds."""
    return 60.0 * (math.ceil(requests / limit) - 1)


def versions(libs: str | None) -> dict[str, str]:
    """The versions of the libraries measured."""
    found = {}
    paths = [libs] if libs else None
    for name in ("pyrate-limiter", "requests-ratelimiter"):
        dist = next(iter(metadata.distributions(name=name, path=paths or sys.path)), None)
        found[name] = dist.version if dist else "missing"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libs", help="a folder holding pyrate-limiter and requests-ratelimiter")
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--limit", type=int, default=400, help="the emulator's, per minute")
    parser.add_argument("--budgets", default="400,500", help="the limiters', per minute")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench.common import machine

    found = versions(args.libs)
    if "missing" in found.values():
        raise SystemExit(f"install the libraries first (see --help): {found}")
    started = time.perf_counter()
    rows = measure(
        args.libs,
        args.teams,
        args.latency_ms,
        args.limit,
        [int(b) for b in args.budgets.split(",")],
    )
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "python": platform.python_version(),
        "versions": found,
        "load_average": os.getloadavg()[0],
        "minutes": (time.perf_counter() - started) / 60,
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
