"""A response body read by the provider itself: decoded, counted, and proven complete.

``urllib3`` would decode ``Content-Encoding: gzip`` for us, but it cannot tell a gzip stream
that was cut short at a row boundary from one that ended: it publishes half a report as a
whole one. So :class:`Body` reads the raw bytes (``decode_content=False``) and decodes gzip and
deflate with ``zlib`` itself, in bounded steps (``max_length``: a small, highly compressed body
cannot balloon in memory; what zlib holds back when a step is full is drained, so no step size
can lose the end of a stream), and accepts the body only when its end is **proven**:

* ``Content-Length``: every announced byte arrived (counted on the raw, encoded bytes);
* chunked transfer coding: the terminating zero-length chunk arrived (urllib3 checks it);
* a compressed stream (a ``Content-Encoding``, or a V2 download that is itself a ``.gz``
  file): ``zlib`` saw the stream's end marker and checksum.

A cut body raises :class:`SEIIncompleteReadError`, which the hook retries. A 200 whose end
cannot be proven at all -- no ``Content-Length``, no chunking and no compression, so the
connection's close is the only end marker and a dropped connection looks exactly like a
finished report -- is refused with :class:`SEIResponseError` before its body is read. No proxy
we know of needs that framing for a response it relays from an HTTP/1.1 server, so there is no
switch to allow it.

A Content-Length *shorter* than what the server sends ends the message where it says, as HTTP
wants (what follows cannot be told from the next response): the CSV check then catches a cut
inside a row, and the missing end of a compressed stream is caught here.

The deadline of an attempt is enforced by the transport (:mod:`.transport`), which shuts the
socket down when it passes; reads here may therefore block for whole chunks.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator
from email.message import Message
from email.utils import collapse_rfc2231_value

import requests
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from airflow_provider_sei.exceptions import SEIIncompleteReadError, SEIResponseError

CSV_CONTENT_TYPES = frozenset({"text/csv", "application/csv"})
#: Types a CSV may also come as; such a body must still look like a report (the CSV check).
LOOSE_CONTENT_TYPES = frozenset({"text/plain", "application/octet-stream"})
#: Types of a V2 download that is a gzip file.
GZIP_CONTENT_TYPES = frozenset({"application/gzip", "application/x-gzip"})
EXCERPT_BYTES = 2048
_EXCERPT_CHARS = 300
DEFAULT_CHUNK_SIZE = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_INPUT = 64 << 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Inflater:
    """Streaming gzip/deflate decoding that knows whether its stream ended."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._zlib: zlib._Decompress | None = None
        self._head = b""  # deflate: the first bytes, held until they tell its wrapping
        self.ended = False

    def feed(self, data: bytes, max_length: int) -> Iterator[bytes]:
        """Decode ``data`` in pieces of at most ``max_length`` bytes.

        The input goes in 64 KiB at a time: zlib copies what it has not consumed yet into
        ``unconsumed_tail`` after every call, so a whole 1 MiB read of a well-compressed body
        would be copied (and allocated) again for every piece it decodes to.
        """
        for start in range(0, max(len(data), 1), _INFLATE_INPUT):
            yield from self._feed(data[start : start + _INFLATE_INPUT], max_length)

    def _feed(self, data: bytes, max_length: int) -> Iterator[bytes]:
        while True:
            if self._zlib is None or self._zlib.eof:
                if not data:
                    return
                if self._zlib is not None and (
                    self.kind != "gzip" or not data.startswith(_GZIP_MAGIC[: len(data)])
                ):
                    # After the end of a gzip member only another member may follow.
                    raise SEIResponseError(
                        f"Unexpected bytes after the end of the {self.kind} stream"
                    )
                if self.kind == "deflate" and len(self._head + data) < 2:
                    self._head += data  # one byte cannot tell zlib-wrapped from raw
                    return
                data, self._head = self._head + data, b""
                self._zlib = zlib.decompressobj(self._wbits(data))
                self.ended = False
            try:
                out = self._zlib.decompress(data, max_length)
            except zlib.error as exc:
                raise SEIResponseError(f"The {self.kind} stream is corrupt: {exc}") from None
            if out:
                yield out
            self.ended = self._zlib.eof
            if self._zlib.eof:
                data = self._zlib.unused_data
            else:
                data = self._zlib.unconsumed_tail
                # A full piece may leave output pending inside zlib with every input byte
                # consumed (the rest of a long match): ask again, with no input, until less
                # than a full piece comes out.
                if not data and len(out) < max_length:
                    return

    def _wbits(self, head: bytes) -> int:
        if self.kind != "deflate":
            return 31  # gzip: header and trailer (CRC-32, length) checked
        # "deflate" should be zlib-wrapped (RFC 9110); some servers send raw deflate.
        wrapped = head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return 15 if wrapped else -15


class Body:
    """The body of a 2xx response, as decoded chunks of at most ``chunk_size`` bytes.

    :param response: a ``requests`` response opened with ``stream=True``.
    :param redact: removes secrets from server text quoted in errors.
    :param gunzip_files: decode a body that is itself a gzip file (a V2 ``.csv.gz`` download),
        detected by its first two bytes, after any ``Content-Encoding``.
    :param chunk_size: bytes per socket read, and the most bytes one decoded chunk holds.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        redact: Callable[[str], str] = str,
        gunzip_files: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._response = response
        self._redact = redact
        self._gunzip_files = gunzip_files
        self._chunk_size = chunk_size
        headers = response.headers
        self.content_type = headers.get("Content-Type", "")
        self.filename = parse_filename(headers.get("Content-Disposition"))
        self.content_length = _content_length(headers.get("Content-Length"))
        self.chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self.encoding = _content_encoding(headers.get("Content-Encoding"))
        #: Bytes as they came off the wire, and after all decoding (what the CSV check sees).
        self.raw_bytes = 0
        self.bytes = 0
        #: Whether the body (after any Content-Encoding) is a gzip file that was decoded.
        self.gzip_file = False
        #: Called with the bytes of a body that is a gzip file, as they come (after any
        #: Content-Encoding): a V2 ``.csv.gz`` is stored as downloaded while its CSV is checked.
        self.tap: Callable[[bytes], object] | None = None

    def chunks(self) -> Iterator[bytes]:
        """Yield the decoded body; raise once it is complete, or for why it is not.

        :raises SEIIncompleteReadError: the body was cut short (retryable).
        :raises SEIResponseError: its end cannot be proven, or a stream is corrupt.
        """
        content = _Inflater(self.encoding) if self.encoding != "identity" else None
        file: _Inflater | None = None
        sniffed = not self._gunzip_files
        if sniffed:
            self._check_framing(compressed_file=False)
        head = b""
        size = self._chunk_size
        while raw := self._read(size):
            pieces = content.feed(raw, size) if content is not None else (raw,)
            for piece in pieces:
                if not sniffed:  # the first bytes tell whether the body is a gzip file
                    head += piece
                    if len(head) < len(_GZIP_MAGIC):
                        continue
                    piece, head, sniffed = head, b"", True
                    if piece.startswith(_GZIP_MAGIC):
                        file, self.gzip_file = _Inflater("gzip"), True
                    self._check_framing(compressed_file=file is not None)
                yield from self._emit(piece, file, size)
        if not sniffed:  # a body shorter than the gzip magic
            self._check_framing(compressed_file=False)
            yield from self._emit(head, None, size)
        self._check_end(content, file)

    def _emit(self, piece: bytes, file: _Inflater | None, size: int) -> Iterator[bytes]:
        if not piece:
            return
        if self.tap is not None and file is not None:
            self.tap(piece)
        for data in file.feed(piece, size) if file is not None else (piece,):
            self.bytes += len(data)
            yield data

    def close(self) -> None:
        """Release the connection."""
        self._response.close()

    def _read(self, size: int) -> bytes:
        try:
            data = self._response.raw.read(size, decode_content=False)
        except ProtocolError as exc:
            raise SEIIncompleteReadError(
                self.content_length, self.raw_bytes, "the connection broke"
            ) from exc
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(f"read timed out after {self.raw_bytes} bytes") from exc
        self.raw_bytes += len(data)
        return data

    def _check_framing(self, compressed_file: bool) -> None:
        """Refuse a body whose end nothing can prove (see the module docstring)."""
        if (
            self.content_length is None
            and not self.chunked
            and self.encoding == "identity"
            and not compressed_file
        ):
            self.close()
            raise SEIResponseError(
                "The response has neither a Content-Length nor chunked framing nor a compressed "
                "body, so a connection dropped mid-report could not be told from a complete "
                "report; refusing it. The SEI API sends a Content-Length or chunks: check for a "
                "proxy in between that strips them."
            )

    def _check_end(self, content: _Inflater | None, file: _Inflater | None) -> None:
        if self.content_length is not None and self.raw_bytes < self.content_length:
            raise SEIIncompleteReadError(self.content_length, self.raw_bytes)
        # An empty body is complete when its framing says so; when only the compression
        # could prove its end, no bytes at all prove nothing.
        framed = self.content_length is not None or self.chunked
        for inflater in (content, file):
            if inflater is not None and (self.raw_bytes or not framed) and not inflater.ended:
                raise SEIIncompleteReadError(
                    self.content_length, self.raw_bytes, f"the {inflater.kind} stream has no end"
                )


def _content_encoding(value: str | None) -> str:
    codings = [c.strip().lower() for c in (value or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return "deflate" if codings[0] == "deflate" else "gzip"
    raise SEIResponseError(
        f"Unsupported Content-Encoding {clean(value or '')!r}: the provider decodes gzip and "
        "deflate (it asks for nothing else)"
    )


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise SEIResponseError(f"Invalid Content-Length {clean(value)!r}")
    return int(text)


def parse_filename(content_disposition: str | None) -> str | None:
    """Parse the file name of a ``Content-Disposition`` header: quoted, unquoted or RFC 5987.

    Only the last path component is kept, control characters removed; whether the name is
    used at all is the writer's decision (it takes plain report names only).
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
    name = clean(str(collapse_rfc2231_value(value)))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else None


def clean(text: str) -> str:
    """``text`` without control characters: fit for one log line."""
    return _CONTROL.sub("", text)


def media_type(content_type: str | None) -> str:
    """``text/csv`` from ``text/csv; charset=utf-8``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def excerpt(data: bytes, redact: Callable[[str], str] = str) -> str:
    """Return a short, single-line, secret-free quote of a body for an error message.

    Redacted before whitespace is folded, so a key split over two lines is still found.
    """
    text = redact(data.decode("utf-8", errors="replace"))
    text = re.sub(r"\s+", " ", clean(text.replace("\r", " ").replace("\n", " "))).strip()
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


def server_message(data: bytes, redact: Callable[[str], str] = str) -> str:
    """Return the server's message: ``message`` from a JSON error body, else a short excerpt."""
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = next((body[k] for k in ("message", "error", "detail") if body.get(k)), None)
        if message is not None:
            text = excerpt(str(message).encode(), redact)
            correlation = body.get("correlationId")
            return f"{text} (correlationId {clean(str(correlation))})" if correlation else text
    return excerpt(data, redact)
