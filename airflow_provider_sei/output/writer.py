"""Where an export goes, and how it gets there without ever leaving half a file behind.

A destination is a file or a folder on any store ``ObjectStoragePath`` knows, or an open
binary file object. Each attempt writes through a :class:`Staged` file, which is published by
``commit()`` only after the report was checked, and removed by ``abort()`` on any failure:

* **object stores** (S3, GCS, Azure, ...): written straight to the final key. A multipart
  (or single-PUT) upload becomes visible only when it completes, at ``close()``; ``abort()``
  aborts it instead. No temporary key, no server-side copy of every byte. A worker killed
  mid-upload leaves an incomplete multipart upload, invisible but billed until an S3
  lifecycle rule (``AbortIncompleteMultipartUpload``, see ``docs/reliability.md``) removes it.
* **local disk**: a temporary sibling ``.sei-export.<uuid>.tmp`` moved into place with
  ``os.replace`` (atomic, never into a folder). Before writing, the provider's own stale
  temporary files in the destination folder (its name pattern only, untouched for
  :data:`STALE_TEMP_SECONDS`) are deleted: they are what killed workers leave.
* **other stores** (SFTP, HDFS, ``memory://``, ...): a temporary sibling and ``fs.mv``.
* **a file object**: written as it is; a retried attempt truncates back to where it began.

A server's filename is used only when it is a plain report name (:func:`report_name`), is
decided before the body is read, and never names a folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Any

from airflow.sdk import ObjectStoragePath
from fsspec import AbstractFileSystem, filesystem
from fsspec.spec import AbstractBufferedFile

from airflow_provider_sei.exceptions import SEIDestinationError, SEIInvalidRequestError

log = logging.getLogger(__name__)

#: Stores whose files become visible only when their upload completes (at ``close()``).
DIRECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss"})
_LOCAL = frozenset({"file", "local"})
#: Stores without real folders: nothing to create (s3fs would create a missing *bucket*).
_FLAT_STORES = DIRECT_STORES | {"memory"}
#: A temporary file untouched this long belongs to a killed worker: an export that is alive
#: writes to it at least every read timeout (300 s by default).
STALE_TEMP_SECONDS = 6 * 3600
_TEMP_PREFIX = ".sei-export."
_TEMP_NAME = re.compile(r"\.sei-export\.[0-9a-f]{32}\.tmp")
#: A server's filename is used only when it is this plain.
_REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,149}")
_REPORT_SUFFIXES = (".csv.gz", ".csv")
_WRITE_BEHIND_DEPTH = 4


def report_name(server_name: str | None, suffix: str = ".csv") -> str | None:
    """``server_name`` if it is a plain report name, its suffix set to ``suffix``; else None.

    Plain: letters, digits, ``.``, ``_``, ``-``, at most 150 characters, ending in ``.csv`` or
    ``.csv.gz`` (any case), not starting with a dot. ``payload.exe``, ``authorized_keys``,
    ``../x.csv`` and a 10,000-character name are not.
    """
    if not server_name or not _REPORT_NAME.fullmatch(server_name):
        return None
    lower = server_name.lower()
    ending = next((s for s in _REPORT_SUFFIXES if lower.endswith(s)), None)
    if ending is None or len(server_name) == len(ending):
        return None
    return server_name[: -len(ending)] + suffix


def build_path(
    uri: str, conn_id: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> ObjectStoragePath:
    """Build the ``ObjectStoragePath`` of a destination string (its conn id may be inline)."""
    options = dict(storage_options or {})
    if conn_id:
        options["conn_id"] = conn_id
    # Airflow 3.1: an explicit ``conn_id=None`` hides a conn id given inside the URI
    # (``s3://aws_conn@bucket/key``); so pass it only when there is one.
    return ObjectStoragePath(uri, **options)


def conn_id_of(path: ObjectStoragePath) -> str | None:
    """Return the path's connection id, on Airflow 3.1 (``storage_options``) and 3.2+
    (``conn_id``)."""
    conn_id = getattr(path, "conn_id", None)
    if conn_id is None:
        conn_id = getattr(path, "storage_options", {}).get("conn_id")
    return conn_id


def fs_of(path: ObjectStoragePath) -> AbstractFileSystem:
    """Return the path's filesystem: Airflow's (with the connection's credentials) when it has one.

    Airflow registers filesystems only for the schemes its providers bring (``file``, ``s3``,
    ``gs``, ...); other fsspec schemes, such as ``memory``, get fsspec's own filesystem.
    """
    try:
        return path.fs
    except ValueError:  # "No filesystem registered for scheme ..."
        return filesystem(path.protocol)


def public_uri(path: ObjectStoragePath) -> str:
    """Return the path as a URI without the connection id (``s3://bucket/key.csv``).

    Built from the protocol and the store's path rather than ``str(path)``, which differs
    between Airflow versions (3.1 prints ``memory:///bucket/key``, 3.2+ ``memory://bucket/key``).
    """
    key = path.path
    if "://" in key:  # http(s): fsspec keeps the whole URL as the path
        return key
    protocol = path.protocol or "file"
    if protocol == "memory":
        key = key.lstrip("/")  # the memory store roots every path at "/"
    return f"{protocol}://{key}"


def protocol_of(path: ObjectStoragePath) -> str:
    protocol = path.protocol or "file"
    return protocol[0] if isinstance(protocol, tuple) else protocol


@dataclass
class Target:
    """A resolved destination: a file, a folder (the file name comes later), or a file object.

    Build it with :meth:`resolve`.
    """

    path: ObjectStoragePath | None = None
    folder: bool = False
    handle: IO[bytes] | None = None
    conn_id: str | None = None
    write_options: dict[str, Any] = field(default_factory=dict)
    #: :meth:`preflight` passed once: a fan-out checks its folder once, not once per team.
    checked: bool = False

    @classmethod
    def resolve(
        cls,
        destination: Any,
        *,
        conn_id: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        write_options: Mapping[str, Any] | None = None,
        field_name: str = "destination",
    ) -> Target:
        """Resolve a destination given as a URI or local path, an ``ObjectStoragePath``, or a
        writable binary file object.

        A URI ending in ``/``, or naming an existing folder, is a folder. Raises
        ``SEIInvalidRequestError`` for a destination no store supports and
        ``SEIDestinationError`` for an unknown ``conn_id``.

        :param storage_options: options of the store's filesystem (an ``ObjectStoragePath``
            keeps its own).
        :param write_options: options of each file opened for writing, e.g. ``ContentType``,
            ``ServerSideEncryption``, ``SSEKMSKeyId``, ``ACL`` on S3.
        """
        options = dict(write_options or {})
        if hasattr(destination, "write") and not isinstance(destination, ObjectStoragePath):
            return cls(handle=destination, write_options=options)
        if isinstance(destination, os.PathLike) and not isinstance(destination, ObjectStoragePath):
            destination = os.fspath(destination)
        if isinstance(destination, ObjectStoragePath):
            path, text = destination, str(destination)
            conn_id = conn_id_of(path) or conn_id
        else:
            text = _check_uri(destination, field_name)
            if text.startswith("/"):
                text = "file://" + text
            try:
                path = build_path(text, conn_id, storage_options)
                fs_of(path)  # 3.1 builds paths of any scheme and fails only here
            except Exception as err:  # unknown scheme, missing provider, malformed URI
                raise SEIInvalidRequestError(
                    field_name, text, f"a URI ObjectStoragePath supports ({err})"
                ) from err
            conn_id = conn_id_of(path) or conn_id
        _check_connection(conn_id, text)
        folder = text.endswith("/") or _is_dir(path)
        return cls(path=path, folder=folder, conn_id=conn_id, write_options=options)

    def describe(self) -> str:
        """Describe the destination for a log line: its URI, or the file object's repr."""
        if self.path is None:
            return f"file object {type(self.handle).__name__}"
        return public_uri(self.path)

    def preflight(self) -> None:
        """One cheap call that fails now if the store cannot be written at all.

        Catches what no retry fixes, before the export is requested: a bucket that does not
        exist, an endpoint that cannot be reached, missing credentials, a local folder that
        cannot be created. A store that refuses to *list* is let through (a write-only role
        may still write).
        """
        if self.path is None or self.checked:
            return
        protocol = protocol_of(self.path)
        folder = self.path if self.folder else self.path.parent
        try:
            if protocol in _LOCAL:
                _check_local_folder(folder.path)
            elif protocol in DIRECT_STORES:
                fs_of(self.path).info(folder.path.strip("/").split("/", 1)[0])  # HeadBucket
            elif protocol != "memory":
                fs_of(self.path).exists(folder.path)
            self.checked = True
        except PermissionError as err:
            log.warning("Cannot check %s before writing (%s); trying anyway", self.describe(), err)
        except Exception as err:
            raise SEIDestinationError(self._failure(err)) from err

    def file(self, name: str) -> Target:
        """Return the target of file ``name`` in this folder, sharing its checks and options."""
        assert self.path is not None
        return replace(self, path=self.path / name, folder=False)

    def choose(self, name: str | None, fallback: str) -> ObjectStoragePath | None:
        """Choose the file to write: the target file, or ``name`` (else ``fallback``) in the folder.

        Never a folder: a server name naming a sub-folder falls back to ``fallback``, and a
        fallback that is a folder fails.
        """
        if self.path is None:
            return None
        if not self.folder:
            return self.path
        for candidate in (name, fallback):
            if candidate:
                path = self.path / candidate
                if not _is_dir(path):
                    return path
        raise SEIDestinationError(
            f"Cannot write {public_uri(self.path / fallback)}: it is a folder"
        )

    def open(self, path: ObjectStoragePath | None) -> Staged:
        """Open a fresh, empty staged file for one attempt (``path`` from :meth:`choose`)."""
        if path is None:
            assert self.handle is not None
            return _HandleStaged(self.handle)
        if _is_dir(path):
            raise SEIDestinationError(f"Cannot write {public_uri(path)}: it is a folder")
        protocol = protocol_of(path)
        try:
            if protocol in _LOCAL:
                return _LocalStaged(path.path)
            fs = fs_of(path)
            if protocol in DIRECT_STORES:
                handle = fs.open(path.path, "wb", **self.write_options)
                if isinstance(handle, AbstractBufferedFile):
                    return _DirectStaged(handle)
                handle.close()  # not an upload we can abort: go through a temporary key
            return _MovedStaged(fs, path.path, self.write_options, protocol in _FLAT_STORES)
        except SEIDestinationError:
            raise
        except OSError as err:
            raise SEIDestinationError(self._failure(err, path)) from err

    def exists(self, path: ObjectStoragePath | None) -> bool:
        return path is not None and fs_of(path).exists(path.path)

    def _failure(self, err: BaseException, path: ObjectStoragePath | None = None) -> str:
        where = public_uri(path) if path is not None else self.describe()
        conn = f" with connection {self.conn_id!r}" if self.conn_id else " (no connection id)"
        return f"Writing {where}{conn} failed: {type(err).__name__}: {err}"


class Staged:
    """One attempt's output file; ``write`` from one thread, then ``commit`` or ``abort``.

    Writes to object stores go through a thread of their own, at most a few chunks behind: a
    write there can wait for a part upload, and the check goes on meanwhile. Local files are
    written in the calling thread (see ``_LocalStaged``).
    """

    handle: IO[bytes]

    def __init__(self) -> None:
        self.bytes = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(_WRITE_BEHIND_DEPTH)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="sei-write", daemon=True)
            self._thread.start()
        self._queue.put(data)
        self.bytes += len(data)

    def flush(self) -> None:
        """Wait until every chunk is written; raise the error a write met, if any."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def commit(self) -> None:
        """Publish the file (the caller has checked the report)."""
        self.flush()
        self._publish()

    def abort(self) -> None:
        """Remove every trace of the attempt.

        It runs on failure paths, so it raises only ``SEIDestinationError`` for a destination
        the attempt spoiled for good (a file object that cannot seek back): a retry would
        append a whole report to the partial one. Other cleanup failures are logged.
        """
        with contextlib.suppress(BaseException):
            self.flush()
        try:
            self._discard()
        except SEIDestinationError:
            raise
        except Exception:
            log.warning("Could not clean up a failed write", exc_info=True)

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:  # after an error, drain without writing
                try:
                    self.handle.write(chunk)
                except BaseException as exc:
                    self._error = exc

    def _publish(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


class _LocalStaged(Staged):
    """A temporary sibling moved into place, written in the calling thread.

    No write-behind thread: a page-cache write is short, and queued chunks freed by another
    thread make glibc trim and regrow its heap -- tens of thousands of fresh pages per GiB
    against a few hundred (``docs/benchmarks.md``, the phases table).
    """

    def __init__(self, final: str) -> None:
        super().__init__()
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        remove_stale_temp_files(folder)
        self.final = final
        self.temp = os.path.join(folder, f"{_TEMP_PREFIX}{uuid.uuid4().hex}.tmp")
        self.handle = open(self.temp, "wb")  # noqa: SIM115 -- closed by commit or abort

    def write(self, data: bytes) -> None:
        if data:
            self.handle.write(data)
            self.bytes += len(data)

    def _publish(self) -> None:
        self.handle.close()
        if os.path.isdir(self.final):
            raise SEIDestinationError(f"Cannot write {self.final}: it is a folder")
        os.replace(self.temp, self.final)

    def _discard(self) -> None:
        self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


class _DirectStaged(Staged):
    def __init__(self, handle: AbstractBufferedFile) -> None:
        super().__init__()
        self.handle = handle  # type: ignore[assignment]

    def _publish(self) -> None:
        self.handle.close()  # completes the upload: the object appears whole, now

    def _discard(self) -> None:
        # fsspec buffered files (s3fs, gcsfs, adlfs) upload on close(): abort the multipart
        # upload instead and mark the file closed, so that neither close() nor garbage
        # collection commits a partial object.
        handle: Any = self.handle
        handle.discard()
        handle.closed = True


class _MovedStaged(Staged):
    def __init__(
        self, fs: AbstractFileSystem, final: str, options: dict[str, Any], flat: bool
    ) -> None:
        super().__init__()
        self.fs, self.final = fs, final
        folder = final.rsplit("/", 1)[0] if "/" in final else ""
        if not flat and folder:
            fs.makedirs(folder, exist_ok=True)
        self.temp = f"{folder}/{_TEMP_PREFIX}{uuid.uuid4().hex}.tmp"
        self.handle = fs.open(self.temp, "wb", **options)

    def _publish(self) -> None:
        self.handle.close()
        self.fs.mv(self.temp, self.final)

    def _discard(self) -> None:
        handle: Any = self.handle
        if isinstance(handle, AbstractBufferedFile):
            handle.discard()
            handle.closed = True
        elif hasattr(handle, "discard"):  # memory://: closing would commit the partial file
            handle.discard()
        else:
            handle.close()
        if self.fs.exists(self.temp):
            self.fs.rm(self.temp)


class _HandleStaged(Staged):
    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self.handle = handle
        self._start = handle.tell() if _seekable(handle) else None

    def _publish(self) -> None:
        self.handle.flush()

    def _discard(self) -> None:
        if self._start is not None:
            self.handle.seek(self._start)
            self.handle.truncate()
        elif self.bytes:
            raise SEIDestinationError(
                "A failed attempt wrote to a file object that cannot seek back, so it cannot "
                "be retried: its content is partial. Give a seekable file or a path."
            )


def remove_stale_temp_files(folder: str, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the provider's own temporary files in ``folder`` untouched for ``older_than`` s.

    Only names of the provider's pattern (``.sei-export.<32 hex>.tmp``) are considered.
    """
    removed = []
    cutoff = time.time() - older_than
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(folder) as entries:
        for entry in entries:
            if not _TEMP_NAME.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
    if removed:
        log.info("Removed %d stale temporary file(s) in %s: %s", len(removed), folder, removed)
    return removed


def _seekable(handle: Any) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _is_dir(path: ObjectStoragePath) -> bool:
    try:
        return bool(fs_of(path).isdir(path.path))
    except Exception:  # a store that cannot tell (no rights to list): not a folder
        return False


def _check_local_folder(folder: str) -> None:
    """Check that the nearest existing ancestor of ``folder`` is a writable folder."""
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise NotADirectoryError(f"{probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{probe} is not writable")


def _check_uri(destination: Any, field_name: str) -> str:
    if not isinstance(destination, str) or not destination.strip():
        raise SEIInvalidRequestError(
            field_name, destination, "a URI such as s3://bucket/key.csv or file:///dir/"
        )
    uri = destination.strip()
    scheme, separator, rest = uri.partition("://")
    if not (separator and scheme and rest.strip("/")) and not uri.startswith("/"):
        # A rendered None, a relative path or a bare "file://" would land in the worker's
        # current directory: a URI must name its scheme and a location.
        raise SEIInvalidRequestError(
            field_name,
            destination,
            "a URI with a scheme and a path, such as s3://bucket/key.csv or file:///dir/ "
            "(not a relative path or a rendered None)",
        )
    return uri


def _check_connection(conn_id: str | None, where: str) -> None:
    """Fail now on an unknown connection instead of falling back to default credentials."""
    if not conn_id:
        return
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception as err:
        if type(err).__name__ != "AirflowNotFoundException":
            raise
        raise SEIDestinationError(
            f"Writing {where} with connection {conn_id!r} failed: the connection is not "
            "defined. Create it (Admin > Connections, or AIRFLOW_CONN_"
            f"{conn_id.upper()}) or fix dest_conn_id."
        ) from None
