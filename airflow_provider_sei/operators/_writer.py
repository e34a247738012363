"""Where a report goes, and how it gets there without ever leaving half a file behind.

A report is streamed into a temporary sibling of its destination (``.<name>.<uuid>.tmp``, in
the same folder, so the final move stays within one store) and moved into place only once
it is complete and checked. On a local disk the move is a ``rename`` (atomic); on an object
store it is a server-side copy and a delete, and the destination key only ever holds a
complete report. On any failure the temporary file is deleted and a partial multipart
upload is aborted, so the destination keeps its previous content, or stays absent.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from airflow.sdk import ObjectStoragePath
from fsspec import AbstractFileSystem, filesystem
from fsspec.spec import AbstractBufferedFile

from airflow_provider_sei.csvstats import CSVStats
from airflow_provider_sei.progress import ExportProgress

log = logging.getLogger(__name__)

# Stores without real folders: nothing to create before writing (s3fs would even create a
# missing *bucket* when asked to make a "directory").
_FLAT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "memory"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+=@-]+")


def build_path(uri: str, conn_id: str | None) -> ObjectStoragePath:
    """The ``ObjectStoragePath`` of a rendered destination string (its conn id may be inline)."""
    if conn_id:
        return ObjectStoragePath(uri, conn_id=conn_id)
    # Airflow 3.1: an explicit ``conn_id=None`` lands in storage_options first and hides the
    # conn id inside the URI (``s3://aws_conn@bucket/key``); so pass it only when there is one.
    return ObjectStoragePath(uri)


def conn_id_of(path: ObjectStoragePath) -> str | None:
    """The path's connection id, on Airflow 3.1 (``storage_options``) and 3.2+ (``conn_id``)."""
    conn_id = getattr(path, "conn_id", None)
    if conn_id is None:
        conn_id = getattr(path, "storage_options", {}).get("conn_id")
    return conn_id


def fs_of(path: ObjectStoragePath) -> AbstractFileSystem:
    """The path's filesystem: Airflow's (with the connection's credentials) when it has one.

    Airflow registers filesystems only for the schemes its providers bring (``file``, ``s3``,
    ``gs``, ...); other fsspec schemes, such as ``memory``, get fsspec's own filesystem.
    """
    try:
        return path.fs
    except ValueError:  # "No filesystem registered for scheme ..."
        return filesystem(path.protocol)


def exists(path: ObjectStoragePath) -> bool:
    return fs_of(path).exists(path.path)


def is_dir(path: ObjectStoragePath) -> bool:
    return fs_of(path).isdir(path.path)


def public_uri(path: ObjectStoragePath) -> str:
    """The path as a URI without the connection id (``s3://bucket/key.csv``).

    Built from the protocol and the store's path rather than ``str(path)``, which differs
    between Airflow versions: 3.1 (universal_pathlib 0.2) prints ``memory:///bucket/key`` and
    ``http://http://host/key`` where 3.2+ prints ``memory://bucket/key`` and
    ``http://host/key``. The result is the same on every supported version.
    """
    key = path.path
    if "://" in key:  # http(s): fsspec keeps the whole URL as the path
        return key
    protocol = path.protocol or "file"
    if protocol == "memory":
        key = key.lstrip("/")  # the memory store roots every path at "/"
    return f"{protocol}://{key}"


def safe_filename(name: str | None) -> str | None:
    """The server's filename reduced to a plain file name: no folders, no odd characters."""
    if not name:
        return None
    base = posixpath.basename(name.replace("\\", "/")).strip()
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base or None


class _WriteBehind:
    """Writes chunks to ``handle`` from a thread of its own, at most ``depth`` chunks behind.

    File and network writes release the GIL; counting the CSV does not. Writing behind lets
    the two overlap instead of taking turns (about a third off a 1 GiB local export, see
    docs/benchmarks.md). Memory stays bounded: ``write`` blocks while ``depth`` chunks wait.
    """

    def __init__(self, handle: BinaryIO, depth: int = 4) -> None:
        self._handle = handle
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sei-write-behind", daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        self._raise_error()
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every chunk is written; raise the error a write met, if any."""
        self._queue.put(None)
        self._thread.join()
        self._raise_error()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:  # after an error, drain without writing
                try:
                    self._handle.write(chunk)
                except BaseException as exc:
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


class _Sink:
    """What the hook writes chunks to: the temporary file, counting the CSV on the way."""

    __slots__ = ("_progress", "_stats", "_writer")

    def __init__(
        self, writer: _WriteBehind, stats: CSVStats, progress: ExportProgress | None = None
    ) -> None:
        self._writer = writer
        self._stats = stats
        self._progress = progress

    def write(self, chunk: bytes) -> int:
        self._writer.write(chunk)  # written by the writer's thread while this one counts
        self._stats.feed(chunk)
        if self._progress is not None:
            self._progress.update(len(chunk), self._stats.rows)
        return len(chunk)


class AtomicWriter:
    """Streams a report into a temporary sibling, then moves it into place.

    :param folder: the folder the report ends up in (the temporary file goes there too).
    :param stats: the CSV counter to feed; reset on each attempt.
    :param progress: logs bytes and rows so far at a steady interval; reset on each attempt.
    """

    def __init__(
        self,
        folder: ObjectStoragePath,
        stats: CSVStats,
        progress: ExportProgress | None = None,
    ) -> None:
        self.folder = folder
        self.stats = stats
        self.progress = progress
        self.temp = folder / f".sei-export.{uuid.uuid4().hex}.tmp"

    @contextlib.contextmanager
    def open_sink(self) -> Iterator[_Sink]:
        """A fresh, empty temporary file: the hook calls this once per attempt."""
        self.stats.reset()
        if self.progress is not None:
            self.progress.reset()
        fs = fs_of(self.temp)
        if self.folder.protocol not in _FLAT_STORES:
            fs.makedirs(self.folder.path, exist_ok=True)
        handle = fs.open(self.temp.path, "wb")
        writer = _WriteBehind(handle)
        try:
            yield _Sink(writer, self.stats, self.progress)
            writer.finish()
        except BaseException:
            with contextlib.suppress(BaseException):
                writer.finish()  # stop the thread; the first error is what counts
            _abort(handle)
            raise
        handle.close()

    def commit(self, target: ObjectStoragePath) -> None:
        """Move the finished temporary file onto ``target``, replacing what is there."""
        fs_of(self.temp).mv(self.temp.path, target.path)

    def discard(self) -> None:
        """Delete the temporary file if it exists; never raises (it runs on failure paths)."""
        try:
            fs = fs_of(self.temp)
            if fs.exists(self.temp.path):
                fs.rm(self.temp.path)
        except Exception:
            log.warning(
                "Could not delete the temporary file %s", public_uri(self.temp), exc_info=True
            )


def _abort(handle: Any) -> None:
    """Close a half-written file without publishing it where the store allows that."""
    try:
        if isinstance(handle, AbstractBufferedFile):
            # fsspec buffered files (s3fs, gcsfs, adlfs) upload on close(): abort the
            # multipart upload instead and mark the file closed, so that neither close()
            # nor garbage collection commits a partial object.
            handle.discard()
            handle.closed = True
        else:
            handle.close()
    except Exception:
        log.debug("Ignoring an error while aborting a partial write", exc_info=True)
