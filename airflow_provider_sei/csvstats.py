"""Streaming statistics of a CSV body: header columns, data rows and a row-shape check.

``CSVStats`` is fed the response chunk by chunk while it is written, so a report is never
held in memory and never read twice. It counts data rows (the header excluded) correctly
when quoted fields contain newlines, and checks that every row has as many fields as the
header, so a report whose rows do not match its header is caught before it replaces the
previous file.

Speed is the point: a chunk without a double quote (the usual case) costs three C-level
scans (``bytes.count`` of newlines and commas, ``bytes.find`` of a quote) and one
comparison: every complete line must hold exactly ``columns - 1`` separators, so the
chunk's separators must equal ``(columns - 1) x lines``. Only when that sum does not hold
are the chunk's lines checked one by one, to name the first bad row. Chunks with quotes
have their quoted sections replaced by one regex pass first (a quoted field's commas and
newlines are data, not structure), then take the same path. A row with too many fields and
another with too few in the same chunk cancel out in the sum: this is a cheap guard against
a truncated or mangled report, not a full CSV validator.
"""

from __future__ import annotations

import codecs
import csv
import re

from airflow_provider_sei.exceptions import SEIResponseError

_QUOTED = re.compile(rb'"[^"]*"')  # a closed quoted section; '""' escapes pair up the same way
_BLANK = frozenset((b"", b"\r"))


class CSVStats:
    """Counts and checks a CSV body fed in chunks; ``reset()`` starts over (a new attempt).

    After the last chunk, call ``finish()``: it closes the last line (a final row without a
    newline counts) and raises ``SEIResponseError`` naming the first bad row, if any.

    :param delimiter: the field separator, one byte.
    """

    def __init__(self, delimiter: bytes = b",") -> None:
        self._sep = delimiter
        self.reset()

    def reset(self) -> None:
        """Forget everything seen: the hook retries a cut-short body from the start."""
        self.bytes = 0
        self.rows = 0
        self.columns: list[str] = []
        self.error: str | None = None
        self._header = bytearray()  # the header's raw bytes until its line ends
        self._in_header = True
        self._in_quotes = False  # inside a quoted field that started in an earlier chunk
        self._partial = 0  # separators seen on the current, unfinished line
        self._partial_empty = True  # the unfinished line is empty so far (or just "\r")
        self._blank_run = 0  # blank lines seen in a row; allowed only at the very end
        self._first_blank = 0

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk of the body."""
        if not chunk:
            return
        self.bytes += len(chunk)
        if self._in_header:
            chunk = self._feed_header(chunk)
            if not chunk:
                return
        if self.error is not None:  # the first bad row is named; count rows, skip checks
            self.rows += self._strip_quotes(chunk).count(b"\n")
            return
        self._feed_body(self._strip_quotes(chunk) if self._needs_strip(chunk) else chunk)

    def _needs_strip(self, chunk: bytes) -> bool:
        return self._in_quotes or chunk.find(b'"') != -1

    def _strip_quotes(self, chunk: bytes) -> bytes:
        """The chunk without its quoted sections; carries an open quote to the next chunk."""
        if not self._needs_strip(chunk):
            return chunk
        # Each quoted section becomes one placeholder byte: the line keeps a field, not text.
        if self._in_quotes:
            close = chunk.find(b'"')
            if close == -1:
                return b"q"
            self._in_quotes = False
            chunk = b"q" + chunk[close + 1 :]
        stripped = _QUOTED.sub(b"q", chunk)
        open_at = stripped.find(b'"')
        if open_at != -1:  # a quoted field runs on into the next chunk
            self._in_quotes = True
            stripped = stripped[:open_at] + b"q"
        return stripped

    def _feed_body(self, data: bytes) -> None:
        sep = self._sep
        lines = data.count(b"\n")
        if self._blank_run and data.strip(b"\r\n"):
            self._fail(self._first_blank, "is empty")
            self.rows += lines
            return
        if lines == 0:
            self._partial += data.count(sep)
            self._partial_empty = self._partial_empty and data in _BLANK
            return
        last = data.rfind(b"\n")
        expected = self._expected()
        consistent = self._partial + data.count(sep, 0, last) == expected * lines
        if consistent and not self._blank_run and (expected or not self._has_blank_line(data)):
            self.rows += lines
            self._partial = data.count(sep, last + 1)
            self._partial_empty = data[last + 1 :] in _BLANK
            return
        self._check_lines(data)

    def _has_blank_line(self, data: bytes) -> bool:
        # Only reached for single-column CSVs, where separators cannot reveal a blank line.
        return (
            b"\n\n" in data
            or b"\n\r\n" in data
            or (self._partial_empty and self._partial == 0 and data[:1] in (b"\n", b"\r"))
        )

    def _check_lines(self, data: bytes) -> None:
        """The exact path: look at each complete line of the chunk."""
        sep, expected = self._sep, self._expected()
        pieces = data.split(b"\n")
        for index, line in enumerate(pieces[:-1]):
            row = self.rows + 1
            fields = line.count(sep) + (self._partial if index == 0 else 0)
            empty = line in _BLANK and (index > 0 or self._partial_empty)
            self.rows = row
            if empty:
                if not self._blank_run:
                    self._first_blank = row
                self._blank_run += 1
                continue
            if self._blank_run:
                self._fail(self._first_blank, "is empty")
            elif fields != expected:
                self._fail(row, self._shape(fields))
            self._blank_run = 0
            if self.error is not None:
                self.rows += len(pieces) - 2 - index
                break
        self._partial = pieces[-1].count(sep)
        self._partial_empty = pieces[-1] in _BLANK

    def _shape(self, separators: int) -> str:
        return f"has {separators + 1} fields, the header {len(self.columns)} columns"

    def _expected(self) -> int:
        return max(len(self.columns) - 1, 0)

    def _fail(self, row: int, what: str) -> None:
        if self.error is None:
            self.error = f"data row {row} (header excluded) {what}"

    # -- the header ------------------------------------------------------------------------

    def _feed_header(self, chunk: bytes) -> bytes:
        """Collect the header line; return what follows it in ``chunk``."""
        start = len(self._header)
        self._header += chunk
        end = _line_end(self._header, start)
        if end == -1:
            return b""
        rest = bytes(self._header[end + 1 :])
        self._set_columns(bytes(self._header[:end]))
        return rest

    def _set_columns(self, raw: bytes) -> None:
        self._in_header = False
        self._header = bytearray()
        text = codecs.decode(raw.rstrip(b"\r"), "utf-8-sig", errors="replace")
        self.columns = next(csv.reader([text], delimiter=self._sep.decode()), []) if text else []

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Close the last line and raise ``SEIResponseError`` for a row that does not match."""
        if self._in_header:
            if self._header:
                self._set_columns(bytes(self._header))
            return
        if self._in_quotes and self.error is None:
            self._fail(self.rows + 1, "has an unterminated quoted field")
        if self.error is None and not self._partial_empty:
            self.rows += 1
            if self._blank_run:
                self._fail(self._first_blank, "is empty")
            elif self._partial != self._expected():
                self._fail(self.rows, self._shape(self._partial))
        elif self.error is None:
            self.rows -= self._blank_run  # trailing blank lines are not rows
        self._partial, self._partial_empty, self._blank_run = 0, True, 0
        if self.error is not None:
            raise SEIResponseError(f"The report does not match its header: {self.error}")


def _line_end(buffer: bytearray, start: int) -> int:
    """Index of the first newline outside quotes in ``buffer``, or -1."""
    newline = buffer.find(b"\n", start)
    if newline == -1 or buffer.find(b'"', 0, newline) == -1:
        return newline
    in_quotes = False
    for index, byte in enumerate(buffer):
        if byte == 0x22:
            in_quotes = not in_quotes
        elif byte == 0x0A and not in_quotes:
            return index
    return -1
