"""Metadata columns appended to every row of a report while it streams to its destination.

A report says nothing about the request that produced it (which dates, which team, which run),
so a table loaded from many exports cannot tell their rows apart. ``add_columns`` names the
facts to add; the operator resolves their values (strings) and :class:`AppendColumns` appends
``,name1,name2`` to the header and ``,value1,value2`` to every data record, before the record's
own line terminator (``\\r\\n`` or ``\\n``, as the server sent it).

The CSV is RFC 4180 and already checked: a newline is a record end only outside quotes, and
a ``""`` escape toggles the quote state twice, so parity of ``"`` is all it takes to know.
A chunk without quotes (the usual case) costs a few C-level scans and one ``bytes.replace``;
other chunks go line by line. Both are linear, and memory holds one chunk, never the report.
"""

from __future__ import annotations

import ast
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sei.exceptions import SEIInvalidRequestError

if TYPE_CHECKING:
    from airflow_provider_sei.output.formats import Encoder

#: The metadata columns a user may add, in the order the operator documents them.
METADATA_COLUMNS: tuple[str, ...] = (
    "date_start",
    "date_end",
    "granularity",
    "collection_id",
    "team_id",
    "export_type",
    "exported_at",
    "run_id",
)

_BOM = b"\xef\xbb\xbf"


def parse_add_columns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the metadata column names asked for, validated, in the order given.

    :param value: a list of names, a comma-separated string (``"date_start, run_id"``), or a
        list Jinja rendered to a string (``"['date_start', 'run_id']"``). None, ``""`` and
        ``[]`` ask for nothing.
    :raises SEIInvalidRequestError: an unknown name, a name given twice, or a value of
        another type.
    """
    allowed = f"a list of {', '.join(METADATA_COLUMNS)} (each at most once)"
    if value is None:
        return ()
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "(")):
            try:
                items = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise SEIInvalidRequestError("add_columns", value, allowed) from None
        else:
            items = [part for part in text.split(",") if part.strip()]
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise SEIInvalidRequestError("add_columns", value, allowed)
    names = tuple(item.strip().lower() for item in items)
    for name in names:
        if name not in METADATA_COLUMNS:
            raise SEIInvalidRequestError("add_columns", name, allowed)
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise SEIInvalidRequestError("add_columns", value, f"{allowed}; {twice!r} is repeated")
    return names


def csv_fields(values: Iterable[str]) -> bytes:
    """Return ``,v1,v2...``: each value CSV-escaped (quoted only when it must be), UTF-8."""
    out = io.StringIO()
    # With "\r\n" as its terminator the writer quotes values holding "\r" or "\n".
    csv.writer(out, lineterminator="\r\n").writerow(["", *values])
    return out.getvalue().removesuffix("\r\n").encode("utf-8")


def parse_header(raw: bytes) -> list[str]:
    """Return the column names of a header record (its bytes, BOM and terminator allowed)."""
    text = raw.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return next(csv.reader(io.StringIO(text, newline="")), []) if text.strip() else []


def first_record_end(data: bytes | bytearray, in_quotes: bool, start: int = 0) -> tuple[int, bool]:
    """Return the index of the first newline outside quotes in ``data[start:]``, or -1.

    :param in_quotes: whether ``data[start]`` is inside a quoted field.
    :return: the index, and whether the scan ends inside quotes (at the index, or at the end
        of ``data`` when there is none).
    """
    while True:
        newline = data.find(b"\n", start)
        stop = len(data) if newline == -1 else newline
        in_quotes ^= data.count(b'"', start, stop) & 1 == 1
        if newline == -1 or not in_quotes:
            return newline, in_quotes
        start = newline + 1


def last_record_end(data: bytes | bytearray, in_quotes: bool) -> tuple[int, bool]:
    """Return the index of the last newline outside quotes in ``data``, or -1.

    :param in_quotes: whether ``data`` starts inside a quoted field.
    :return: the index, and whether ``data`` ends inside quotes.
    """
    if not in_quotes and data.find(b'"') == -1:
        return data.rfind(b"\n"), False
    inside = in_quotes ^ (data.count(b'"') & 1 == 1)
    at_end, stop = inside, len(data)
    while True:  # walk back newline by newline; each stretch is counted once: linear
        newline = data.rfind(b"\n", 0, stop)
        if newline == -1:
            return -1, at_end
        inside ^= data.count(b'"', newline, stop) & 1 == 1
        if not inside:
            return newline, at_end
        stop = newline


class HeaderRecord:
    """The header record of a CSV stream, collected across chunks of any size."""

    def __init__(self) -> None:
        self.raw = bytearray()  # the bytes collected so far
        self._in_quotes = False

    def feed(self, chunk: bytes) -> tuple[bytes, bytes] | None:
        """Collect a chunk; once the header ends, return it (without ``\\n``) and what follows.

        :return: None while the header goes on.
        """
        start = len(self.raw)
        self.raw += chunk
        end, self._in_quotes = first_record_end(self.raw, self._in_quotes, start)
        if end == -1:
            return None
        return bytes(self.raw[:end]), bytes(self.raw[end + 1 :])


class AppendColumns:
    """Append metadata columns to every record of a CSV stream; an encoder over another.

    The header gains ``,name1,...`` and every data record ``,value1,...`` before its line
    terminator. Blank lines stay blank; a 0-byte body stays 0 bytes; a final record without a
    newline gets its values at :meth:`close`.

    :param inner: the encoder the widened CSV is written to (CSV, gzip, Parquet).
    :param columns: name -> value, in column order (see :func:`parse_add_columns`).
    :raises SEIInvalidRequestError: (on the header) the report already has such a column.
    """

    def __init__(self, inner: Encoder, columns: Mapping[str, str]) -> None:
        self._inner = inner
        self._names = list(columns)
        self._suffix = csv_fields(columns.values()) if columns else b""
        self._lf, self._crlf = self._suffix + b"\n", self._suffix + b"\r\n"
        self._lf_blank, self._crlf_blank = b"\n" + self._lf, b"\n" + self._crlf
        # A value with a line break would confuse the blank-line check: go line by line.
        self._fast = b"\n" not in self._suffix and b"\r" not in self._suffix
        self._header: HeaderRecord | None = HeaderRecord()  # None once it is written
        self._in_quotes = False  # the current record is inside a quoted field
        self._record_empty = True  # the current record has no bytes yet
        self._held_cr = False  # a chunk ended in "\r": its "\n" may start the next chunk

    @property
    def bytes_written(self) -> int:
        """Bytes the inner encoder has handed to the file handle."""
        return self._inner.bytes_written

    def write(self, chunk: bytes) -> None:
        """Widen the next chunk of the CSV body and pass it on."""
        if not chunk:
            return
        if not self._suffix:
            self._inner.write(chunk)
            return
        if self._header is not None:
            found = self._header.feed(chunk)
            if found is None:
                return
            self._header = None
            line, chunk = found
            terminator = b"\r\n" if line.endswith(b"\r") else b"\n"
            self._inner.write(self._widen_header(line.removesuffix(b"\r")) + terminator)
            if not chunk:
                return
        if self._held_cr:
            chunk = b"\r" + chunk
        self._held_cr = chunk.endswith(b"\r")
        if self._held_cr:
            chunk = chunk[:-1]
        out = self._widen(chunk)
        if out:
            self._inner.write(out)

    def close(self) -> None:
        """Finish the last record (one without a newline) and close the inner encoder."""
        if self._header is not None and self._suffix:
            if self._header.raw:  # a header without a newline, and no rows
                header = bytes(self._header.raw)
                terminator = b"\r" if header.endswith(b"\r") else b""
                self._inner.write(self._widen_header(header.removesuffix(b"\r")) + terminator)
            self._header = None
        elif self._suffix:
            open_record = not self._record_empty and not self._in_quotes
            tail = (self._suffix if open_record else b"") + (b"\r" if self._held_cr else b"")
            if tail:
                self._inner.write(tail)
        self._held_cr = False
        self._inner.close()

    # -- the header ------------------------------------------------------------------------

    def _widen_header(self, line: bytes) -> bytes:
        if line in (b"", _BOM):  # no header at all: nothing to name
            return line
        existing = {name.strip().casefold() for name in parse_header(line)}
        for name in self._names:
            if name.casefold() in existing:
                raise SEIInvalidRequestError(
                    "add_columns",
                    name,
                    f"names the report's header does not have already ({name!r} is a column "
                    "of the report: the two would be ambiguous)",
                )
        return line + csv_fields(self._names)

    # -- the records -----------------------------------------------------------------------

    def _widen(self, data: bytes) -> bytes:
        """Insert the values before each record end in ``data`` (no trailing ``\\r``)."""
        if self._fast and not self._in_quotes and data.find(b'"') == -1:
            if data.find(b"\r") == -1:
                out = data.replace(b"\n", self._lf)
                blank = self._lf_blank
            elif data.count(b"\r\n") == data.count(b"\n"):
                out = data.replace(b"\r\n", self._crlf)
                blank = self._crlf_blank
            else:
                return self._widen_lines(data)
            # A blank line gets the values too; spot it in the output, where a long needle
            # is found faster than b"\n\n" in the input.
            if len(out) == len(data):  # no newline at all
                self._record_empty = self._record_empty and not data
                return data
            if out.find(blank) == -1 and not (self._record_empty and out.startswith(self._suffix)):
                self._record_empty = data.endswith(b"\n")
                return out
        return self._widen_lines(data)

    def _widen_lines(self, data: bytes) -> bytes:
        """Take the exact path: look at each line (quotes, blank lines, mixed line ends)."""
        suffix = self._suffix
        lines = data.split(b"\n")
        out: list[bytes] = []
        inside, empty = self._in_quotes, self._record_empty
        for line in lines[:-1]:
            if line.count(b'"') & 1:
                inside = not inside
            if inside:  # a newline within a quoted field: the record goes on
                out += (line, b"\n")
                empty = False
            elif empty and line in (b"", b"\r"):  # a blank line stays blank
                out += (line, b"\n")
            elif line.endswith(b"\r"):
                out += (line[:-1], suffix, b"\r\n")
                empty = True
            else:
                out += (line, suffix, b"\n")
                empty = True
        last = lines[-1]
        self._in_quotes = inside ^ (last.count(b'"') & 1 == 1)
        self._record_empty = empty and not last
        out.append(last)
        return b"".join(out)
