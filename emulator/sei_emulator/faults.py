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
    """

    latency_ms: int = 0
    error_rate_429: float = 0.0
    error_rate_503: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    rate_limit_per_minute: int | None = None
    retry_after: int | None = None
    script: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        rates = (self.drop_rate, self.error_rate_429, self.error_rate_503, self.truncate_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and add up to at most 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1 (or None)")

    def draw(self, u: float) -> str | None:
        """The random fault (a field name) that the uniform draw ``u`` selects, if any."""
        edge = 0.0
        for name in ("drop_rate", "error_rate_429", "error_rate_503", "truncate_rate"):
            edge += getattr(self, name)
            if u < edge:
                return name
        return None
