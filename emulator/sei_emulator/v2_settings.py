"""How the emulator's V2 export jobs behave: lifecycle, reuse, documented variants, gzip.

One immutable :class:`V2Settings` value, handed to ``SEIEmulator(v2=...)`` or replaced at
runtime with ``emulator.set_v2(...)`` (e.g. ``dataclasses.replace(emu.v2, status_case="lower")``).
A variant left at None follows what each export type's own page documents (see
:mod:`.v2_catalogue`): productivity answers lower-case statuses and a ``download`` object,
sprint a sized ``download`` object at the plural ``/sprints/`` path, the others ``downloadUrl``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sei_emulator.v2_catalogue import CreateShape, StatusCase, StatusShape

#: An identical request within this many seconds reuses the job (the pages' 30 minutes).
REUSE_SECONDS = 30 * 60
#: Exports at least this large (CSV bytes) are served as ``.csv.gz`` files by default.
GZIP_MIN_BYTES = 1_000_000


@dataclass(frozen=True)
class V2Settings:
    """The V2 export jobs' behaviour.

    :param complete_after_polls: a job answers this many polls before it completes (the
        first poll ``QUEUED``, later ones ``PROCESSING``); 0 = the first poll sees it done.
        None = polls do not complete it (use ``complete_after_seconds``).
    :param complete_after_seconds: a job completes this many seconds (by the emulator's
        clock) after its creation: ``QUEUED`` in the first half, ``PROCESSING`` in the second.
        With both set, whichever comes first completes it.
    :param reuse_seconds: an identical request (same type, same JSON body, same
        ``projectIdentifier`` / ``orgIdentifier``) within this many seconds of a job's creation
        answers 200 with that job; 0 = never reuse. Failed and cancelled jobs are not reused.
    :param status_case: ``"upper"`` or ``"lower"`` statuses; None = per type.
    :param status_shape: ``"downloadUrl"``, ``"download"`` or ``"download_sized"``; None = per
        type.
    :param create_shape: ``"status"``, ``"no_status"`` or ``"metadata"``; None = per type.
    :param plural_sprint_url: sprint statuses point at ``/v2/insights/sprints/exports/...``
        (as the sprint page documents); False = the singular path. Both paths are always served.
    :param compression: when a download is a ``.csv.gz`` file: ``"auto"`` (the request asked
        ``options.compression: "gzip"`` or the export is large), ``"always"``, ``"never"``.
    :param gzip_min_bytes: "large" by size: a CSV of at least this many bytes; None = no limit.
    :param gzip_min_rows: "large" by rows: a CSV of at least this many data rows; None = none.
    :param gzip_content_type: the ``Content-Type`` of a ``.csv.gz`` download
        (``application/gzip`` or ``application/x-gzip``).
    :param content_encoding: to a client that sends ``Accept-Encoding: gzip``, every download
        goes out as the plain CSV with ``Content-Encoding: gzip`` instead of a ``.csv.gz`` file.
    :param require_identifiers: ``projectIdentifier`` and ``orgIdentifier`` query parameters are
        required on every V2 request (400 without them).
    """

    complete_after_polls: int | None = 2
    complete_after_seconds: float | None = None
    reuse_seconds: float = REUSE_SECONDS
    status_case: StatusCase | str | None = None
    status_shape: StatusShape | str | None = None
    create_shape: CreateShape | str | None = None
    plural_sprint_url: bool = True
    compression: str = "auto"
    gzip_min_bytes: int | None = GZIP_MIN_BYTES
    gzip_min_rows: int | None = None
    gzip_content_type: str = "application/gzip"
    content_encoding: bool = False
    require_identifiers: bool = True

    def __post_init__(self) -> None:
        if self.complete_after_polls is None and self.complete_after_seconds is None:
            raise ValueError("set complete_after_polls or complete_after_seconds (or both)")
        if self.complete_after_polls is not None and self.complete_after_polls < 0:
            raise ValueError("complete_after_polls must be >= 0")
        if self.complete_after_seconds is not None and self.complete_after_seconds < 0:
            raise ValueError("complete_after_seconds must be >= 0")
        if self.reuse_seconds < 0:
            raise ValueError("reuse_seconds must be >= 0")
        # Normalise the variant names to their enums (a ValueError names a wrong one).
        for name, kind in (
            ("status_case", StatusCase),
            ("status_shape", StatusShape),
            ("create_shape", CreateShape),
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, kind(value))
        if self.compression not in ("auto", "always", "never"):
            raise ValueError('compression must be "auto", "always" or "never"')
        if self.gzip_content_type not in ("application/gzip", "application/x-gzip"):
            raise ValueError("gzip_content_type must be application/gzip or application/x-gzip")
