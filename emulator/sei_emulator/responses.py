"""Response values and their bodies: fixed bytes, a lazily streamed CSV, or a large report.

The HTTP layer (:mod:`.server`) decides how to frame a body (``Content-Length`` or chunked) and
which faults to apply; this module only says what the bytes are.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sei_emulator.faults import Fault
from sei_emulator.reports import Report, csv_line

CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"
#: The size of the block a large report is written from.
BLOCK_BYTES = 1 << 20
#: How much of a streamed CSV is gathered into one chunk.
CHUNK_BYTES = 64 * 1024


class Body:
    """A response body: its length when known up front, and its bytes, piece by piece."""

    length: int | None = None

    def __iter__(self) -> Iterator[bytes | memoryview]:
        raise NotImplementedError

    def materialise(self) -> bytes:
        """Return the whole body in memory (faults that need its length use this)."""
        return b"".join(bytes(piece) for piece in self)


class BytesBody(Body):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def __iter__(self) -> Iterator[bytes | memoryview]:
        if self.data:
            yield self.data

    def materialise(self) -> bytes:
        return self.data


class StreamedBody(Body):
    """Bytes produced lazily (length unknown: sent chunked), gathered into ~64 KiB pieces."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes | memoryview]:
        buffer, size = [], 0
        for piece in self.pieces:
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)


class LargeReportBody(Body):
    """The report's header, then its rows repeated, ``total`` bytes exactly, ending on a row.

    The rows are laid out once in a ~1 MiB block of whole rows; the body is served as
    ``memoryview`` slices of that block (never built whole). The last row's first field
    (the collection name) is right-padded with spaces so the body is exactly ``total`` bytes.
    A ``total`` below the header plus one row is raised to that.
    """

    def __init__(self, header: bytes, rows: list[list[str]], total: int) -> None:
        lines = [csv_line(r) for r in rows]
        repeat = max(1, -(-BLOCK_BYTES // sum(len(x) for x in lines)))
        self.header, self.rows = header, rows
        self.block = memoryview(b"".join(lines * repeat))
        self.offsets = [0]
        for line in lines * repeat:
            self.offsets.append(self.offsets[-1] + len(line))
        self.lines = lines
        target = max(total, len(header) + len(lines[0])) - len(header)
        self.prefix, last = self._last_row(target)
        pad = target - self.prefix - len(lines[last])
        self.tail = csv_line([rows[last][0] + " " * pad, *rows[last][1:]])
        self.length = len(header) + self.prefix + len(self.tail)

    def _last_row(self, target: int) -> tuple[int, int]:
        """Where the last row starts (the largest row start whose row fits in ``target``)
        and which row it is; the rows before it are the block repeated, then cut."""
        size = len(self.block)
        full, rest = divmod(target, size)
        k = bisect.bisect_right(self.offsets, rest) - 2  # the last block row ending <= rest
        if k < 0:  # none fits after ``full`` blocks: end on the previous block's last row
            full, k = full - 1, len(self.offsets) - 2
        return full * size + self.offsets[k], k % len(self.lines)

    def __iter__(self) -> Iterator[bytes | memoryview]:
        yield self.header
        size, left = len(self.block), self.prefix
        while left > 0:
            n = min(size, left)
            yield self.block[:n]
            left -= n
        yield self.tail


@dataclass
class Response:
    """What to send: status, headers (without framing ones) and body.

    :param body_fault: a body fault the endpoint itself asks for (a V2 job's cut download),
        applied by the HTTP layer like a scripted one.
    """

    status: int
    body: Body = field(default_factory=lambda: BytesBody(b""))
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body_fault: Fault | None = None


def json_response(status: int, payload: Any) -> Response:
    return Response(status, BytesBody(json.dumps(payload).encode()), JSON_TYPE)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return the error shape Harness uses on SEI endpoints:
    ``{"status": "error", "message": ...}``."""
    response = json_response(status, {"status": "error", "message": message})
    response.headers.update(headers or {})
    return response


#: The platform's error codes by HTTP status (V2 error bodies).
PLATFORM_CODES = {
    400: "INVALID_REQUEST",
    401: "INVALID_CREDENTIAL",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "INVALID_STATE",
    429: "TOO_MANY_REQUESTS",
}


def platform_error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Return the Harness platform's error shape, used on the V2 endpoints:
    ``{"status": "ERROR", "code", "message", "correlationId"}``, plus
    ``"errors": [{"fieldId", "error"}]`` when a field or parameter is at fault."""
    payload: dict[str, Any] = {
        "status": "ERROR",
        "code": PLATFORM_CODES.get(status, "UNEXPECTED"),
        "message": message,
        "correlationId": str(uuid.uuid4()),
    }
    if field is not None:
        payload["errors"] = [{"fieldId": field, "error": message}]
    response = json_response(status, payload)
    response.headers.update(headers or {})
    return response


def csv_response(report: Report, report_bytes: int | None = None) -> Response:
    """Return a report as ``text/csv``: 0 bytes when empty, else whole (team reports, with a
    ``Content-Length``), streamed (contributor reports, chunked) or large (``report_bytes``)."""
    headers = {"Content-Disposition": f'attachment; filename="{report.filename}"'}
    header = csv_line(report.header)
    if report.empty:
        body: Body = BytesBody(b"")
    elif report_bytes is not None:
        body = LargeReportBody(header, list(report.rows), report_bytes)
    elif report.streamed:
        body = StreamedBody(_chain(header, report.rows))
    else:
        body = BytesBody(b"".join(_chain(header, report.rows)))
    return Response(200, body, CSV_TYPE, headers)


def _chain(header: bytes, rows: Iterator[list[str]]) -> Iterator[bytes]:
    yield header
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
        yield out.getvalue().encode("utf-8")
        out.seek(0)
        out.truncate()


WRONG_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Harness</title></head>\n"
    b"<body><h1>Sign in to Harness</h1><p>Your session has expired.</p></body></html>\n"
)
WRONG_JSON = b'{"status": "SUCCESS", "data": {"message": "Export scheduled"}}'
