"""The streaming check every export passes through: a CSV report's header, rows and shape.

``CSVCheck`` is fed the decoded body chunk by chunk while it is written, so a report is
never held in memory and never read twice. It reads the header's columns, counts the data
rows (the header excluded; a quoted newline is data, not a row end) and checks each row
against the header, stopping a hostile or broken body as early as possible: every problem
raises :class:`~airflow_provider_sei.exceptions.SEIResponseError` naming the header or the
data row, during ``feed`` as soon as it is seen, or in ``finish`` when only the end shows it.

What it accepts is RFC 4180 CSV: a double quote opens a field only where the field starts,
a closing quote is followed by a separator, a line end or another quote (``""`` is an
escaped quote), and a carriage return outside quotes ends a line only as part of CRLF (or
at the very end of the body). On every body it accepts, its header and row count equal the
``csv`` module's. A blank line before a data row is an error; blank lines at the very end
are not rows; a body whose first line is blank (a body of blank lines) is no report.

Complexity, for a body of ``n`` bytes in chunks of any sizes, whatever the bytes:

- Time O(n). The header is scanned incrementally (each byte once, never again from the
  start). The body goes in blocks of at most 1 MiB, 128 KiB where there are quotes (never
  more than ``max_row_bytes``, so only a block's first row can be over that cap). A block
  without a double quote costs one ``bytes.translate`` pass that keeps only its separators
  and newlines (one pass for both: ``bytes.count`` of one byte is a plain C loop, as slow
  per byte as ``translate``, and two of them took twice as long), a few ``memchr`` scans
  (``find``) and one ``memcmp``: the kept bytes must read ``columns - 1`` separators and a
  newline for every complete row, so the shape of every row is checked exactly. A block
  that holds a carriage return also gets one regex search for a bare one. A block with
  quotes first has each quoted field replaced by one placeholder byte, in one regex pass
  that also checks where each quote stands, then takes the same path. No pattern here backtracks
  more than linearly: each is a literal-led or "unrolled" loop whose every step is forced.
  A block in which these checks find something (a bad or blank row, a stray quote, a bare
  carriage return, a row over its cap) is split in eight and each part checked the same
  way, down to parts of 8 KiB walked byte by byte in Python to name the first problem.
  That walk ends in an error, except at most once per body (where trailing blank lines
  begin): whatever a hostile body holds, it costs at most one block scanned about twice
  more and an 8 KiB walk on top of the scans every body gets.
- Memory O(``max_header_bytes`` + block): only the header line is ever buffered (up to its
  cap); rows are counted, never kept; a block's separators and newlines are copied out (at
  most the block) and compared with a row pattern (at most twice that), and a block with
  quotes is copied while it is looked at. Nothing grows with the body.

Everything is checked exactly: quoting, line ends, the number of fields of every row, blank
lines, the caps.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections.abc import Callable, Collection

from airflow_provider_sei.exceptions import SEIResponseError

#: The widest header the API documents is a few hundred bytes; 1 MiB leaves room for any
#: number of extra columns and still stops a first line that never ends.
DEFAULT_MAX_HEADER_BYTES = 1 << 20
#: A report row is a name and a few dozen numbers (well under 4 KiB); 1 MiB is far beyond
#: any real row and still stops one that never ends before it reaches downstream readers.
DEFAULT_MAX_ROW_BYTES = 1 << 20
# Bytes of body looked at in one go (never more than max_row_bytes, so that only a block's
# first row can be over the cap); with quotes a block is copied, so fewer. A block that
# needs a closer look is split, down to _WALKED bytes walked in Python.
_BLOCK = 1 << 20
_QUOTED_BLOCK = 128 << 10
_WALKED = 8 << 10
_EXCERPT = 200  # characters of a rejected header quoted in the error

_QUOTE, _CR, _LF = 0x22, 0x0D, 0x0A
_BARE_CR = re.compile(rb"\r(?!\n)")  # faster than counting CR and CRLF
_MISSING = "the header names none of the expected columns"


@functools.lru_cache(maxsize=8)
def _patterns(sep: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes]]:
    """Compile the regexes for one separator: a quoted field, a record, complete records.

    A quoted field starts after a separator, a line end or a closing quote (``""``), and its
    closing quote is followed by one of those, a carriage return or the end. The record
    patterns are "unrolled loops": each step is forced, so a failure backtracks linearly.
    """
    s = re.escape(sep)
    field = re.compile(b'"(?<![^' + s + b'\\n"]")[^"]*"(?![^' + s + b'\\r\\n"])')
    record = rb'[^"\n]*(?:"[^"]*"[^"\n]*)*\n'
    return field, re.compile(record), re.compile(b"(?:" + record + b")*")


def _loose(name: str) -> str:
    """Fold a column name: case, whitespace and underscores ignored (``Collection Name``)."""
    return "".join(name.split()).replace("_", "").casefold()


def _row(row: int) -> str:
    return f"data row {row} (header excluded)"


def _blank(data: bytes, start: int, end: int) -> bool:
    """Tell whether ``data[start:end]`` is an empty line's content: nothing, or a lone CR."""
    return end == start or (end == start + 1 and data[start] == _CR)


class CSVCheck:
    """Check a CSV report fed in chunks; ``reset()`` starts over (a retried download).

    Call ``feed`` with each chunk, then ``finish`` after the last one: it closes the last
    line (a final row without a newline counts). Either raises ``SEIResponseError`` for the
    first problem, and raises it again if called after it.

    :param delimiter: the field separator, one byte (not a quote or a line end).
    :param expect_any: column names of which the header must hold at least one (matched
        ignoring case, whitespace and underscores; column order and extra columns do not
        matter); otherwise the body is not a report. Empty: no header check.
    :param redact: applied to the header before an excerpt of it is quoted in an error (the
        caller removes secrets); identity by default.
    :param max_header_bytes: the longest header line accepted, its line end included.
    :param max_row_bytes: the longest data row accepted, its line end included; ``None``: no
        cap. The body is looked at in blocks no longer than this cap, so caps of a few KiB
        or less make the check slower (never wrong).
    :param max_bytes: the largest body accepted; ``None``: no cap.
    """

    def __init__(
        self,
        delimiter: bytes = b",",
        *,
        expect_any: Collection[str] = (),
        redact: Callable[[str], str] = str,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_row_bytes: int | None = DEFAULT_MAX_ROW_BYTES,
        max_bytes: int | None = None,
    ) -> None:
        if len(delimiter) != 1 or not delimiter.isascii() or delimiter in b'"\r\n':
            raise ValueError(
                f"delimiter must be one ASCII byte, not a quote or line end: {delimiter!r}"
            )
        if max_header_bytes < 1 or (max_row_bytes is not None and max_row_bytes < 1):
            raise ValueError("max_header_bytes and max_row_bytes must be at least 1")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._sep = delimiter
        self._field, self._record, self._records = _patterns(delimiter)
        self._before_open = delimiter + b'\n"'  # what a quote opening a field may follow
        self._after_close = delimiter + b'\r\n"'  # what may follow a closing quote
        # Every byte but the separator and the newline: what the fast path's scan drops.
        self._unmarked = bytes(b for b in range(256) if b not in (delimiter[0], _LF))
        if isinstance(expect_any, str):  # one name, not its letters
            expect_any = (expect_any,)
        self._expect = {_loose(name): name for name in expect_any}
        self._redact = redact
        self._max_header = max_header_bytes
        self._max_row = max_row_bytes
        self._max_bytes = max_bytes
        self._block = min(_BLOCK, max_row_bytes or _BLOCK)
        self._qblock = min(_QUOTED_BLOCK, self._block)  # where quotes are: copies are made
        self.reset()

    def reset(self) -> None:
        """Forget everything seen: the hook retries a cut-short body from the start."""
        self.bytes = 0
        self.rows = 0  # complete data rows so far (blank lines are not rows)
        self.columns: list[str] = []
        self.error: str | None = None  # the message raised, once something is wrong
        self._header: bytearray | None = bytearray()  # None once the header line is read
        self._header_quoted = False  # where the header scan stopped: inside quotes
        self._header_problem: str | None = None  # held until the header check has spoken
        self._expected = 0  # separators a row must hold
        self._row_marks = b"\n"  # a whole row's separators and newline
        self._rows_pattern = b""  # _row_marks repeated, as long as a block needed so far
        self._finished = False
        self._new_line()
        self._blank_run = 0  # blank lines just before the current line: fine only at the end

    def _new_line(self) -> None:
        """Start the first line of the body (or of the rows, after the header)."""
        self._seps = 0  # separators outside quotes in the current, unfinished line
        self._length = 0  # its bytes, for max_row_bytes
        self._blank = True  # it is empty so far (or just "\r")
        self._quoted = False  # it is inside a quoted field
        self._last = _LF  # the byte before, outside quotes ('"' while and after quoted)

    @property
    def empty(self) -> bool:
        """Tell whether the report has no data rows (0 bytes, or a header alone): after finish."""
        return self.rows == 0

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk of the body; raise ``SEIResponseError`` on a problem.

        :param chunk: the next bytes of the decoded body.
        """
        if self.error is not None:
            raise SEIResponseError(self.error)
        if self._max_bytes is not None and self.bytes + len(chunk) > self._max_bytes:
            self._feed(chunk[: self._max_bytes - self.bytes])
            where = "the header" if self._header is not None else _row(self._current_row())
            self._fail(
                f"The response exceeds max_bytes={self._max_bytes}: it is longer than "
                f"{self._max_bytes} bytes (the excess begins in {where})"
            )
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        self.bytes += len(chunk)
        start = 0
        if self._header is not None:
            start = self._feed_header(chunk)
            if start == -1:
                return
        size, begin = len(chunk), start
        quote = chunk.find(b'"', begin)  # the first quote from ``begin`` on, or -1
        while begin < size:
            near = self._quoted or (quote != -1 and quote < begin + self._block)
            end = min(begin + (self._qblock if near else self._block), size)
            self._block_of(chunk, begin, end, quote)
            begin = end
            if quote != -1 and quote < end:
                quote = chunk.find(b'"', end)

    def _block_of(self, chunk: bytes, start: int, end: int, quote: int) -> None:
        """Account for ``chunk[start:end]``: fast, else in smaller blocks, else walked."""
        if self._fast(chunk, start, end, quote):
            return
        if end - start <= _WALKED:
            self._walk(chunk, start, end)
            return
        step = max(_WALKED, (end - start) // 8)
        for begin in range(start, end, step):  # the first problem is in one of them
            if quote != -1 and quote < begin:
                quote = chunk.find(b'"', begin)
            self._block_of(chunk, begin, min(begin + step, end), quote)

    def _current_row(self) -> int:
        return self.rows + self._blank_run + 1

    def _fail(self, message: str) -> None:
        self.error = message
        raise SEIResponseError(message)

    # -- the header ------------------------------------------------------------------------

    def _feed_header(self, chunk: bytes) -> int:
        """Add ``chunk`` to the header; return where the rows start in it, or -1."""
        assert self._header is not None
        room = self._max_header - len(self._header)
        stop = min(len(chunk), room)
        end = self._header_end(chunk, stop)
        line_end = stop if end == -1 else end
        if self._header_problem is None:
            self._check_header_bytes(chunk, self._skip_bom(chunk, line_end), line_end)
        self._header += memoryview(chunk)[:line_end]
        if end == -1:
            if len(chunk) > room:
                self._reject_header(
                    f"The response exceeds max_header_bytes={self._max_header}: its header "
                    f"line is longer than {self._max_header} bytes"
                )
            return -1
        self._set_header()
        return end + 1

    def _header_end(self, chunk: bytes, stop: int) -> int:
        """Find the newline ending the header (outside quotes) in ``chunk``; -1 if none.

        Each byte is scanned once: whether it stopped inside quotes is carried over.
        """
        pos = 0
        if self._header_quoted:
            pos = chunk.find(b'"', 0, stop) + 1
            if pos == 0:
                return -1
            self._header_quoted = False
        match = self._record.match(chunk, pos, stop)
        if match:
            return match.end() - 1
        self._header_quoted = chunk.count(b'"', pos, stop) % 2 == 1
        return -1

    def _skip_bom(self, chunk: bytes, stop: int) -> int:
        """Count the bytes at the start of ``chunk`` that belong to a byte order mark."""
        assert self._header is not None
        seen = len(self._header)
        if seen >= len(codecs.BOM_UTF8) or not codecs.BOM_UTF8.startswith(self._header):
            return 0  # past the mark, or there is none
        head = bytes(self._header) + chunk[: min(stop, len(codecs.BOM_UTF8) - seen)]
        if codecs.BOM_UTF8.startswith(head):
            return len(head) - seen
        if seen:  # the bytes taken for a mark were not one: they are text
            self._last = self._header[-1]
        return 0

    def _check_header_bytes(self, chunk: bytes, start: int, stop: int) -> None:
        """Check the header's quotes and line ends as a row's (``stop``: its newline)."""
        block = self._qblock
        for begin in range(start, stop, block):
            end = min(begin + block, stop)
            stripped = self._strip(chunk, begin, end, chunk.find(b'"', begin, end))
            if stripped is None:
                try:
                    self._walk(chunk, begin, end)  # names the first problem
                except SEIResponseError as exc:
                    if not self._expect:
                        raise
                    self.error, self._header_problem = None, str(exc)
                    return  # the header check speaks first, once the header is read
            else:
                self._quoted = stripped[-1]
                self._last = _QUOTE if self._quoted else chunk[end - 1]

    def _set_header(self) -> None:
        """Parse and check the header line; the rows start after it."""
        assert self._header is not None
        if self._header_problem is not None:
            self._reject_header(self._header_problem)
        raw = bytes(self._header).removesuffix(b"\r").removeprefix(codecs.BOM_UTF8)
        self._header = None
        text = raw.decode("utf-8", errors="replace")
        if not text:
            self._fail("The response is not a CSV report: its header (first line) is empty")
        if self._expect:
            self._check_expected(text)
        try:
            self.columns = next(csv.reader([text], delimiter=self._sep.decode(), strict=True))
        except csv.Error as exc:
            self._fail(f"The response is not valid CSV: its header cannot be parsed: {exc}")
        self._expected = len(self.columns) - 1
        self._row_marks = self._sep * self._expected + b"\n"
        self._rows_pattern = b""
        self._new_line()

    def _reject_header(self, problem: str) -> None:
        """Raise ``problem`` -- or that the body is no report, when that is what it shows."""
        if self._expect and self._header is not None:
            raw = bytes(self._header).removesuffix(b"\r").removeprefix(codecs.BOM_UTF8)
            self._check_expected(raw.decode("utf-8", errors="replace"))
        self._fail(problem)

    def _check_expected(self, text: str) -> None:
        try:
            names = next(csv.reader([text], delimiter=self._sep.decode()))
        except csv.Error:  # e.g. a field over csv.field_size_limit(): still look at the names
            names = [name.strip('"') for name in text.split(self._sep.decode())]
        if not any(_loose(name) in self._expect for name in names):
            excerpt = " ".join(self._redact(text).split())
            if len(excerpt) > _EXCERPT:
                excerpt = excerpt[: _EXCERPT - 1].rstrip() + "…"
            names = list(self._expect.values())
            expected = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            self._fail(f"The response is not a report: {_MISSING} ({expected}): {excerpt!r}")

    # -- the rows: the fast path -----------------------------------------------------------

    def _strip(
        self, chunk: bytes, start: int, end: int, quote: int
    ) -> tuple[bytes, int, int, int, bytes | None, bool] | None:
        """Check the quotes and line ends of ``chunk[start:end]``; strip its quoted fields.

        ``quote`` is where the first double quote from ``start`` on is (-1: nowhere).

        Return ``(data, lo, hi, prefix, original, quoted)``: ``data[lo:hi]`` is the block
        after the ``prefix`` bytes that close a quoted field of earlier blocks, with each
        quoted field replaced by one byte (``original``: that part as it was, if it had
        quotes); ``quoted``: the block ends inside a quoted field. None when ``_walk`` must
        name a problem. Nothing is changed.
        """
        prefix, last = 0, self._last
        if self._quoted:  # a quoted field runs on from the previous block
            if quote == -1 or quote >= end:
                return b"", 0, 0, end - start, None, True
            prefix, start = quote + 1 - start, quote + 1
            if start == end:
                return b"", 0, 0, prefix, None, False
            quote = chunk.find(b'"', start, end)
        first = chunk[start]
        if (
            (last == _CR and first != _LF)
            or (last == _QUOTE and first not in self._after_close)
            or (first == _QUOTE and last not in self._before_open)
        ):
            return None
        if quote == -1 or quote >= end:
            data, lo, hi, original, quoted = chunk, start, end, None, False
        else:
            original = chunk[start:end]
            data, quoted = self._field.sub(b"q", original), False
            open_at = data.find(b'"')
            if open_at != -1:  # fine only as the last quote, opening a field that runs on
                last_quote = original.rfind(b'"')
                if len(data) - open_at != len(original) - last_quote or (
                    last_quote and original[last_quote - 1] not in self._before_open
                ):
                    return None
                data, quoted = data[:open_at] + b"q", True
            lo, hi = 0, len(data)
        if data.find(b"\r", lo, hi) != -1:  # each CR must end a line (one at the end may)
            bare = _BARE_CR.search(data, lo, hi)
            if bare is not None and bare.start() != hi - 1:
                return None
        return data, lo, hi, prefix, original, quoted

    def _fast(self, chunk: bytes, start: int, end: int, quote: int) -> bool:
        """Account for ``chunk[start:end]`` with C-level scans, when all is well.

        ``quote`` is where the first double quote from ``start`` on is (-1: nowhere).

        Return False, with nothing changed, when the block needs ``_walk``: something in it
        is wrong (or blank lines begin).
        """
        if self._blank_run:
            return self._fast_blank(chunk, start, end)
        stripped = self._strip(chunk, start, end, quote)
        if stripped is None:
            return False
        data, lo, hi, prefix, original, quoted = stripped
        cap, length, size = self._max_row, self._length, end - start
        # The block's separators and newlines, in order, in one pass (bytes.count would take
        # one pass each): complete rows must read exactly ``row_marks`` each.
        marks = (data if lo == 0 and hi == len(data) else data[lo:hi]).translate(
            None, self._unmarked
        )
        last_mark = marks.rfind(b"\n")
        if last_mark == -1:
            if cap is not None and length + size > cap:
                return False
            self._seps += len(marks)
            self._blank = self._blank and not prefix and _blank(data, lo, hi)
            self._length += size
        else:
            first_nl, last_nl = data.find(b"\n", lo, hi), data.rfind(b"\n", lo, hi)
            if self._blank and not prefix and _blank(data, lo, first_nl):
                return False  # the first line is blank
            if (
                last_nl != first_nl
                and (  # the last line is blank: maybe trailing blank lines begin
                    data[last_nl - 1] == _LF or data[last_nl - 2 : last_nl] == b"\n\r"
                )
            ):
                return False
            if not self._expected and (  # one column: separators cannot reveal a blank line
                data.find(b"\n\n", lo, hi) != -1 or data.find(b"\n\r\n", lo, hi) != -1
            ):
                return False
            lines = self._complete_rows(marks, last_mark)
            if not lines:
                return False
            if cap is not None:  # rows inside the block are shorter than it, so than the cap
                if length + size > cap:
                    head = first_nl + 1 - lo if original is None else self._first_end(original)
                    if length + prefix + head > cap:
                        return False
                self._length = (
                    hi - last_nl - 1 if original is None else self._tail(original, quoted)
                )
            self.rows += lines
            self._seps = len(marks) - last_mark - 1
            self._blank = _blank(data, last_nl + 1, hi)
        self._quoted = quoted
        self._last = _QUOTE if quoted else chunk[end - 1]
        return True

    def _complete_rows(self, marks: bytes, last: int) -> int:
        """Count the rows that ``marks[: last + 1]`` ends; 0 if any has the wrong shape.

        ``marks`` holds a block's separators and newlines; the first line continues the
        current one (``_seps`` separators so far), every later one is a whole row.
        """
        first = marks.find(b"\n")
        if self._seps + first != self._expected:
            return 0
        rest = last - first  # the whole rows after the first line end
        width = self._expected + 1
        if rest % width:
            return 0
        if rest:
            if len(self._rows_pattern) < rest:
                self._rows_pattern = self._row_marks * (2 * rest // width)
            if not self._rows_pattern.startswith(marks[first + 1 : last + 1]):
                return 0
        return 1 + rest // width

    def _first_end(self, data: bytes) -> int:
        """Find where the first record of ``data`` ends (it has one), quotes considered."""
        match = self._record.match(data)
        assert match is not None
        return match.end()

    def _tail(self, data: bytes, quoted: bool) -> int:
        """Count the bytes after the last record end in ``data`` (it has one), quotes considered.

        The last newline is usually that end: it is when the quotes after it leave the block
        in the state it ends in. A few steps back cover a quoted newline or two; past them a
        regex finds the end in one linear pass.
        """
        at = data.rfind(b"\n")
        quotes = data.count(b'"', at + 1)
        for _ in range(4):
            if quotes % 2 == quoted:
                return len(data) - at - 1
            before = data.rfind(b"\n", 0, at)
            quotes += data.count(b'"', before + 1, at)
            at = before
        end = self._records.match(data)
        assert end is not None
        return len(data) - end.end()

    def _fast_blank(self, chunk: bytes, start: int, end: int) -> bool:
        """Take the fast path after a blank line: only blank lines may follow (at the end)."""
        crs, lfs = chunk.count(b"\r", start, end), chunk.count(b"\n", start, end)
        if (
            crs + lfs != end - start
            or (self._last == _CR and chunk[start] != _LF)
            or crs != chunk.count(b"\r\n", start, end) + (chunk[end - 1] == _CR)
            or (self._max_row is not None and self._max_row < 2)
        ):
            return False
        self._blank_run += lfs
        self._length = (
            self._length + end - start if not lfs else end - 1 - chunk.rfind(b"\n", start, end)
        )
        self._last = chunk[end - 1]
        return True

    # -- the body: the exact walk ----------------------------------------------------------

    def _walk(self, chunk: bytes, start: int, end: int) -> None:
        """Account for ``chunk[start:end]`` byte by byte, raising for the first problem."""
        sep, expected = self._sep[0], self._expected
        cap = self._max_row if self._header is None else None  # the header has its own
        before_open, after_close = self._before_open, self._after_close
        rows, blank_run = self.rows, self._blank_run
        seps, length, blank = self._seps, self._length, self._blank
        quoted, last = self._quoted, self._last
        for byte in memoryview(chunk)[start:end]:
            length += 1
            if cap is not None and length > cap:
                self._fail(
                    f"The report exceeds max_row_bytes={cap}: {_row(rows + blank_run + 1)} "
                    f"is longer than {cap} bytes"
                )
            if quoted:
                quoted = byte != _QUOTE
                continue
            if last == _CR and byte != _LF:
                self._fail_row(
                    rows + blank_run + 1,
                    "has a carriage return outside quotes and not before a newline",
                )
            if last == _QUOTE and byte not in after_close:
                self._fail_row(rows + 1, "has text after a closing double quote")
            if byte == _LF:
                if blank:
                    blank_run += 1
                else:
                    if seps != expected:
                        self._fail(self._shape(rows + 1, seps))
                    rows += 1
                seps, length, blank = 0, 0, True
            elif byte != _CR:
                if blank_run:
                    self._fail(f"The report does not match its header: {_row(rows + 1)} is empty")
                blank = False
                if byte == sep:
                    seps += 1
                elif byte == _QUOTE:
                    if last not in before_open:
                        self._fail_row(rows + 1, "has a double quote inside an unquoted field")
                    quoted = True
            last = byte
        self.rows, self._blank_run = rows, blank_run
        self._seps, self._length, self._blank = seps, length, blank
        self._quoted, self._last = quoted, last

    def _shape(self, row: int, seps: int) -> str:
        return (
            f"The report does not match its header: {_row(row)} has {seps + 1} fields, "
            f"the header {len(self.columns)} columns"
        )

    def _fail_row(self, row: int, what: str) -> None:
        if self._header is not None:
            self._fail(f"The response is not valid CSV: its header {what}")
        self._fail(f"The report is not valid CSV: {_row(row)} {what}")

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Close the last line; raise ``SEIResponseError`` for the first problem, if any."""
        if self.error is not None:
            raise SEIResponseError(self.error)
        if self._finished:
            return
        self._finished = True
        if self._header is not None:
            if self._header_quoted or self._header_problem is not None:
                self._reject_header(
                    self._header_problem
                    or "The response is not valid CSV: its header has an unterminated quoted field"
                )
            if self._header:
                self._set_header()
            return
        if self._quoted:
            self._fail_row(self._current_row(), "has an unterminated quoted field")
        if not self._blank:  # a final row without a newline
            if self._seps != self._expected:
                self._fail(self._shape(self.rows + 1, self._seps))
            self.rows += 1
        self._blank_run = 0  # trailing blank lines are not rows
