"""Gzip for response bodies: V2 ``.csv.gz`` downloads and ``Content-Encoding: gzip``.

Gzip output is deterministic (no timestamp in the header: ``mtime`` 0), so the same export
gives the same bytes. A large report (``report_bytes``) is compressed once per request body
and size and kept in a small :class:`GzipCache`, so that a benchmark of a 1 GiB report is
bound by the client, not by the server compressing; and that once is fast: the report is one
block of rows repeated, so the block is deflated once, as a segment that starts without
history and ends on a byte boundary (a full flush), and the segment's bytes are repeated
(:func:`gzip_large_report`). The result is one ordinary gzip member.
"""

from __future__ import annotations

import gzip
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator

from sei_emulator.responses import Body, BytesBody, LargeReportBody, Response

#: gzip's magic number: the first two bytes of every gzip file.
GZIP_MAGIC = b"\x1f\x8b"
_LEVEL = 6


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*``, without ``q=0``)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower().removeprefix("q=")
        try:
            return not params.strip() or float(q) > 0
        except ValueError:
            return False
    return False


def gzip_bytes(data: bytes) -> bytes:
    """Return ``data`` as a gzip file (deterministic: no timestamp)."""
    return gzip.compress(data, compresslevel=_LEVEL, mtime=0)


def _gzip_pieces(body: Body) -> Iterator[bytes]:
    """``body`` compressed as one gzip member, piece by piece."""
    z = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip header, mtime 0
    for piece in body:
        out = z.compress(piece)
        if out:
            yield out
    yield z.flush()


def _deflate_segment(data: bytes | memoryview, last: bool = False) -> bytes:
    """Return ``data`` as raw deflate blocks that need no earlier history and end byte-aligned (or
    end the stream, when ``last``): such segments can be concatenated."""
    z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


def gzip_large_report(body: LargeReportBody) -> bytes:
    """Return a large report as one gzip member, its repeated block deflated only once."""
    full, rest = divmod(body.prefix, len(body.block))
    block = _deflate_segment(body.block)
    crc = zlib.crc32(body.header)
    for _ in range(full):
        crc = zlib.crc32(body.block, crc)
    crc = zlib.crc32(body.tail, zlib.crc32(body.block[:rest], crc))
    return b"".join(
        (
            GZIP_MAGIC + b"\x08\x00\x00\x00\x00\x00\x00\xff",  # deflate, no name, mtime 0
            _deflate_segment(body.header),
            block * full,
            _deflate_segment(body.block[:rest]),
            _deflate_segment(body.tail, last=True),
            struct.pack("<II", crc, (len(body.header) + body.prefix + len(body.tail)) & 0xFFFFFFFF),
        )
    )


class GzipStreamBody(Body):
    """A body of unknown length, compressed while it is sent (so it goes out chunked)."""

    def __init__(self, body: Body) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes | memoryview]:
        yield from _gzip_pieces(self.body)


class GzipCache:
    """Compressed bodies by key, the ``size`` most recently used kept (thread-safe: one
    compression at a time, so concurrent requests for one body compress it once)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key not in self._items:
                self._items[key] = make()
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return self._items[key]


def content_encoded(
    response: Response, cache: GzipCache | None = None, key: Hashable | None = None
) -> Response:
    """``response`` sent with ``Content-Encoding: gzip``; an empty body stays empty.

    A large report is compressed through ``cache`` under ``key``, another body of known
    length whole, a streamed one while it is sent.
    """
    body = response.body
    if body.length == 0:
        return response
    if body.length is None:
        encoded: Body = GzipStreamBody(body)
    elif isinstance(body, LargeReportBody) and cache is not None and key is not None:
        encoded = BytesBody(cache.get(key, lambda: gzip_large_report(body)))
    else:
        encoded = BytesBody(gzip_bytes(body.materialise()))
    headers = {**response.headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return Response(response.status, encoded, response.content_type, headers)
