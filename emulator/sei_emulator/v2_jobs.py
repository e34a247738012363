"""The V2 export jobs: an in-memory store, each job's lifecycle, reuse, and its file.

A job is created ``QUEUED``. With ``V2Settings.complete_after_polls = N`` its first poll
answers ``QUEUED``, the next ones ``PROCESSING``, and poll ``N + 1`` its final state; with
``complete_after_seconds = S`` it is ``QUEUED`` for ``S / 2`` seconds, then ``PROCESSING``, and
done ``S`` seconds after its creation (by the store's clock). The final state is ``COMPLETED``
unless the job's :class:`~sei_emulator.faults.JobFault` says ``FAILED``, ``CANCELLED`` or never.
Only polls count as polls: listing jobs, downloading and reading ``emulator.jobs`` do not.

An identical request (same type, same JSON body whatever its key order or spacing, same
``projectIdentifier`` and ``orgIdentifier``) within ``reuse_seconds`` of a job's creation gets
that job back, unless it failed or was cancelled; a reused request takes no job fault.

The file is generated once, when first needed (a status that states its size, or the first
download), and kept with the job: later setting changes do not alter a job's file.
"""

from __future__ import annotations

import enum
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from sei_emulator.compression import gzip_bytes
from sei_emulator.faults import Fault, JobFault, JobOutcome
from sei_emulator.org import Org
from sei_emulator.v2_catalogue import ExportType
from sei_emulator.v2_reports import ExportFile, build_export
from sei_emulator.v2_settings import V2Settings
from sei_emulator.v2_validation import ExportRequest
from sei_emulator.validation import ApiError

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class JobStatus(str, enum.Enum):
    """A job's state (the API's spelling is upper or lower case, per settings)."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


_FINAL = {
    JobOutcome.COMPLETED: JobStatus.COMPLETED,
    JobOutcome.FAILED: JobStatus.FAILED,
    JobOutcome.CANCELLED: JobStatus.CANCELLED,
}


@dataclass(frozen=True)
class Payload:
    """A job's file: the CSV, and whether the download is a ``.csv.gz`` file."""

    export: ExportFile
    gzip_file: bool
    gzip_type: str

    @cached_property
    def gzipped(self) -> bytes:
        """The CSV as a gzip file (compressed once)."""
        return gzip_bytes(self.export.data)

    @property
    def filename(self) -> str:
        return self.export.filename + (".gz" if self.gzip_file else "")

    @property
    def content_type(self) -> str:
        return self.gzip_type if self.gzip_file else "text/csv"

    @property
    def data(self) -> bytes:
        """The download's body (before any ``Content-Encoding``)."""
        return self.gzipped if self.gzip_file else self.export.data


@dataclass
class ExportJob:
    """One export job, as ``emulator.jobs[export_id]`` shows it.

    :param key: what makes two requests identical (type, canonical body, identifiers).
    :param body: the create request's JSON body.
    :param created_at: / ``completed_at``: seconds by the store's clock.
    :param polls: status requests answered so far; ``downloads``: download requests.
    :param reused: identical requests answered with this job.
    """

    export_id: str
    type: ExportType
    request: ExportRequest
    body: dict[str, Any]
    key: str
    created_at: float
    fault: JobFault
    status: JobStatus = JobStatus.QUEUED
    completed_at: float | None = None
    polls: int = 0
    downloads: int = 0
    reused: int = 0
    payload: Payload | None = field(default=None, repr=False)
    _making: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def created_iso(self) -> str:
        return iso(self.created_at)

    @property
    def completed_iso(self) -> str | None:
        return None if self.completed_at is None else iso(self.completed_at)


def iso(seconds: float) -> str:
    """Format a clock reading as the API writes times: ``2025-05-13T10:00:00Z``."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_key(export_type: ExportType, body: dict[str, Any], query: dict[str, str]) -> str:
    """Return what makes two create requests identical."""
    ids = {k: query.get(k) for k in ("projectIdentifier", "orgIdentifier")}
    return json.dumps([export_type.value, body, ids], sort_keys=True, separators=(",", ":"))


class JobStore:
    """The emulator's export jobs, in memory (read-only mapping of export id → job).

    :param org: the synthetic org the files are computed from.
    :param seed: seeds the export ids.
    :param settings: lifecycle, reuse and file settings (replace with ``settings = ...``).
    :param clock: seconds since the epoch (``time.time`` or a test's fake clock).
    :param next_fault: the fault of the next new job.
    """

    def __init__(
        self,
        org: Org,
        seed: int,
        settings: V2Settings,
        clock: Callable[[], float],
        next_fault: Callable[[], JobFault],
    ) -> None:
        self.org, self.seed, self.settings = org, seed, settings
        self.clock, self.next_fault = clock, next_fault
        self._jobs: dict[str, ExportJob] = {}
        self._made = 0
        self._lock = threading.RLock()

    def __getitem__(self, export_id: str) -> ExportJob:
        with self._lock:
            job = self._jobs[export_id]
            self._advance(job, polled=False)
            return job

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._jobs))

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, export_id: object) -> bool:
        return export_id in self._jobs

    def values(self) -> list[ExportJob]:
        """Every job, oldest first (states brought up to date by the clock)."""
        return [self[i] for i in self]

    def clear(self) -> None:
        """Forget every job (ids start again from the first)."""
        with self._lock:
            self._jobs.clear()
            self._made = 0

    def create(
        self, request: ExportRequest, body: dict[str, Any], query: dict[str, str]
    ) -> tuple[ExportJob, bool]:
        """Return a new job, or the job of an identical recent request (then True)."""
        key = request_key(request.type, body, query)
        with self._lock:
            now = self.clock()
            for job in reversed(list(self._jobs.values())):
                self._advance(job, polled=False)
                fresh = now - job.created_at < self.settings.reuse_seconds
                failed = job.status in (JobStatus.FAILED, JobStatus.CANCELLED)
                if job.key == key and fresh and not failed:
                    job.reused += 1
                    return job, True
            job = ExportJob(
                self._new_id(), request.type, request, body, key, now, self.next_fault()
            )
            self._jobs[job.export_id] = job
            return job, False

    def find(self, export_type: ExportType, export_id: str, polled: bool = False) -> ExportJob:
        """Find the job (its status advanced; a poll when ``polled``); 404 if unknown or another
        type's."""
        with self._lock:
            job = self._jobs.get(export_id)
            if job is None or job.type is not export_type:
                raise ApiError(404, f"Export not found: {export_id}", "exportId")
            self._advance(job, polled)
            return job

    def listing(
        self, export_type: ExportType, status: JobStatus | None, team_id: str | None
    ) -> list[ExportJob]:
        """List the type's jobs, newest first, filtered by status and ``scope.teamId``."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.type is export_type]
            for job in jobs:
                self._advance(job, polled=False)
        return [
            j
            for j in reversed(jobs)
            if (status is None or j.status is status)
            and (team_id is None or j.request.team_id == team_id)
        ]

    def payload(self, job: ExportJob) -> Payload:
        """Return the job's file, generated on first use (outside the store's lock: a large export
        does not hold up other jobs' polls)."""
        with job._making:
            if job.payload is None:
                settings = self.settings
                export = build_export(self.org, job.request)
                gzip_file = _gzip_file(settings, job.request, export)
                job.payload = Payload(export, gzip_file, settings.gzip_content_type)
            return job.payload

    def take_download(self, job: ExportJob) -> Fault | None:
        """Count a download; the truncation its job fault asks for, if any."""
        with self._lock:
            job.downloads += 1
            f = job.fault
            if f.cut_fraction is None or (f.cut_times is not None and job.downloads > f.cut_times):
                return None
            return Fault.truncate(f.cut_fraction)

    def _new_id(self) -> str:
        while True:
            rng = random.Random(f"{self.seed}:export:{self._made}")
            self._made += 1
            export_id = "exp_" + "".join(rng.choice(_BASE36) for _ in range(8))
            if export_id not in self._jobs:
                return export_id

    def _advance(self, job: ExportJob, polled: bool) -> None:
        """Count a poll and move the job along its lifecycle (see the module docstring)."""
        if polled:
            job.polls += 1
        if job.status.terminal:
            return
        s, now = self.settings, self.clock()
        seconds = s.complete_after_seconds
        deadline = None if seconds is None else job.created_at + seconds
        by_polls = s.complete_after_polls is not None and job.polls > s.complete_after_polls
        by_time = deadline is not None and now >= deadline
        if (by_polls or by_time) and job.fault.outcome is not JobOutcome.NEVER:
            job.status = _FINAL[job.fault.outcome]
            job.completed_at = deadline if by_time and not by_polls else now
            return
        halfway = seconds is not None and now >= job.created_at + seconds / 2
        started = s.complete_after_polls is not None and job.polls > 1
        job.status = JobStatus.PROCESSING if halfway or started else JobStatus.QUEUED


def _gzip_file(s: V2Settings, request: ExportRequest, export: ExportFile) -> bool:
    """Whether the download is a ``.csv.gz`` file (see ``V2Settings.compression``)."""
    if s.content_encoding or s.compression == "never":
        return False
    large = (s.gzip_min_bytes is not None and len(export.data) >= s.gzip_min_bytes) or (
        s.gzip_min_rows is not None and export.rows >= s.gzip_min_rows
    )
    return s.compression == "always" or request.compression == "gzip" or large
