"""One attempt of an export: a response body, checked and encoded, into a staged file.

:func:`write_body` is what the hook runs for every attempt, for the legacy reports and the V2
downloads alike: choose the file (the server's plain name, or the fallback), open a fresh
staged file, stream the body through the CSV check and the output encoder into it, finish the
check, then publish -- or, on any failure, abort, leaving the destination as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_sei.exceptions import SEIDestinationError
from airflow_provider_sei.hooks.stream import Body
from airflow_provider_sei.output.csvcheck import CSVCheck
from airflow_provider_sei.output.formats import file_suffix, open_encoder
from airflow_provider_sei.output.writer import Target, public_uri, report_name
from airflow_provider_sei.progress import ExportProgress


@dataclass(frozen=True)
class OutputOptions:
    """What to write, beyond the bytes.

    :param output_format: ``csv``, ``csv.gz`` or ``parquet``.
    :param columns: metadata columns appended to every row (name -> value), in order.
    :param overwrite: replace an existing file; False fails before the body is read.
    :param write_empty: write a report without data rows; False leaves the destination as it
        was and returns a result with ``written=False``.
    :param keep_gzip: store a body that is itself a gzip file as downloaded (``csv.gz`` only,
        without appended columns), instead of compressing it again.
    """

    output_format: str = "csv"
    columns: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = True
    write_empty: bool = True
    keep_gzip: bool = True


@dataclass(frozen=True)
class CSVLimits:
    """Caps on what the CSV check accepts (None: the check's defaults, justified there).

    :param max_bytes: the decoded report's size; None for no cap.
    :param max_header_bytes: the header line's length (default 1 MiB).
    :param max_row_bytes: any one row's length (default 1 MiB).
    """

    max_bytes: int | None = None
    max_header_bytes: int | None = None
    max_row_bytes: int | None = None

    def check(self, redact: Callable[[str], str], expect_any: Collection[str] = ()) -> CSVCheck:
        """Build the CSV check of one export with these caps."""
        caps: dict[str, Any] = {"max_bytes": self.max_bytes}
        if self.max_header_bytes is not None:
            caps["max_header_bytes"] = self.max_header_bytes
        if self.max_row_bytes is not None:
            caps["max_row_bytes"] = self.max_row_bytes
        return CSVCheck(expect_any=expect_any, redact=redact, **caps)


@dataclass(frozen=True)
class ExportResult:
    """What one finished export wrote.

    :param uri: the file written (None for a file-object destination, or nothing written).
    :param filename: the server's file name, when it was a plain report name and was used.
    :param bytes: bytes written to the destination (after compression or conversion).
    :param rows: data rows of the report (its header excluded).
    :param columns: the report's header, as the server sent it.
    :param output_format: ``csv``, ``csv.gz`` or ``parquet``.
    :param written: False when an empty report was not written (``write_empty=False``).
    :param attempts: the attempts it took, the successful one included.
    :param content_type: the response's ``Content-Type``.
    :param downloaded_bytes: bytes of the body on the wire.
    """

    uri: str | None
    filename: str | None
    bytes: int
    rows: int
    columns: list[str]
    output_format: str = "csv"
    written: bool = True
    attempts: int = 1
    content_type: str = ""
    downloaded_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_body(
    body: Body,
    target: Target,
    check: CSVCheck,
    options: OutputOptions,
    *,
    fallback_name: Callable[[str], str],
    server_name: str | None,
    progress: ExportProgress | None = None,
    attempt: int = 1,
) -> ExportResult:
    """Stream one response body into the destination; publish it only if it checks out.

    :param fallback_name: the provider's own file name for a folder, given the suffix.
    :param server_name: the server's file name, already cleared of secrets (None to ignore).
    """
    suffix = file_suffix(options.output_format)
    name = report_name(server_name, suffix)
    path = target.choose(name, fallback_name(suffix))
    if path is not None and not options.overwrite and target.exists(path):
        raise SEIDestinationError(
            f"The destination {public_uri(path)} already exists and overwrite is False"
        )
    check.reset()
    if progress is not None:
        progress.reset()
    staged = target.open(path)
    try:
        encoder = open_encoder(options.output_format, staged, columns=options.columns or None)
        if options.keep_gzip and options.output_format == "csv.gz" and not options.columns:
            body.tap = staged.write  # a body that is a .gz file is stored as downloaded
        for chunk in body.chunks():
            check.feed(chunk)
            if body.tap is None or not body.gzip_file:
                encoder.write(chunk)
            if progress is not None:
                progress.update(len(chunk), check.rows)
        check.finish()
        if check.empty and not options.write_empty:
            staged.abort()
            return _result(body, check, options, None, None, 0, attempt, written=False)
        if body.tap is None or not body.gzip_file:
            encoder.close()
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    uri = public_uri(path) if path is not None else None
    used = name if path is not None and name is not None and path.name == name else None
    return _result(body, check, options, uri, used, staged.bytes, attempt)


def _result(
    body: Body,
    check: CSVCheck,
    options: OutputOptions,
    uri: str | None,
    filename: str | None,
    written_bytes: int,
    attempt: int,
    *,
    written: bool = True,
) -> ExportResult:
    return ExportResult(
        uri=uri,
        filename=filename,
        bytes=written_bytes,
        rows=check.rows,
        columns=list(check.columns),
        output_format=options.output_format,
        written=written,
        attempts=attempt,
        content_type=body.content_type,
        downloaded_bytes=body.raw_bytes,
    )


def copy_csv(
    source: str, target: Target, path: Any, options: OutputOptions, chunk_size: int = 1 << 20
) -> int:
    """Write a local CSV file to ``path`` of ``target`` in ``options``' format; return bytes.

    The multi-team operator keeps each team's report in a local spool for the merge, and
    publishes its per-team file from there.
    """
    staged = target.open(path)
    try:
        encoder = open_encoder(options.output_format, staged, columns=options.columns or None)
        with open(source, "rb") as handle:
            while chunk := handle.read(chunk_size):
                encoder.write(chunk)
        encoder.close()
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return staged.bytes
