"""Hook for the Harness SEI (Software Engineering Insights) export API.

Two endpoint families: the legacy reports endpoint (``POST /v2/insights/teams/reports``, one
synchronous CSV) and the V2 export jobs (``/v2/insights/{type}/exports``: create, poll,
download). Both go through one session, one retry policy, one time bound per call, one
redactor and, when given, one requests-per-minute budget.

.. seealso::
    https://developer.harness.io/docs/software-engineering-insights/harness-sei/api/export-metrics
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_sei import __version__
from airflow_provider_sei.exceptions import (
    SEIDestinationError,
    SEIError,
    SEIExportJobError,
    SEIInvalidRequestError,
    SEIResponseError,
    SEITimeoutError,
)
from airflow_provider_sei.hooks.aio import AsyncTransport
from airflow_provider_sei.hooks.errors import (
    api_error,
    guarded,
    unreachable,
)
from airflow_provider_sei.hooks.form import (
    CONN_TYPE,
    connection_form_widgets,
    ui_field_behaviour,
)
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.hooks.redact import Redactor
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.settings import ConnectionSettings
from airflow_provider_sei.hooks.stream import (
    CSV_CONTENT_TYPES,
    EXCERPT_BYTES,
    GZIP_CONTENT_TYPES,
    LOOSE_CONTENT_TYPES,
    Body,
    excerpt,
    media_type,
)
from airflow_provider_sei.hooks.transport import Deadline, SEIAdapter, deadline, now
from airflow_provider_sei.metrics import EXPORT_TYPES
from airflow_provider_sei.models import (
    ContributorReportRequest,
    ExportJob,
    ExportJobRequest,
    ReportRequest,
    header_names,
    parse_export_type,
)
from airflow_provider_sei.models.exports import CANCELLED, FAILED
from airflow_provider_sei.output.csvcheck import CSVCheck
from airflow_provider_sei.output.transfer import (
    CSVLimits,
    ExportResult,
    OutputOptions,
    write_body,
)
from airflow_provider_sei.output.writer import Target
from airflow_provider_sei.progress import DEFAULT_INTERVAL, ExportProgress

__all__ = ["CSVLimits", "ExportResult", "OutputOptions", "RetryPolicy", "SEIHook"]

T = TypeVar("T")

REPORTS_PATH = "/v2/insights/teams/reports"
ORG_TREES_PATH = "/v2/org-trees"
EXPORTS_PATH = "/v2/insights/{segment}/exports"
#: The old default connection id, still read (with a warning) when the new one is missing.
LEGACY_CONN_ID = "sei_default"
#: A JSON answer larger than this is not an SEI API answer.
MAX_JSON_BYTES = 64 << 20
_TEST_TIMEOUT = (5.0, 10.0)
_ACCEPT_ENCODING = "gzip, deflate"  # what Body decodes: never br or zstd


class SEIHook(BaseHook):
    """Interact with the Harness SEI export API: legacy reports and V2 export jobs.

    Transient failures (408, 429, 500, 502, 503, 504, connection errors, timeouts, cut bodies)
    are retried by ``retry_policy``; other errors raise at once. Every call is bounded by the
    connection's ``max_elapsed``, waiting for headers included.

    :param harness_sei_conn_id: the ``harness_sei`` connection to use.
    :param retry_policy: overrides the policy built from the connection's extras.
    :param timeout: overrides the connection's read timeout, in seconds.
    :param pool_maxsize: connections kept open (threads sharing the hook).
    :param requests_per_minute: a budget every request pays (polls and retries included);
        None for no limit.
    :param rate_limiter: or a limiter shared with other hooks (wins over
        ``requests_per_minute``).
    """

    conn_name_attr = "harness_sei_conn_id"
    default_conn_name = "harness_sei_default"
    conn_type = CONN_TYPE
    hook_name = "Harness SEI"

    def __init__(
        self,
        harness_sei_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        pool_maxsize: int = 10,
        requests_per_minute: float | None = None,
        rate_limiter: RateLimiter | None = None,
        sei_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        if sei_conn_id is not None:
            warnings.warn(
                "sei_conn_id is deprecated: use harness_sei_conn_id",
                DeprecationWarning,
                stacklevel=2,
            )
            harness_sei_conn_id = sei_conn_id
        self.harness_sei_conn_id = harness_sei_conn_id
        self.pool_maxsize = pool_maxsize
        self.rate_limiter = rate_limiter or (
            RateLimiter(requests_per_minute) if requests_per_minute else None
        )
        #: Set it to stop a request waiting for the rate limiter (a killed task).
        self.cancel = threading.Event()
        self._retry_policy = retry_policy
        self._timeout = timeout
        self._redactor = Redactor()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(harness_sei_conn_id={self.harness_sei_conn_id!r})"

    # -- the connection form (Airflow 3.1; 3.2+ reads conn-fields from the provider info) ----

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form on Airflow 3.1."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the hidden, relabelled and placeholder fields of the form on Airflow 3.1."""
        return ui_field_behaviour(kebab_case=False)

    # -- settings and session -----------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection, read and validated once per hook; its secrets masked in logs."""
        return self._settings_from(self._connection())

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        settings = ConnectionSettings.from_connection(conn)
        self._redactor = Redactor(settings.api_key)
        self._redactor.mask_in_logs()
        if settings.api_key:
            mask_secret(f"ApiKey {settings.api_key}")  # the header value, as Airflow advises
        for proxy in settings.proxies.values():
            if "@" in proxy:  # a proxy URL with credentials
                mask_secret(proxy)
        return settings

    @property
    def redactor(self) -> Redactor:
        """Removes the API key, in every form, from text (a no-op until ``settings`` is read)."""
        return self._redactor

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self.settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy: the one given to the hook, else the connection's."""
        return self._retry_policy or self.settings.retry_policy

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts in seconds."""
        read = self._timeout if self._timeout is not None else self.settings.read_timeout
        return (min(self.settings.connect_timeout, read), read)

    def get_conn(self) -> requests.Session:
        """Return the hook's session: TLS and proxy settings, a pool, the rate limiter."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        settings = self.settings
        if not settings.api_key:
            raise SEIInvalidRequestError(
                "password (API key)",
                None,
                f"an API key: connection {self.harness_sei_conn_id!r} has none; put it in "
                "the API Key field",
            )
        session = requests.Session()
        session.headers["User-Agent"] = f"airflow-provider-sei/{__version__}"
        session.headers["Accept-Encoding"] = _ACCEPT_ENCODING
        session.verify = settings.verify
        session.proxies.update(settings.proxies)
        session.trust_env = not settings.proxies
        adapter = SEIAdapter(
            pool_maxsize=self.pool_maxsize, limiter=self.rate_limiter, cancel=self.cancel
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _connection(self) -> Any:
        try:
            return self.get_connection(self.harness_sei_conn_id)
        except Exception as err:
            self._raise_unless_legacy_applies(err)
        conn = self.get_connection(LEGACY_CONN_ID)  # raises the not-found error if missing too
        self._warn_legacy()
        return conn

    async def _aconnection(self) -> Any:
        """:meth:`_connection` for a trigger, with the same fallback to ``sei_default``."""
        try:
            return await self.aget_connection(self.harness_sei_conn_id)
        except Exception as err:
            self._raise_unless_legacy_applies(err)
        conn = await self.aget_connection(LEGACY_CONN_ID)
        self._warn_legacy()
        return conn

    def _raise_unless_legacy_applies(self, err: Exception) -> None:
        if (
            self.harness_sei_conn_id != self.default_conn_name
            or type(err).__name__ != "AirflowNotFoundException"
        ):
            raise err

    def _warn_legacy(self) -> None:
        warnings.warn(
            f"Connection {LEGACY_CONN_ID!r} is deprecated: name it {self.default_conn_name!r}",
            DeprecationWarning,
            stacklevel=4,
        )

    # -- the legacy reports endpoint ------------------------------------------------------------

    def download_report(
        self,
        request: ReportRequest,
        destination: Any,
        *,
        dest_conn_id: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        write_options: Mapping[str, Any] | None = None,
        output: OutputOptions | None = None,
        limits: CSVLimits | None = None,
        progress_interval: float = DEFAULT_INTERVAL,
    ) -> ExportResult:
        """Export a CSV report (``POST /v2/insights/teams/reports?format=csv``) to a destination.

        The report is streamed, checked (a CSV whose header names the collection or a metric
        asked for, every row as wide as the header, its end proven) and published only when
        complete; on any failure the destination keeps what it had.

        :param request: a ``TeamReportRequest`` or ``ContributorReportRequest``.
        :param destination: a URI or local path (a folder if it ends in ``/``: the file then
            takes the server's plain report name, else ``sei-<kind>-<id>-<start>-<end>.csv``),
            an ``ObjectStoragePath``, a :class:`Target`, or a writable binary file object.
        :param dest_conn_id: the connection of the destination's store.
        :param storage_options: options of the destination's filesystem.
        :param write_options: options of the file opened for writing (``ContentType``,
            ``ServerSideEncryption``, ``SSEKMSKeyId``, ``ACL`` on S3).
        :param output: format, appended columns, overwrite and empty-report handling.
        :param limits: caps on the report's decoded size, header and row length.
        :param progress_interval: seconds between progress lines.
        """
        with guarded(lambda: self.redactor):
            kind = "contributor" if isinstance(request, ContributorReportRequest) else "team"
            name = (
                f"sei-{kind}-{request.collection_id}-{request.date_start.isoformat()}"
                f"-{request.date_end.isoformat()}"
            )
            body = request.to_json()
            return self._download(
                lambda timeout: self._send(
                    "POST",
                    self._url(REPORTS_PATH),
                    endpoint="reports",
                    accept="text/csv",
                    params={"format": "csv", **self.settings.scope_params()},
                    json_body=body,
                    timeout=timeout,
                ),
                self._target(destination, dest_conn_id, storage_options, write_options),
                (limits or CSVLimits()).check(self.redactor, header_names(request)),
                output or OutputOptions(),
                fallback=name,
                progress_interval=progress_interval,
                gunzip_files=False,
            )

    # -- V2 export jobs -------------------------------------------------------------------------

    def create_export(self, request: ExportJobRequest) -> ExportJob:
        """Create an export job (``POST /v2/insights/{type}/exports``).

        A ``202`` is a new job; a ``200`` ("Using existing export with identical parameters")
        is an identical job of the last 30 minutes, returned with ``reused=True``.
        """
        with guarded(lambda: self.redactor):
            identifiers = self._v2_identifiers()
            url = self._url(EXPORTS_PATH.format(segment=request.segment))
            body = request.to_json(
                org_identifier=identifiers["orgIdentifier"],
                project_identifier=identifiers["projectIdentifier"],
            )
            status, answer = self._json("POST", url, json_body=body, v2=True)
            try:
                job = ExportJob.from_json(answer, request.export_type, reused=status == 200)
            except ValueError:
                raise self._unexpected(f"POST {url}", answer) from None
            self.log.info(
                "SEI export job %s (%s) %s",
                job.export_id,
                request.export_type.value,
                "reused: an identical export of the last 30 minutes" if job.reused else "created",
            )
            return self._redact_job(job)

    def get_export(self, job: ExportJob) -> ExportJob:
        """Return the job's status now (``GET /v2/insights/{type}/exports/{exportId}``).

        Keeps what the create answer said (``reused``) and, for a job that failed, its
        reason. Status spellings are read in any case.
        """
        with guarded(lambda: self.redactor):
            self._v2_identifiers()
            url = self._url(
                f"{EXPORTS_PATH.format(segment=_segment(job))}/{_quote_id(job.export_id)}"
            )
            _, answer = self._json("GET", url, v2=True)
            try:
                status = ExportJob.from_json(answer, job.export_type, reused=job.reused)
            except ValueError:
                raise self._unexpected(f"GET {url}", answer) from None
            return self._redact_job(status)

    def wait_for_export(
        self,
        job: ExportJob,
        *,
        poll_interval: float = 30.0,
        max_wait: float = 3600.0,
        started: float | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> ExportJob:
        """Poll the job every ``poll_interval`` seconds until it finished; return it completed.

        :param started: a ``now()`` value ``max_wait`` counts from (default: now).
        :param sleep: waits and returns True when the wait was interrupted (default: wait on
            :attr:`cancel`).
        :raises SEIExportJobError: the job ended ``FAILED`` or ``CANCELLED``.
        :raises SEITimeoutError: it had not finished after ``max_wait`` seconds.
        """
        wait = sleep or self.cancel.wait
        until = (started if started is not None else now()) + max_wait
        while True:
            job = self.get_export(job)
            self.log.info("SEI export job %s: %s", job.export_id, job.status or "no status yet")
            if job.status in (FAILED, CANCELLED):
                raise SEIExportJobError(job.export_id, job.status or "", job.message)
            if job.finished:
                return job
            left = until - now()
            if left <= 0:
                raise SEITimeoutError(
                    f"SEI export job {job.export_id} had not finished after max_wait="
                    f"{max_wait:g} s (last status: {job.status or 'none'})"
                )
            if wait(min(poll_interval, left)):
                raise SEITimeoutError(f"Stopped waiting for SEI export job {job.export_id}")

    async def aget_export(self, job: ExportJob) -> ExportJob:
        """Return :meth:`get_export` for a trigger: ``httpx``, with the same connection settings,
        auth, redaction, retry policy, time bound and rate limit as the sync calls."""
        with guarded(lambda: self.redactor):
            if "settings" not in self.__dict__:  # read without blocking the triggerer's loop
                self.__dict__["settings"] = self._settings_from(await self._aconnection())
            self._v2_identifiers()
            url = self._url(
                f"{EXPORTS_PATH.format(segment=_segment(job))}/{_quote_id(job.export_id)}"
            )
            policy = self.retry_policy
            until = now() + policy.max_elapsed
            transport = self._async_transport()

            async def attempt() -> Any:
                return await transport.get_json(url, until, policy.max_elapsed)

            answer = await policy.acall(
                attempt,
                what=f"GET {url}",
                logger=self.log,
                deadline=until,
            )
            try:
                status = ExportJob.from_json(answer, job.export_type, reused=job.reused)
            except ValueError:
                raise self._unexpected(f"GET {url}", answer) from None
            return self._redact_job(status)

    async def aclose(self) -> None:
        """Close the ``httpx`` client of :meth:`aget_export` (a trigger calls it when done)."""
        transport = self.__dict__.pop("_async", None)
        if transport is not None and transport.loop is asyncio.get_running_loop():
            await transport.aclose()

    def _async_transport(self) -> AsyncTransport:
        """Return the hook's async transport for the running event loop (one per loop)."""
        transport = self.__dict__.get("_async")
        if transport is None or transport.loop not in (None, asyncio.get_running_loop()):
            transport = AsyncTransport(
                self.settings, self.timeout, self.redactor, self.rate_limiter, MAX_JSON_BYTES
            )
            self.__dict__["_async"] = transport
        return transport

    def download_export(
        self,
        job: ExportJob,
        destination: Any,
        *,
        dest_conn_id: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        write_options: Mapping[str, Any] | None = None,
        output: OutputOptions | None = None,
        limits: CSVLimits | None = None,
        progress_interval: float = DEFAULT_INTERVAL,
    ) -> ExportResult:
        """Download a completed job's CSV (a plain or gzip body) to a destination.

        Follows the download URL the status gave, relative to the base URL (an absolute URL
        on another host is fetched without the API key). Parameters as for
        :meth:`download_report`; ``output.output_format="csv.gz"`` stores a ``.csv.gz``
        download as it came.
        """
        with guarded(lambda: self.redactor):
            self._v2_identifiers()
            path = job.download_url or (
                f"{EXPORTS_PATH.format(segment=_segment(job))}/{_quote_id(job.export_id)}/download"
            )
            url, same_origin = self._resolve(path)
            name = f"sei-{job.export_type.value}-{job.export_id}"
            return self._download(
                lambda timeout: self._send(
                    "GET",
                    url,
                    endpoint="exports",
                    accept="text/csv, application/gzip",
                    # Another origin (a pre-signed storage URL) gets neither the key nor our
                    # query parameters, which would break its signature.
                    params=self.settings.scope_params() if same_origin else None,
                    timeout=timeout,
                    v2=True,
                    auth=same_origin,
                ),
                self._target(destination, dest_conn_id, storage_options, write_options),
                (limits or CSVLimits()).check(self.redactor),
                output or OutputOptions(),
                fallback=name,
                progress_interval=progress_interval,
                gunzip_files=True,
                server_name=job.filename,
            )

    def list_exports(
        self,
        export_type: Any,
        *,
        status: str | None = None,
        team_id: str | None = None,
        limit: int = 100,
        page: int = 0,
    ) -> list[ExportJob]:
        """List export jobs (``GET /v2/insights/{type}/exports``, at most 100 a page)."""
        kind = parse_export_type(export_type)
        with guarded(lambda: self.redactor):
            self._v2_identifiers()
            params = {"limit": str(min(max(limit, 1), 100)), "page": str(max(page, 0))}
            if status:
                params["status"] = status
            if team_id:
                params["teamId"] = str(team_id)
            url = self._url(EXPORTS_PATH.format(segment=EXPORT_TYPES[kind].segment))
            _, answer = self._json("GET", url, v2=True, params=params)
            # Undocumented shape: a bare array, or one under "exports" or "items".
            items = answer
            if isinstance(answer, dict):
                items = answer.get("exports", answer.get("items"))
            if not isinstance(items, list):
                raise self._unexpected(f"GET {url}", answer, "a list of export jobs")
            return [
                self._redact_job(ExportJob.from_json(item, kind))
                for item in items
                if isinstance(item, dict) and item.get("exportId")
            ]

    # -- org trees ------------------------------------------------------------------------------

    def list_org_trees(self) -> list[dict[str, Any]]:
        """Return the organisation trees (``GET /v2/org-trees``): a JSON array."""
        with guarded(lambda: self.redactor):
            return self._json_array(ORG_TREES_PATH, "id")

    def list_org_tree_teams(self, org_tree_id: int | str) -> list[dict[str, Any]]:
        """Return the teams of one organisation tree, each with ``refId`` and ``name``.

        :param org_tree_id: the tree's id, as ``list_org_trees`` gives it.
        """
        with guarded(lambda: self.redactor):
            return self._json_array(
                f"{ORG_TREES_PATH}/{_quote_id(str(org_tree_id))}/teams", "refId"
            )

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the host with one cheap ``GET /v2/org-trees``, without retries."""
        timeout = _TEST_TIMEOUT
        try:
            with guarded(lambda: self.redactor):
                settings = self.settings
                timeout = (min(self.timeout[0], timeout[0]), min(self.timeout[1], timeout[1]))
                with deadline(now() + sum(timeout)):
                    response = self._send(
                        "GET",
                        self._url(ORG_TREES_PATH),
                        endpoint="org-trees",
                        accept="application/json",
                        params=settings.scope_params(),
                        timeout=timeout,
                    )
                    with response:
                        kind = media_type(response.headers.get("Content-Type"))
        except (requests.ConnectionError, requests.Timeout) as exc:
            return False, str(self._unreachable(exc, timeout))
        except Exception as err:
            return False, str(err)
        if kind != "application/json" and not kind.endswith("+json"):
            return False, (
                f"{settings.base_url} answered with {kind or 'no Content-Type'}, not JSON: "
                "check the Base URL"
            )
        return True, f"Connected to the SEI API at {settings.base_url}"

    # -- internals ------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _resolve(self, url: str) -> tuple[str, bool]:
        """Return an absolute URL for ``url`` (a path is relative to the base URL, unless it already
        starts with the base URL's path), and whether it is on the base URL's origin (only then does
        it get the API key)."""
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        if not parts.scheme:
            path = url if url.startswith("/") else "/" + url
            if base.path.strip("/") and path.startswith(base.path.rstrip("/") + "/"):
                return f"{base.scheme}://{base.netloc}{path}", True  # rooted at the host
            return self._url(path), True
        return url, (parts.scheme, parts.netloc) == (base.scheme, base.netloc)

    def _v2_identifiers(self) -> dict[str, str]:
        params = self.settings.scope_params()
        missing = [
            extra
            for extra, param in (
                ("project_identifier", "projectIdentifier"),
                ("org_identifier", "orgIdentifier"),
            )
            if param not in params
        ]
        if missing:
            raise SEIInvalidRequestError(
                " and ".join(missing),
                None,
                f"set in connection {self.harness_sei_conn_id!r}'s extras: the V2 export jobs "
                "need projectIdentifier and orgIdentifier on every request",
            )
        return params

    def _target(
        self,
        destination: Any,
        conn_id: str | None,
        storage_options: Mapping[str, Any] | None,
        write_options: Mapping[str, Any] | None,
    ) -> Target:
        if isinstance(destination, Target):
            return destination
        return Target.resolve(
            destination,
            conn_id=conn_id,
            storage_options=storage_options,
            write_options=write_options,
        )

    def prepare_destination(
        self,
        destination: Any,
        *,
        dest_conn_id: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        write_options: Mapping[str, Any] | None = None,
        overwrite: bool = True,
    ) -> Target:
        """Resolve a destination and check, with one cheap call, that it can be written.

        For a V2 export job, before the job is created: a missing bucket, an unknown
        connection or an existing file with ``overwrite=False`` fails now, not after the job
        ran. Pass the returned :class:`Target` as the download's destination.
        """
        target = self._target(destination, dest_conn_id, storage_options, write_options)
        self._check_target(target, overwrite)
        return target

    @staticmethod
    def _check_target(target: Target, overwrite: bool) -> None:
        target.preflight()
        if not overwrite and not target.folder and target.exists(target.path):
            raise SEIDestinationError(
                f"The destination {target.describe()} already exists and overwrite is False"
            )

    def _send(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        accept: str,
        timeout: tuple[float, float],
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        v2: bool = False,
        auth: bool = True,
    ) -> requests.Response:
        """One attempt, streamed; any status but 2xx raises ``SEIAPIError`` with a hint.

        Redirects are not followed: ``requests`` would send the key on to another host.
        """
        headers = {"Accept": accept}
        if auth:
            headers |= self.settings.auth_headers(v2=v2)
        response = self._session.request(
            method,
            url,
            params=params,
            json=json_body,
            headers=headers,
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        )
        if 200 <= response.status_code < 300:
            return response
        raise api_error(response, self.redactor, endpoint)

    def _download(
        self,
        send: Callable[[tuple[float, float]], requests.Response],
        target: Target,
        check: CSVCheck,
        output: OutputOptions,
        *,
        fallback: str,
        progress_interval: float,
        gunzip_files: bool,
        server_name: str | None = None,
    ) -> ExportResult:
        self._check_target(target, output.overwrite)
        progress = ExportProgress(self.log, target.describe(), interval=progress_interval)
        attempts = 0

        def attempt(watch: Deadline) -> ExportResult:
            nonlocal attempts
            attempts += 1
            body = Body(
                send(self._timeout_within(watch)), redact=self.redactor, gunzip_files=gunzip_files
            )
            try:
                self._check_content_type(body)
                return write_body(
                    body,
                    target,
                    check,
                    output,
                    fallback_name=lambda suffix: fallback + suffix,
                    server_name=self._server_name(server_name or body.filename),
                    progress=progress,
                    attempt=attempts,
                )
            finally:
                body.close()

        result = self._call(attempt, what=f"download to {target.describe()}")
        self.log.info(
            "Exported %d rows, %d bytes to %s in %d attempt(s)",
            result.rows,
            result.bytes,
            result.uri or target.describe(),
            result.attempts,
        )
        return result

    def _call(self, fn: Callable[[Deadline], T], *, what: str) -> T:
        """``fn(deadline)`` under the retry policy, the whole call bounded by ``max_elapsed``.

        Each attempt runs inside a :class:`Deadline` at the call's end, so connecting, waiting
        for headers, reading and writing together never outlast it; a timeout or broken
        connection caused by the deadline becomes ``SEITimeoutError``.
        """
        policy = self.retry_policy
        until = now() + policy.max_elapsed

        def attempt() -> T:
            with deadline(until) as watch:
                try:
                    return fn(watch)
                except Exception as exc:
                    # The socket timeouts are clipped to the deadline: one that fires there
                    # may beat the deadline's timer to it, and is the time bound all the same.
                    late = isinstance(exc, requests.Timeout) and watch.remaining() <= 0.01
                    if watch.expired or late:
                        raise SEITimeoutError(
                            f"{what} exceeded its time bound (max_elapsed={policy.max_elapsed:g} s)"
                        ) from exc
                    raise

        try:
            return policy.call(attempt, what=what, logger=self.log, deadline=until)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from None

    def _timeout_within(self, watch: Deadline) -> tuple[float, float]:
        left = max(watch.remaining(), 0.001)
        connect, read = self.timeout
        return (min(connect, left), min(read, left))

    def _unreachable(
        self, exc: BaseException, timeout: tuple[float, float] | None = None
    ) -> SEIError:
        settings = self.settings
        return unreachable(exc, settings.host, timeout or self.timeout, settings.scheme_assumed)

    def _json(
        self,
        method: str,
        url: str,
        *,
        v2: bool = False,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        endpoint: str = "exports",
    ) -> tuple[int, Any]:
        """``(status, parsed JSON)`` of one call, retried and bounded like a download."""

        def attempt(watch: Deadline) -> tuple[int, Any]:
            response = self._send(
                method,
                url,
                endpoint=endpoint,
                accept="application/json",
                params={**self.settings.scope_params(), **(params or {})},
                json_body=json_body,
                timeout=self._timeout_within(watch),
                v2=v2,
            )
            body = Body(response, redact=self.redactor)
            try:
                data = bytearray()
                for chunk in body.chunks():
                    data += chunk
                    if len(data) > MAX_JSON_BYTES:
                        raise SEIResponseError(
                            f"{method} {url} answered more than {MAX_JSON_BYTES} bytes"
                        )
            finally:
                body.close()
            try:
                return response.status_code, json.loads(data) if data else None
            except ValueError:
                quoted = excerpt(bytes(data[:EXCERPT_BYTES]), self.redactor)
                raise SEIResponseError(f"{method} {url} did not answer JSON: {quoted}") from None

        return self._call(attempt, what=f"{method} {url}")

    def _json_array(self, path: str, key: str) -> list[dict[str, Any]]:
        url = self._url(path)
        _, answer = self._json("GET", url, endpoint="org-trees")
        if not isinstance(answer, list) or not all(
            isinstance(i, dict) and key in i for i in answer
        ):
            raise self._unexpected(f"GET {url}", answer, f"a JSON array of objects with {key!r}")
        return answer

    def _unexpected(
        self, what: str, answer: Any, expected: str = "an exportId"
    ) -> SEIResponseError:
        text = excerpt(json.dumps(answer)[:EXCERPT_BYTES].encode(), self.redactor)
        return SEIResponseError(f"{what} answered without {expected}: {text}")

    def _check_content_type(self, body: Body) -> None:
        """Refuse an HTML page or JSON document sent with 200, before its body is written."""
        kind = media_type(body.content_type)
        if body.content_length == 0 or not kind:
            return
        if kind in CSV_CONTENT_TYPES | LOOSE_CONTENT_TYPES | GZIP_CONTENT_TYPES:
            return
        head = next(iter(body.chunks()), b"")[:EXCERPT_BYTES]
        raise SEIResponseError(
            f"Expected a CSV report but got {kind}: {excerpt(head, self.redactor)}"
        )

    def _server_name(self, name: str | None) -> str | None:
        """Return the server's file name, unless it holds a secret (then it is never used)."""
        if name and self.redactor.found_in(name):
            self.log.warning("Ignoring the server's file name: it contains the API key")
            return None
        return name

    def _redact_job(self, job: ExportJob) -> ExportJob:
        return replace(
            job,
            message=self.redactor(job.message),
            filename=self._server_name(job.filename),
            download_url=self.redactor(job.download_url) if job.download_url else None,
        )


def _segment(job: ExportJob) -> str:
    return EXPORT_TYPES[job.export_type].segment


def _quote_id(value: str) -> str:
    return quote(value, safe="")
