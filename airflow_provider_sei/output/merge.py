"""Stitch many CSV reports into one: a single header that is the union of the columns, no row twice.

A team export holds the team *and all its child teams*, so exports of a parent and of its
children repeat the children's rows. :func:`merge_csv` streams the sources twice -- once for
their headers (the first line only), once for their rows -- so memory holds the union header
and one 16-byte digest per distinct row, never a report. Rows keep the order of the sources
and, within a source, their own order; the first occurrence of a row wins. A column missing
from a source is left empty in that source's rows.

Columns are matched by name. A name repeated within one header stays repeated in the union
(its second occurrence is a column of its own), so no value is lost.

With ``source_column``, the merged CSV names in one more column (the last) the source each
row came from, e.g. the team whose export held it. Deduplication ignores that column: a
child team's row repeated in its parent's export is kept once, labelled with the source it
was first read from.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from airflow_provider_sei.exceptions import SEIInvalidRequestError

ColumnKey = tuple[str, int]  # (name, occurrence of that name in its header: 0, 1, ...)

FLUSH_CHARS = 1 << 20  # rows are handed to the sink in writes of about 1 MiB
_SEPARATOR = "\x1f"  # joins a row's values before hashing; cannot be confused with a comma


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_csv` wrote.

    :param columns: the merged header.
    :param rows: data rows written (header excluded).
    :param duplicates: rows dropped because an identical row was already written.
    :param sources: sources with a header (0-byte sources contribute nothing).
    """

    columns: list[str]
    rows: int
    duplicates: int
    sources: int


def column_keys(header: Sequence[str]) -> list[ColumnKey]:
    """Each column as (name, occurrence), so repeated names stay distinct."""
    seen: dict[str, int] = {}
    keys = []
    for name in header:
        keys.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return keys


def union_header(headers: Iterable[Sequence[str]]) -> list[ColumnKey]:
    """Return the union of the headers' columns, in order of first appearance."""
    union: dict[ColumnKey, None] = {}
    for header in headers:
        union.update(dict.fromkeys(column_keys(header)))
    return list(union)


def row_digest(values: Sequence[str]) -> bytes:
    """Return a 16-byte fingerprint of a row's values (what deduplication remembers)."""
    return hashlib.blake2b(_SEPARATOR.join(values).encode(), digest_size=16).digest()


@contextmanager
def _text(source: Any) -> Iterator[IO[str]]:
    """Yield a text reader over a path or a binary file object (left open for the caller)."""
    if hasattr(source, "read"):
        source.seek(0)
        wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
        try:
            yield wrapper
        finally:
            wrapper.detach()
    else:
        with open(source, encoding="utf-8-sig", newline="") as handle:
            yield handle


def read_header(source: Any) -> list[str] | None:
    """Read the first line of a CSV source as a list of column names; None for an empty source."""
    with _text(source) as handle:
        return next(csv.reader(handle), None)


def _line_terminator(source: Any) -> str:
    """``\\r\\n`` when the source's first line ends so, else ``\\n`` (keep the server's style)."""
    with _text(source) as handle:
        first = handle.readline()
    return "\r\n" if first.endswith("\r\n") else "\n"


def merge_csv(
    sources: Sequence[Any],
    sink: BinaryIO,
    *,
    dedupe: bool = True,
    source_column: str | Sequence[str] | None = None,
    labels: Sequence[str | Sequence[str]] | None = None,
) -> MergeResult:
    """Write the sources' rows under one union header to ``sink`` (UTF-8 bytes).

    :param sources: paths or seekable binary files, in the order their rows should appear;
        or ``(path_or_file, label)`` pairs, the label being the ``source_column`` value of
        that source's rows.
    :param sink: a writable binary file; it is not closed.
    :param dedupe: drop a row identical (over the union header) to one already written; the
        first occurrence wins, so the order of the sources decides which one is kept.
    :param source_column: the name of a last column that holds each row's source label
        (e.g. ``source_team_id``), or several names whose values each label gives (a label is
        then a sequence of as many strings); None for no such column.
    :param labels: the sources' labels, one per source, when ``sources`` are not pairs.
    :raises SEIInvalidRequestError: labels that do not match the sources, or a
        ``source_column`` that a report's header already has.
    """
    extra = [source_column] if isinstance(source_column, str) else list(source_column or ())
    paths, tags = _split_labels(sources, labels, extra)
    headers = [read_header(source) for source in paths]
    present = [(s, h, t) for s, h, t in zip(paths, headers, tags, strict=True) if h]
    if not present:
        return MergeResult(columns=[], rows=0, duplicates=0, sources=0)
    union = union_header(h for _, h, _ in present)
    names = [name for name, _ in union]
    clash = [name for name in extra if name in names]
    if clash:
        raise SEIInvalidRequestError(
            "source_column", clash[0], "a name that is not a column of the reports"
        )
    names += extra
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=_line_terminator(present[0][0]))
    writer.writerow(names)
    seen: set[bytes] = set()
    rows = duplicates = 0
    width = len(union)
    positions = {key: index for index, key in enumerate(union)}
    for source, header, tag in present:
        mapping = [positions[key] for key in column_keys(header)]
        identity = mapping == list(range(width))
        with _text(source) as handle:
            reader = csv.reader(handle)
            next(reader, None)  # the header
            for row in reader:
                if not row:
                    continue  # a blank line is no row
                values = row if identity and len(row) == width else _remap(row, mapping, width)
                if dedupe:
                    digest = row_digest(values)
                    if digest in seen:
                        duplicates += 1
                        continue
                    seen.add(digest)
                writer.writerow([*values, *tag] if extra else values)
                rows += 1
                if buffer.tell() >= FLUSH_CHARS:
                    _flush(buffer, sink)
    _flush(buffer, sink)
    return MergeResult(columns=names, rows=rows, duplicates=duplicates, sources=len(present))


def _split_labels(
    sources: Sequence[Any], labels: Sequence[Any] | None, extra: list[str]
) -> tuple[list[Any], list[tuple[str, ...]]]:
    """Return the sources without their labels, and each source's values of ``extra``."""
    pairs = [isinstance(s, tuple) and len(s) == 2 for s in sources]
    if any(pairs) and not all(pairs):
        raise SEIInvalidRequestError(
            "sources", sources, "all paths (or files), or all (path_or_file, label) pairs"
        )
    paths = [s[0] for s in sources] if any(pairs) else list(sources)
    raw = [s[1] for s in sources] if any(pairs) else None
    if labels is not None:
        if raw is not None or len(labels) != len(paths):
            raise SEIInvalidRequestError(
                "labels", labels, f"one label per source ({len(paths)}), with no pairs"
            )
        raw = list(labels)
    if not extra:
        return paths, [()] * len(paths)
    if raw is None:
        raise SEIInvalidRequestError(
            "source_column", extra[0], "a column name together with the sources' labels"
        )
    tags = [(str(label),) if isinstance(label, str) else tuple(map(str, label)) for label in raw]
    if any(len(tag) != len(extra) for tag in tags):
        raise SEIInvalidRequestError(
            "labels", labels, f"{len(extra)} value(s) per source, one for each of {extra}"
        )
    return paths, tags


def _flush(buffer: io.StringIO, sink: BinaryIO) -> None:
    """Hand the sink the buffered rows as one write (object stores like few, large writes)."""
    if buffer.tell():
        sink.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()


def _remap(row: list[str], mapping: list[int], width: int) -> list[str]:
    values = [""] * width
    for value, index in zip(row, mapping, strict=False):  # extra fields are dropped
        values[index] = value
    return values
