"""Fault configuration for the SEI emulator: what goes wrong, how often, in which order.

A :class:`Faults` value is handed to :class:`~sei_emulator.SEIEmulator` (or
replaced at runtime with ``set_faults``). Faults apply to every request for a known endpoint
(the reports endpoint and the org-tree endpoints), before authentication, in this order:

1. latency: ``SEIEmulator(latency_ms)`` + ``Faults.latency_ms`` before any response byte;
2. the next :class:`Fault` of ``script`` if any is left (one per request, in order); a request
   that takes a scripted fault draws no random fault;
3. otherwise one random draw ``u`` in [0, 1) from a ``random.Random`` seeded from the server's
   seed (reseeded by ``set_faults`` and ``reset``, so a run is reproducible): ``u < drop_rate``
   drops the connection, the next ``error_rate_429`` answers 429, the next ``error_rate_503``
   answers 503, the next ``truncate_rate`` truncates the body at a random fraction (10-90 %);
4. the rate limit: more than ``rate_limit_per_minute`` requests from one API key within the
   last 60 s (a sliding window) answer 429.

Injected 429s (random, scripted without their own ``retry_after``, or the rate limit) carry
``Retry-After: <retry_after>`` only when ``retry_after`` is set; real Harness sends none.

**V2 export jobs** have faults of their own, in ``Faults.jobs``: each *new* export job (not one
reused for an identical request) takes the next :class:`JobFault` of that list when it is
created, and keeps it for its whole life (a job that fails, is cancelled, never finishes, or
whose download is cut short); once the list is used up, jobs behave normally. The per-request
faults above apply to V2 requests too (a 503 on a poll, a truncated download...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FaultKind(str, enum.Enum):
    STATUS = "status"
    RESET = "reset"
    STALL = "stall"
    TRUNCATE = "truncate"
    CHUNKED_CUT = "chunked_cut"
    WRONG_BODY = "wrong_body"
    DRIP = "drip"


@dataclass(frozen=True)
class Fault:
    """One scripted fault; build it with the constructors below, not directly.

    :param kind: what happens.
    :param params: the constructor's arguments.
    """

    kind: FaultKind
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> Any:
        return dict(self.params).get(name)

    @property
    def label(self) -> str:
        """How :class:`RecordedRequest.fault` names it, e.g. ``status:503``, ``truncate:0.5``."""
        if self.kind is FaultKind.STATUS:
            return f"status:{self.param('code')}"
        if self.kind is FaultKind.WRONG_BODY:
            return f"wrong_body:{self.param('kind')}"
        first = self.params[0][1] if self.params else None
        return self.kind.value if first is None else f"{self.kind.value}:{first}"

    @classmethod
    def status(cls, code: int, message: str | None = None, retry_after: int | None = None) -> Fault:
        """Answer ``code`` with ``{"status": "error", "message": ...}`` (and ``Retry-After``).

        :param code: the HTTP status, e.g. 429, 500, 502, 503, 504.
        :param message: the body's message; a default names the status.
        :param retry_after: seconds for a ``Retry-After`` header; None sends none unless the
            code is 429 and ``Faults.retry_after`` is set.
        """
        if not 100 <= code <= 599:
            raise ValueError(f"not an HTTP status: {code}")
        return cls(FaultKind.STATUS, (("code", code), ("message", message),
                                      ("retry_after", retry_after)))  # fmt: skip

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then close the socket before any response byte (an RST)."""
        return cls(FaultKind.RESET)

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before the headers (a client read timeout); ``stop()`` ends it."""
        return cls(FaultKind.STALL, (("seconds", float(seconds)),))

    @classmethod
    def truncate(cls, fraction: float = 0.5) -> Fault:
        """Send the real body's ``Content-Length`` but only ``fraction`` of it, then close."""
        return cls(FaultKind.TRUNCATE, (("fraction", _fraction(fraction)),))

    @classmethod
    def chunked_cut(cls, fraction: float = 0.5) -> Fault:
        """Send the body chunked; stop after ``fraction`` of it, without the last chunk."""
        return cls(FaultKind.CHUNKED_CUT, (("fraction", _fraction(fraction)),))

    @classmethod
    def wrong_body(cls, kind: str = "html") -> Fault:
        """Answer 200 with an HTML page (``"html"``) or a JSON body (``"json"``), not CSV."""
        if kind not in ("html", "json"):
            raise ValueError('wrong_body kind must be "html" or "json"')
        return cls(FaultKind.WRONG_BODY, (("kind", kind),))

    @classmethod
    def drip(cls, chunk_bytes: int = 64, interval_s: float = 0.05) -> Fault:
        """Send the real body in ``chunk_bytes`` pieces, ``interval_s`` apart."""
        if chunk_bytes < 1 or interval_s < 0:
            raise ValueError("drip needs chunk_bytes >= 1 and interval_s >= 0")
        return cls(FaultKind.DRIP, (("chunk_bytes", chunk_bytes), ("interval_s", interval_s)))


class JobOutcome(str, enum.Enum):
    """How a V2 export job ends (see :class:`JobFault`)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEVER = "never"  # stays PROCESSING forever


@dataclass(frozen=True)
class JobFault:
    """What goes wrong with one V2 export job; build it with the constructors below.

    The job runs its normal lifecycle (QUEUED, PROCESSING; see ``V2Settings``) and, where it
    would complete, ends as ``outcome`` instead.

    :param outcome: the job's final state.
    :param message: the failure's text (``FAILED`` only).
    :param message_field: the status body's field that carries ``message`` (``"error"`` or
        ``"message"``).
    :param cut_fraction: downloads are cut after this fraction of the body (under a full
        ``Content-Length``), then the connection closes; None = whole downloads.
    :param cut_times: how many downloads are cut (None = every one); later ones are whole.
    """

    outcome: JobOutcome = JobOutcome.COMPLETED
    message: str | None = None
    message_field: str = "error"
    cut_fraction: float | None = None
    cut_times: int | None = None

    @property
    def label(self) -> str:
        """How ``emulator.jobs[id].fault`` names it: ``ok``, ``fail``, ``cancel``,
        ``never_finish`` or ``cut_download:0.5``."""
        if self.cut_fraction is not None:
            return f"cut_download:{self.cut_fraction}"
        return {
            JobOutcome.COMPLETED: "ok",
            JobOutcome.FAILED: "fail",
            JobOutcome.CANCELLED: "cancel",
            JobOutcome.NEVER: "never_finish",
        }[self.outcome]

    @classmethod
    def ok(cls) -> JobFault:
        """Return a normal job (a placeholder in a script: this job has no fault)."""
        return cls()

    @classmethod
    def fail(cls, message: str = "Export failed: internal error", field: str = "error") -> JobFault:
        """Make the job end ``FAILED`` with ``{field: message}`` in its status body.

        :param message: the failure's text.
        :param field: ``"error"`` (default) or ``"message"``; no failure field is documented.
        """
        if field not in ("error", "message"):
            raise ValueError('field must be "error" or "message"')
        return cls(JobOutcome.FAILED, message, field)

    @classmethod
    def cancel(cls) -> JobFault:
        """Make the job end ``CANCELLED`` (``cancelled`` on the productivity page)."""
        return cls(JobOutcome.CANCELLED)

    @classmethod
    def never_finish(cls) -> JobFault:
        """Make the job never complete: it answers ``QUEUED``, then ``PROCESSING`` forever."""
        return cls(JobOutcome.NEVER)

    @classmethod
    def cut_download(cls, fraction: float = 0.5, times: int | None = 1) -> JobFault:
        """Make the job complete, but its download announce the whole ``Content-Length``, send only
        ``fraction`` of the body and close the connection.

        :param fraction: the share of the body sent, in [0, 1).
        :param times: how many downloads are cut (the first ones); None = every download.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None)")
        return cls(cut_fraction=_fraction(fraction), cut_times=times)

    @classmethod
    def parse(cls, spec: str) -> JobFault:
        """Parse a job fault from its command-line spelling: ``ok``, ``fail``, ``cancel``, ``never``
        (or ``never_finish``), ``cut`` or ``cut:FRACTION``."""
        name, _, arg = spec.strip().lower().partition(":")
        if name == "cut" or name == "cut_download":
            return cls.cut_download(float(arg) if arg else 0.5)
        makers = {
            "ok": cls.ok,
            "fail": cls.fail,
            "cancel": cls.cancel,
            "never": cls.never_finish,
            "never_finish": cls.never_finish,
        }
        if name not in makers or arg:
            raise ValueError(f"unknown job fault {spec!r}: use ok, fail, cancel, never, cut[:F]")
        return makers[name]()


def _fraction(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError("fraction must be in [0, 1)")
    return float(value)


@dataclass
class Faults:
    """The emulator's fault configuration (see the module docstring for the order).

    :param latency_ms: delay before every response, in milliseconds.
    :param error_rate_429: share of requests answered 429 (no ``Retry-After`` unless set).
    :param error_rate_503: share of requests answered 503.
    :param drop_rate: share of requests whose connection is closed without a response.
    :param truncate_rate: share of requests whose body is cut short under a full
        ``Content-Length``.
    :param rate_limit_per_minute: requests allowed per API key per sliding minute; None = no
        limit. Over it: 429.
    :param retry_after: seconds sent as ``Retry-After`` on injected 429s; None = no header.
    :param script: faults for the next requests, one each, in order; then normal behaviour.
    :param jobs: faults for the next new V2 export jobs, one each, in order (see
        :class:`JobFault`); then normal jobs.
    """

    latency_ms: int = 0
    error_rate_429: float = 0.0
    error_rate_503: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    rate_limit_per_minute: int | None = None
    retry_after: int | None = None
    script: list[Fault] = field(default_factory=list)
    jobs: list[JobFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        rates = (self.drop_rate, self.error_rate_429, self.error_rate_503, self.truncate_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and add up to at most 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1 (or None)")

    def draw(self, u: float) -> str | None:
        """Return the random fault (a field name) that the uniform draw ``u`` selects, if any."""
        edge = 0.0
        for name in ("drop_rate", "error_rate_429", "error_rate_503", "truncate_rate"):
            edge += getattr(self, name)
            if u < edge:
                return name
        return None
