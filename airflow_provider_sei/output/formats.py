"""Output formats: the CSV as sent, gzip-compressed CSV, or Parquet, each written as it streams.

An *encoder* sits between the checked CSV stream and the file handle: ``write(chunk)`` takes
the next bytes of the CSV, ``close()`` finishes the encoding (buffered rows, the gzip trailer,
the Parquet footer) into the handle without closing it, and ``bytes_written`` counts the
bytes handed to the handle. :func:`open_encoder` picks one for a format.

Parquet is written with pyarrow (the ``airflow-provider-sei[parquet]`` extra, imported only
when Parquet is asked for): complete CSV records are collected up to ``block_size`` bytes,
each block parsed by ``pyarrow.csv`` with fixed column types and written as a row group, so
memory holds about one block and its table, whatever the report's size.

**The Parquet schema** comes from the header's names (:func:`column_kind`) and the first
block's values, and then stays fixed:

* ``date_start``, ``date_end`` are ``date32``; ``exported_at`` is ``timestamp[us, tz=UTC]``
  (its value must carry its offset, ``Z`` or ``+00:00``); ``collection_id``, ``team_id``,
  ``export_type``, ``run_id``, ``granularity`` are strings.
* A metric of the catalogue (``Lead Time for Changes (mean)``) is ``float64``.
* A name with the word *date* (``Start_Date``, ``Sprint End Date``) is ``date32``
  (``yyyy-MM-dd``).
* A name holding *rating, name, team, hierarchy, collection, developer, sprint, granularity,
  status* or *email* is a string (``per developer`` in a name is a unit, not a subject).
* Any other column is ``float64``: never ``int64``, as a later row may hold a fraction.
* A ``float64``, ``date32`` or timestamp column whose first block holds a value that is not
  one becomes a string column; a later block with such a value raises ``SEIResponseError``
  naming the column and the value (nulling it would lose data without a word).
* In typed columns empty cells and the placeholders of :data:`NULL_VALUES` (``—``, ``-``,
  ``N/A``...) are nulls; string columns keep every value as sent (an empty cell is ``""``).
* Names are the header's; a repeated name gets ``_2``, ``_3``... (the first keeps its name).
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_sei.exceptions import SEIInvalidRequestError, SEIResponseError
from airflow_provider_sei.metrics import CATALOGUE, CalculationType
from airflow_provider_sei.output.columns import (
    AppendColumns,
    HeaderRecord,
    last_record_end,
    parse_header,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

OUTPUT_FORMATS: tuple[str, ...] = ("csv", "csv.gz", "parquet")
_SUFFIXES = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}

#: zlib level of ``csv.gz``. On report-like CSV (bench/output_formats.py, 256 MiB): level 1
#: compresses ~70 MiB/s to 40% of the size; level 6 (gzip's default) ~12 MiB/s to 34%. Six
#: times slower for a file 14% smaller would make the CPU, not the API, bound an export.
GZIP_LEVEL = 1
#: Parquet codec: zstd (its default level 1) makes files 24% smaller than snappy or lz4 (84 vs
#: 110 MiB from 256 MiB of CSV) for ~8% less throughput; parsing the CSV dominates the time.
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL: int | None = None
#: CSV bytes per row group. 8 MiB holds a 1 GiB conversion to ~45 MiB of RSS growth (~62 with
#: three appended columns); 16 MiB makes files 18% smaller (fewer dictionaries) for ~20 MiB more.
PARQUET_BLOCK_SIZE = 8 << 20
#: Cells that are nulls in a typed (number, date, timestamp) column.
NULL_VALUES: tuple[str, ...] = (
    "", "\u2014", "\u2013", "-", "N/A", "n/a", "NA", "null", "NULL", "None",
)  # fmt: skip

_STRING_COLUMNS = ("collection_id", "team_id", "export_type", "run_id", "granularity")
_FIXED_KINDS = {"date_start": "date", "date_end": "date", "exported_at": "timestamp"}
_FIXED_KINDS.update(dict.fromkeys(_STRING_COLUMNS, "string"))
_STRING_WORDS = (
    "rating", "name", "team", "hierarchy", "collection", "developer",
    "sprint", "granularity", "status", "email",
)  # fmt: skip
_METRIC_COLUMNS = frozenset(
    m.column(calc).casefold() for ms in CATALOGUE.values() for m in ms for calc in CalculationType
)
_PER_UNIT = re.compile(r"\bper\s+\S+")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_PYARROW_MISSING = "csv or csv.gz; parquet needs pyarrow: install airflow-provider-sei[parquet]"


class Sink(Protocol):
    """A binary file handle open for writing (a local file, an fsspec file)."""

    def write(self, data: bytes, /) -> Any: ...


class Encoder(Protocol):
    """Turns a CSV stream into the bytes of an output format, written to a handle."""

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the handle so far."""
        ...

    def write(self, chunk: bytes) -> None:
        """Encode the next chunk of the CSV body (any size, any boundary)."""

    def close(self) -> None:
        """Finish the encoding into the handle; the handle itself stays open."""


def parse_output_format(value: Any) -> str:
    """Return the output format ``value`` names, in lower case.

    :param value: ``csv``, ``csv.gz`` or ``parquet``, any case.
    :raises SEIInvalidRequestError: another value, or ``parquet`` without pyarrow installed.
    """
    fmt = _known_format(value)
    if fmt == "parquet":
        try:
            for module in ("pyarrow", "pyarrow.csv", "pyarrow.parquet"):
                importlib.import_module(module)
        except ImportError:
            raise SEIInvalidRequestError("output_format", value, _PYARROW_MISSING) from None
    return fmt


def _known_format(value: Any) -> str:
    fmt = value.strip().lower() if isinstance(value, str) else value
    if fmt not in OUTPUT_FORMATS:
        raise SEIInvalidRequestError("output_format", value, "one of csv, csv.gz, parquet")
    return fmt


def file_suffix(fmt: str) -> str:
    """Return the file name suffix of an output format (``.csv.gz`` for ``csv.gz``).

    :raises SEIInvalidRequestError: an unknown format (pyarrow is not needed to name a file).
    """
    return _SUFFIXES[_known_format(fmt)]


def open_encoder(fmt: str, handle: Sink, *, columns: Mapping[str, str] | None = None) -> Encoder:
    """Return the encoder that writes the CSV stream to ``handle`` in format ``fmt``.

    :param fmt: an output format (see :func:`parse_output_format`).
    :param handle: a binary file handle open for writing; ``close()`` leaves it open.
    :param columns: metadata columns (name -> value) to append to every row, in any format.
    """
    fmt = parse_output_format(fmt)
    encoder: Encoder
    if fmt == "csv":
        encoder = CSVEncoder(handle)
    elif fmt == "csv.gz":
        encoder = GzipEncoder(handle)
    else:
        encoder = ParquetEncoder(handle)
    return AppendColumns(encoder, columns) if columns else encoder


class CSVEncoder:
    """Pass the CSV through unchanged.

    :param handle: a binary file handle open for writing.
    """

    def __init__(self, handle: Sink) -> None:
        self._handle = handle
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        """Write the chunk as it is."""
        if chunk:
            self._handle.write(chunk)
            self.bytes_written += len(chunk)

    def close(self) -> None:
        """Do nothing: every byte is already written."""


class GzipEncoder:
    """Compress the CSV into one gzip member (a standard ``.gz``, no name, mtime 0).

    :param handle: a binary file handle open for writing.
    :param level: the zlib level, 0-9.
    """

    def __init__(self, handle: Sink, level: int = GZIP_LEVEL) -> None:
        self._handle = handle
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        """Compress the chunk; write whatever compressed bytes zlib hands back."""
        self._put(self._compressor.compress(chunk))

    def close(self) -> None:
        """Write the last compressed bytes and the gzip trailer."""
        self._put(self._compressor.flush())

    def _put(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self.bytes_written += len(data)


def column_kind(name: str) -> str:
    """Return a column's kind from its name alone: ``number``, ``string``, ``date``, ``timestamp``.

    The first block of rows may still turn a ``number``, ``date`` or ``timestamp`` column into
    a string column (see the module's docstring).
    """
    if name in _FIXED_KINDS:
        return _FIXED_KINDS[name]
    folded = name.strip().casefold()
    if folded in _METRIC_COLUMNS:
        return "number"
    if "date" in (word.lower() for word in _WORDS.findall(name)):
        return "date"
    if any(word in _PER_UNIT.sub("", folded) for word in _STRING_WORDS):
        return "string"
    return "number"


def unique_names(names: list[str]) -> list[str]:
    """Return the names with repeats made unique: the second ``A`` becomes ``A_2``, and so on."""
    taken = set(names)
    seen: set[str] = set()
    unique = []
    for name in names:
        if name in seen:
            number = 2
            while f"{name}_{number}" in taken:
                number += 1
            name = f"{name}_{number}"
            taken.add(name)
        seen.add(name)
        unique.append(name)
    return unique


class _CountingSink:
    """The handle as pyarrow sees it: writes are counted, ``close`` leaves the handle open."""

    def __init__(self, handle: Sink) -> None:
        self._handle = handle
        self.count = 0
        self.closed = False
        self.discard = False  # the conversion failed: what pyarrow still writes is dropped

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.discard or getattr(self._handle, "closed", False):
            # pyarrow's writer writes its footer when closed, even when garbage collected
            # after a failed export: nothing more must reach the handle then.
            return size
        self._handle.write(data)
        self.count += size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def tell(self) -> int:
        return self.count

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class ParquetEncoder:
    """Convert the CSV to Parquet, one row group per ``block_size`` bytes of records.

    :param handle: a binary file handle open for writing.
    :param block_size: CSV bytes per row group (complete records: a block ends at a record end
        at or after this size). Memory holds about one block and its table.
    :param compression: the Parquet codec (``zstd``, ``snappy``, ``gzip``, ``none``...).
    :param compression_level: the codec's level; None for its default.
    """

    def __init__(
        self,
        handle: Sink,
        *,
        block_size: int = PARQUET_BLOCK_SIZE,
        compression: str = PARQUET_COMPRESSION,
        compression_level: int | None = PARQUET_COMPRESSION_LEVEL,
    ) -> None:
        parse_output_format("parquet")  # pyarrow, or a clear error
        self._sink = _CountingSink(handle)
        self._block_size = max(1, block_size)
        self._compression = compression
        self._level = compression_level
        self._header: HeaderRecord | None = HeaderRecord()  # None once it is read
        self._names: list[str] = []
        self._types: list[pa.DataType] | None = None  # fixed by the first block
        self._buffer = bytearray()
        self._in_quotes = False  # the buffer ends inside a quoted field
        self._records = 0  # the buffer's first bytes that are complete records
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.row_groups = 0

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the handle (most of them only once the row groups are written)."""
        return self._sink.count

    @property
    def schema(self) -> pa.Schema | None:
        """The Parquet schema, once the first block (or ``close()``) has fixed it."""
        import pyarrow as pa

        if self._types is None:
            return None
        return pa.schema([pa.field(n, t) for n, t in zip(self._names, self._types, strict=True)])

    def write(self, chunk: bytes) -> None:
        """Buffer the chunk; convert and write a block once ``block_size`` bytes of records wait."""
        if self._header is not None:
            found = self._header.feed(chunk)
            if found is None:
                return
            line, chunk = found
            self._set_names(line)
        step = self._block_size
        for start in range(0, len(chunk), step):
            self._feed(chunk[start : start + step] if len(chunk) > step else chunk)

    def close(self) -> None:
        """Write the last block and the Parquet footer; the handle stays open."""
        if self._header is not None:  # no newline at all: a header-only body, or 0 bytes
            self._set_names(bytes(self._header.raw))
        elif self._buffer:
            self._records = len(self._buffer)  # the final record, with no newline
            self._flush()
        if self._types is None:  # no data rows: the header alone decides
            self._types = [_arrow_type(column_kind(name)) for name in self._names]
        self._parquet_writer().close()

    # -- collecting records ----------------------------------------------------------------

    def _set_names(self, raw: bytes) -> None:
        self._header = None
        self._names = unique_names(parse_header(raw))

    def _feed(self, data: bytes) -> None:
        end, self._in_quotes = last_record_end(data, self._in_quotes)
        if end != -1:
            self._records = len(self._buffer) + end + 1
        self._buffer += data
        if self._records and len(self._buffer) >= self._block_size:
            self._flush()

    def _flush(self) -> None:
        """Convert the buffer's complete records to a row group; keep the unfinished one."""
        import pyarrow as pa

        block, rest = self._buffer, bytes(self._buffer[self._records :])
        del block[self._records :]
        self._buffer, self._records = bytearray(rest), 0
        if not self._names:
            return  # no header: nothing to convert
        try:
            if self._types is None:
                table = self._first_table(block)
            else:
                table = self._read(block, self._types)
        except Exception as exc:  # pyarrow.ArrowInvalid; pyarrow may not be imported here
            self._sink.discard = True
            raise self._conversion_error(block, exc) from exc
        del block  # the table holds the rows now: free the CSV before the row group is built
        if table.num_rows:
            self._parquet_writer().write_table(table)
            self.rows += table.num_rows
            self.row_groups += 1
        del table
        # Hand the freed pages back to the OS now: the allocator would keep ~15-20 MiB more.
        pa.default_memory_pool().release_unused()

    # -- converting ------------------------------------------------------------------------

    def _read(self, block: bytearray, types: list[pa.DataType]) -> pa.Table:
        import pyarrow as pa
        from pyarrow import csv

        return csv.read_csv(
            pa.BufferReader(pa.py_buffer(block)),  # no copy of the block
            # One thread: the parse threads' allocator arenas cost ~25-40 MiB of RSS more
            # for no faster conversion on a worker's few cores.
            read_options=csv.ReadOptions(column_names=self._names, use_threads=False),
            parse_options=csv.ParseOptions(
                newlines_in_values=block.find(b'"') != -1, ignore_empty_lines=True
            ),
            convert_options=csv.ConvertOptions(
                column_types=dict(zip(self._names, types, strict=True)),
                null_values=list(NULL_VALUES),
                strings_can_be_null=False,
            ),
        )

    def _first_table(self, block: bytearray) -> pa.Table:
        """Fix the column types on the first block and return its table.

        The types the names suggest are tried first: in the usual case the block converts, and
        is parsed once. Otherwise the block is read as text, and each column holding a value
        that is not of its type becomes a string column.
        """
        import pyarrow as pa

        types = [_arrow_type(column_kind(name)) for name in self._names]
        try:
            table = self._read(block, types)
        except pa.ArrowInvalid:
            text = self._read(block, [pa.string()] * len(types))
            for index, wanted in enumerate(types):
                column = text.column(index)
                if wanted != pa.string() and _first_bad_value(column, wanted) is not None:
                    types[index] = pa.string()
            del text
            table = self._read(block, types)
        self._types = types
        return table

    def _conversion_error(self, block: bytearray, exc: Exception) -> SEIResponseError:
        """Name the column and the value a later block could not convert to its type."""
        import pyarrow as pa

        try:
            text = self._read(block, [pa.string()] * len(self._names))
        except Exception:  # not a matter of types: a row of another shape, bad UTF-8...
            text = None
        for index, wanted in enumerate(self._types or []):
            if text is None or wanted == pa.string():
                continue
            value = _first_bad_value(text.column(index), wanted)
            if value is not None:
                return SEIResponseError(
                    f"Cannot write the report as Parquet: column {self._names[index]!r} is "
                    f"{wanted} (fixed by the report's first rows), but a later row holds "
                    f"{value!r}. Export it as csv or csv.gz instead."
                )
        return SEIResponseError(f"Cannot write the report as Parquet: {exc}")

    def _parquet_writer(self) -> pq.ParquetWriter:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            schema = self.schema
            assert schema is not None
            self._writer = pq.ParquetWriter(
                pa.PythonFile(self._sink, mode="w"),
                schema,
                compression=self._compression,
                compression_level=self._level,
            )
        return self._writer


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "number": pa.float64(),
        "string": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[kind]


def _first_bad_value(column: pa.ChunkedArray, wanted: pa.DataType) -> str | None:
    """Return the first value of a string column that is neither a null cell nor a ``wanted``.

    As the CSV reader does, spaces around a number or a date are ignored (not a timestamp's).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.filter(pc.invert(pc.is_in(column, value_set=pa.array(NULL_VALUES))))
    for chunk in values.chunks:
        trimmed = chunk if pa.types.is_timestamp(wanted) else pc.utf8_trim_whitespace(chunk)
        try:
            trimmed.cast(wanted)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for value, text in zip(chunk.to_pylist(), trimmed.to_pylist(), strict=True):
                try:  # only on failure: find the culprit
                    pa.array([text], pa.string()).cast(wanted)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    return value
    return None
