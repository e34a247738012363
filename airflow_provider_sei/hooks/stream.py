"""A report response read as a stream of chunks, never held whole in memory.

``ReportStream.open`` checks that a 200 really is a CSV report; ``iter_chunks`` reads the body
one socket read at a time (so the total time bound is checked even on a slow drip), counts the
bytes and compares them with ``Content-Length``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from airflow_provider_sei.exceptions import (
    SEIIncompleteReadError,
    SEIResponseError,
    SEITimeoutError,
)

CSV_CONTENT_TYPES = frozenset({"text/csv", "application/csv"})
#: Types a CSV may also come as; such a body is accepted unless it starts like HTML or JSON.
LOOSE_CONTENT_TYPES = frozenset({"text/plain", "application/octet-stream"})
EXCERPT_BYTES = 2048
_EXCERPT_CHARS = 300
DEFAULT_CHUNK_SIZE = 1 << 20


def now() -> float:
    """The clock of every time bound (``time.monotonic``; tests replace it)."""
    return time.monotonic()


@dataclass(frozen=True)
class ExportResult:
    """What one finished export wrote.

    :param filename: the server's file name from ``Content-Disposition``, if it sent one.
    :param bytes: the number of bytes written to the sink.
    :param content_type: the response's ``Content-Type``.
    :param attempts: the attempts it took, the successful one included.
    """

    filename: str | None
    bytes: int
    content_type: str
    attempts: int


class ReportStream:
    """The body of a 200 report response, read chunk by chunk.

    :param response: a ``requests`` response opened with ``stream=True``.
    :param deadline: ``time.monotonic()`` value after which reading stops with ``SEIError``.
    :param redact: removes secrets from text quoted in errors.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        deadline: float | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._response = response
        self._deadline = deadline
        self._redact = redact
        self.filename = parse_filename(response.headers.get("Content-Disposition"))
        self.content_type = response.headers.get("Content-Type", "")
        self.content_length = _content_length(response)
        self.bytes_read = 0
        self._head = b""  # bytes read to sniff the body, handed out first by iter_chunks

    @classmethod
    def open(
        cls,
        response: requests.Response,
        *,
        deadline: float | None = None,
        redact: Callable[[str], str] = str,
    ) -> ReportStream:
        """Wrap ``response``; raise ``SEIResponseError`` when its body is not a CSV report.

        A 0-byte body is an empty report whatever its type. Any other body must be CSV: an
        HTML or JSON page (a login page, a proxy's error, an API error sent with 200) is
        rejected with a short excerpt, and not retried, also when it comes as ``text/plain``
        or ``application/octet-stream``.
        """
        stream = cls(response, deadline=deadline, redact=redact)
        kind = media_type(stream.content_type)
        if kind in CSV_CONTENT_TYPES or stream.content_length == 0:
            return stream
        head = stream._read(EXCERPT_BYTES)
        if not head:
            return stream
        if kind in LOOSE_CONTENT_TYPES and not _looks_like_markup(head):
            stream._head = head
            return stream
        stream.close()
        raise SEIResponseError(
            f"Expected a CSV report but got {stream.content_type or 'no Content-Type'}: "
            f"{excerpt(head, redact)}"
        )

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the body in chunks of ``chunk_size`` bytes (the last one may be shorter).

        :raises SEIIncompleteReadError: the body ended short of ``Content-Length`` or the
            connection broke mid-body.
        :raises SEIError: the deadline passed (the total time bound, ``max_elapsed``).
        """
        buffer, self._head = bytearray(self._head), b""
        while data := self._read(chunk_size - len(buffer)):
            if not buffer and len(data) >= chunk_size:
                yield data  # a whole chunk in one read: no copies
                continue
            buffer += data
            if len(buffer) >= chunk_size:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
        self._check_complete()

    def close(self) -> None:
        """Release the connection."""
        self._response.close()

    def _read(self, size: int) -> bytes:
        """One socket read of at most ``size`` bytes, counted and checked against the deadline.

        ``read1`` returns what has arrived instead of waiting for ``size`` bytes, so a slow
        drip still reaches the deadline check.
        """
        raw = self._response.raw
        read = getattr(raw, "read1", None) or raw.read  # read1: urllib3 >= 2.3
        try:
            data = read(size, decode_content=True)
        except ProtocolError as exc:
            raise SEIIncompleteReadError(self.content_length, self.bytes_read) from exc
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(f"read timed out after {self.bytes_read} bytes") from exc
        except DecodeError as exc:
            raise SEIResponseError(
                f"Could not decode the response body: {type(exc).__name__}"
            ) from exc
        self.bytes_read += len(data)
        self._check_deadline()
        return data

    def _check_deadline(self) -> None:
        if self._deadline is not None and now() > self._deadline:
            self.close()
            raise SEITimeoutError(
                f"SEI report download exceeded its time bound (max_elapsed) after "
                f"{self.bytes_read} bytes"
            )

    def _check_complete(self) -> None:
        # A compressed body is counted after decoding, so it cannot be compared with
        # Content-Length; urllib3 checks the raw length of those itself.
        encoded = self._response.headers.get("Content-Encoding", "identity").lower() != "identity"
        if (
            self.content_length is not None
            and not encoded
            and self.bytes_read < self.content_length
        ):
            raise SEIIncompleteReadError(self.content_length, self.bytes_read)


def parse_filename(content_disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header: quoted, unquoted or RFC 5987.

    Only the last path component is kept: a server's name must not steer where a file goes.
    """
    if not content_disposition:
        return None
    message = Message()
    message["Content-Disposition"] = content_disposition
    params = message.get_params(header="Content-Disposition") or []
    values = [value for key, value in params[1:] if key.lower() == "filename"]
    # RFC 6266: filename* (RFC 5987, parsed into a (charset, language, text) tuple) wins.
    value = next((v for v in values if isinstance(v, tuple)), values[0] if values else None)
    if not value:
        return None
    name = str(collapse_rfc2231_value(value))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None


def _looks_like_markup(head: bytes) -> bool:
    """Whether a body starts like an HTML/XML page or a JSON document rather than a CSV."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"<", b"{", b"[")


def media_type(content_type: str | None) -> str:
    """``text/csv`` from ``text/csv; charset=utf-8``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def excerpt(data: bytes, redact: Callable[[str], str] = str) -> str:
    """A short, single-line, secret-free quote of a body for an error message."""
    text = redact(data.decode("utf-8", errors="replace"))
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def server_message(data: bytes, redact: Callable[[str], str] = str) -> str:
    """The server's message: ``message`` from a JSON error body, else a short excerpt."""
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = next((body[k] for k in ("message", "error", "detail") if body.get(k)), None)
        if message is not None:
            text = excerpt(str(message).encode(), redact)
            correlation = body.get("correlationId")
            return f"{text} (correlationId {correlation})" if correlation else text
    return excerpt(data, redact)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
