"""The emulator itself: settings, state, start and stop (the HTTP layer is :mod:`.server`).

A :class:`SEIEmulator` holds the synthetic org, the fault configuration, the recorded
requests, the rate-limit windows and the V2 export jobs (:mod:`.v2_jobs`); everything can be
changed while it runs (``set_faults``, ``set_v2``, ``clock``) and read back (``requests``,
``jobs``, ``pending_script``, ``pending_job_faults``).
"""

from __future__ import annotations

import collections
import hashlib
import random
import threading
import time
from collections.abc import Callable

from sei_emulator.compression import GzipCache
from sei_emulator.faults import Fault, Faults, JobFault
from sei_emulator.org import Org
from sei_emulator.responses import Response, error_response
from sei_emulator.server import AbortRequest, EmulatorHTTPServer, RecordedRequest
from sei_emulator.v2_jobs import JobStore
from sei_emulator.v2_settings import V2Settings

DEFAULT_API_KEY = "sei-emulator-key"


class SEIEmulator:
    """A local Harness SEI server (legacy reports, V2 export jobs) over a synthetic org.

    :param host: the address to bind; keep ``127.0.0.1``.
    :param port: the port; 0 picks a free one (read it back from ``base_url``).
    :param api_key: the accepted key (default ``sei-emulator-key``).
    :param seed: seeds the org, its activity, the export ids and the random faults.
    :param teams: the number of teams in the org (ref ids 1, 123, 456, 789, 1001, ...).
    :param latency_ms: delay before every response, added to ``Faults.latency_ms``.
    :param faults: the fault configuration; None = no faults.
    :param report_bytes: large-report mode: every non-empty report becomes its header and rows
        repeated to exactly this many bytes (for streaming benchmarks).
    :param v2: the V2 export jobs' settings (lifecycle, reuse, variants, gzip); None = defaults.
    :param clock: seconds since the epoch, for job times, reuse and timed lifecycles (a test's
        fake clock; default ``time.time``).
    :param gzip_reports: honour ``Accept-Encoding: gzip`` on the reports endpoint by sending
        the report with ``Content-Encoding: gzip`` (a ``report_bytes`` report is compressed
        once and kept).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        seed: int = 42,
        teams: int = 12,
        latency_ms: int = 0,
        faults: Faults | None = None,
        report_bytes: int | None = None,
        v2: V2Settings | None = None,
        clock: Callable[[], float] | None = None,
        gzip_reports: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.api_key, self.seed = api_key, seed
        self.latency_ms, self.report_bytes = latency_ms, report_bytes
        self.gzip_reports = gzip_reports
        self.org = Org(seed=seed, teams=teams)
        self._gzip_cache = GzipCache()
        self._job_script: collections.deque[JobFault] = collections.deque()
        self.jobs = JobStore(
            self.org, seed, v2 or V2Settings(), clock or time.time, self._next_job_fault
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._recorded: list[RecordedRequest] = []
        self._windows: dict[str, collections.deque[float]] = {}
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_faults(faults or Faults())

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server, no trailing slash."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> SEIEmulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        self._stop.clear()
        self._server = EmulatorHTTPServer((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="sei-emulator", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: stalled and dripping handlers give up, open connections close."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SEIEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault configuration (thread-safe); restarts the random fault stream and
        the job fault script."""
        with self._lock:
            self._faults = faults
            self._script = collections.deque(faults.script)
            self._job_script = collections.deque(faults.jobs)
            self._rng = random.Random(f"{self.seed}:faults")

    @property
    def v2(self) -> V2Settings:
        """The V2 export jobs' settings."""
        return self.jobs.settings

    def set_v2(self, settings: V2Settings) -> None:
        """Replace the V2 settings at runtime (existing jobs keep their files)."""
        self.jobs.settings = settings

    @property
    def clock(self) -> Callable[[], float]:
        """The clock of job times, reuse and timed lifecycles (settable)."""
        return self.jobs.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.jobs.clock = clock

    @property
    def pending_job_faults(self) -> list[JobFault]:
        """The job faults not yet taken by a new job."""
        with self._lock:
            return list(self._job_script)

    @property
    def pending_script(self) -> list[Fault]:
        """The scripted faults not yet applied."""
        with self._lock:
            return list(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests served so far."""
        with self._lock:
            return list(self._recorded)

    def reset(self) -> None:
        """Forget recorded requests, remaining scripted faults (job faults too), rate-limit
        windows and export jobs."""
        with self._lock:
            self._recorded.clear()
            self._script.clear()
            self._job_script.clear()
            self._windows.clear()
            self._rng = random.Random(f"{self.seed}:faults")
        self.jobs.clear()

    # The handler's helpers.

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)

    def _wait(self, ms: float) -> None:
        """Sleep ``ms``; a ``stop()`` meanwhile aborts the request."""
        if ms > 0 and self._stop.wait(ms / 1000):
            raise AbortRequest()
        if self._stop.is_set():
            raise AbortRequest()

    def _next_job_fault(self) -> JobFault:
        """Return the fault of the next new export job (a normal job once the script is used up)."""
        with self._lock:
            return self._job_script.popleft() if self._job_script else JobFault.ok()

    def _next_fault(self) -> tuple[Fault | str | None, str | None, float]:
        """Return the scripted fault, else the random one (a ``Faults`` field name), and a
        fraction."""
        with self._lock:
            if self._script:
                fault = self._script.popleft()
                return fault, fault.label, 0.0
            u, fraction = self._rng.random(), self._rng.uniform(0.1, 0.9)
            name = self._faults.draw(u)
            return name, name, fraction

    def _injected_error(self, code: int, message: str | None, retry_after: int | None) -> Response:
        if retry_after is None and code == 429:
            retry_after = self._faults.retry_after
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return error_response(code, message or f"Injected HTTP {code}", headers)

    def _within_rate_limit(self, key: str) -> bool:
        limit = self._faults.rate_limit_per_minute
        if limit is None:
            return True
        digest = hashlib.sha256(key.encode()).hexdigest()  # never keep the key itself
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(digest, collections.deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True
