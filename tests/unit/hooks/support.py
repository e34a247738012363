"""Helpers shared by the hook's unit tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from hostile import HostileServer, Reply

from airflow_provider_sei.hooks.stream import Body
from airflow_provider_sei.models import ContributorReportRequest, TeamReportRequest

REPORTS = "/v2/insights/teams/reports"
#: A report of about 300 KB: a header naming the collection, then rows of two fields.
ROWS = b"Collection Name,value\n" + b"".join(
    b"team-%05d,%d\n" % (i, i * 7919 % 1000) for i in range(20_000)
)
#: The same, ~4 MB: several socket reads and several decoded pieces.
BIG = b"Collection Name,value,rank\n" + b"".join(
    b"team-%06d,%d,%d\n" % (i, i * 7, i % 13) for i in range(200_000)
)
#: zlib window bits: gzip, zlib-wrapped deflate (RFC 9110's "deflate"), raw deflate.
WBITS = {"gzip": 31, "deflate": 15, "raw-deflate": -15}


def team_request(collection_id: str = "123") -> TeamReportRequest:
    return TeamReportRequest.build(
        collection_id=collection_id,
        date_start="2024-01-01",
        date_end="2024-03-31",
        productivity_metrics=["pr_velocity_per_dev", "CODING_DAYS_PER_DEV"],
    )


def contributor_request() -> ContributorReportRequest:
    return ContributorReportRequest.build(
        collection_id="1", date_start="2025-11-03", date_end="2025-11-30", include_ratings=True
    )


def compress(data: bytes, kind: str = "gzip") -> bytes:
    """``data`` as a complete gzip, zlib or raw deflate stream."""
    packer = zlib.compressobj(6, zlib.DEFLATED, WBITS[kind])
    return packer.compress(data) + packer.flush()


def compressed_prefix(data: bytes, keep: int, kind: str = "gzip") -> bytes:
    """A stream that decodes to exactly ``data[:keep]`` and then just stops: flushed, no end.

    What a connection dropped between two flushes of a compressing server delivers: every
    byte decodes, the decoded text ends on a row boundary when ``keep`` does, and only the
    missing end marker (and gzip's CRC/length trailer) says that anything is missing.
    """
    packer = zlib.compressobj(6, zlib.DEFLATED, WBITS[kind])
    return packer.compress(data[:keep]) + packer.flush(zlib.Z_SYNC_FLUSH)


def row_boundary(data: bytes, near: int) -> int:
    """The offset just after the newline at or after ``near``."""
    return data.index(b"\n", near) + 1


def http_encoding(kind: str) -> str:
    """The Content-Encoding value a stream of ``kind`` is sent with."""
    return "gzip" if kind == "gzip" else "deflate"


@contextmanager
def body_of(
    srv: HostileServer, reply: Reply, *, accept_encoding: str = "gzip, deflate", **options: Any
) -> Iterator[Body]:
    """A :class:`Body` over one real response of ``srv`` to a GET (options go to ``Body``)."""
    srv.script(reply)
    with requests.get(
        f"{srv.url}/body",
        stream=True,
        timeout=10,
        headers={"Accept-Encoding": accept_encoding},
    ) as response:
        body = Body(response, **options)
        try:
            yield body
        finally:
            body.close()


def read(body: Body) -> bytes:
    return b"".join(body.chunks())


def chain(exc: BaseException) -> list[str]:
    """The text of an exception, its args, and of every exception it was raised from."""
    texts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        current = current.__cause__ or current.__context__
    return texts


def assert_no_key(api_key: str, *texts: object) -> None:
    for text in texts:
        assert api_key not in str(text)


class Pipe(io.RawIOBase):
    """A writable stream that cannot seek back (a pipe, a socket)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def temp_files(folder: Path) -> list[str]:
    """The provider's temporary files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".sei-export."))
