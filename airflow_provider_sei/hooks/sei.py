"""Hook for the Harness SEI (Software Engineering Insights) export API.

.. seealso::
    https://developer.harness.io/docs/software-engineering-insights/harness-sei/api/export-metrics
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

import requests
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error

from airflow_provider_sei import __version__
from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIError,
    SEIResponseError,
)
from airflow_provider_sei.hooks.form import CONN_FIELDS, CONN_TYPE, ui_field_behaviour
from airflow_provider_sei.hooks.retry import (
    RetryPolicy,
    parse_retry_after,
)
from airflow_provider_sei.hooks.settings import ConnectionSettings
from airflow_provider_sei.hooks.stream import (
    DEFAULT_CHUNK_SIZE,
    EXCERPT_BYTES,
    ExportResult,
    ReportStream,
    media_type,
    now,
    server_message,
)
from airflow_provider_sei.models import (
    ContributorReportRequest,
    ReportRequest,
    TeamReportRequest,
)

__all__ = ["ExportResult", "ReportStream", "RetryPolicy", "SEIHook"]

T = TypeVar("T")

REPORTS_PATH = "/v2/insights/teams/reports"
ORG_TREES_PATH = "/v2/org-trees"
_TEST_TIMEOUT = (5.0, 10.0)
_LIST_KEYS = ("teams", "orgTrees", "content", "data", "items", "records", "results")


class Sink(Protocol):
    """Where an export writes: anything with ``write(bytes)`` (a file, an ObjectStoragePath)."""

    def write(self, data: bytes, /) -> Any: ...


class SEIHook(BaseHook):
    """Interact with the Harness SEI export API.

    One ``requests.Session`` per hook, built on first use and safe to share between threads.
    Transient failures (429, 500, 502, 503, 504, connection errors, timeouts, cut bodies) are
    retried by ``retry_policy``; other errors raise at once.

    :param sei_conn_id: the ``harness_sei`` connection to use.
    :param retry_policy: overrides the policy built from the connection's extras.
    :param timeout: overrides the connection's read timeout, in seconds.
    :param pool_maxsize: connections kept open per host (threads sharing the hook).
    """

    conn_name_attr = "sei_conn_id"
    default_conn_name = "sei_default"
    conn_type = CONN_TYPE
    hook_name = "Harness SEI"

    def __init__(
        self,
        sei_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__()
        self.sei_conn_id = sei_conn_id
        self.pool_maxsize = pool_maxsize
        self._retry_policy = retry_policy
        self._timeout = timeout
        self._settings: ConnectionSettings | None = None
        self._session: requests.Session | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sei_conn_id={self.sei_conn_id!r})"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form on Airflow 3.1 (3.2+ reads ``conn-fields``)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import Optional, any_of

        field_classes = {"string": StringField, "integer": IntegerField}
        widgets = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            validators: list[Any] = [Optional()]
            if "enum" in schema:
                validators.append(any_of(schema["enum"]))
            widgets[name] = field_classes[types[0]](
                lazy_gettext(spec["label"]),
                description=spec["description"],
                default=schema.get("default"),
                validators=validators,
                widget=BS3TextFieldWidget(),
            )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the form on Airflow 3.1."""
        return ui_field_behaviour(kebab_case=False)

    @property
    def settings(self) -> ConnectionSettings:
        """The connection, read and validated once per hook."""
        with self._lock:
            if self._settings is None:
                settings = ConnectionSettings.from_connection(self.get_connection(self.sei_conn_id))
                if settings.api_key:
                    mask_secret(settings.api_key)
                    # and the header value derived from it ("ApiKey <key>"), as Airflow advises
                    authorization = settings.auth_headers().get("Authorization")
                    if authorization:
                        mask_secret(authorization)
                for proxy in settings.proxies.values():
                    if "@" in proxy:  # a proxy URL with credentials
                        mask_secret(proxy)
                self._settings = settings
            return self._settings

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
        """The hook's session: auth headers, TLS and proxy settings, a pool of ``pool_maxsize``."""
        with self._lock:
            if self._session is None:
                self._session = self._build_session(self.settings)
            return self._session

    def _build_session(self, settings: ConnectionSettings) -> requests.Session:
        if not settings.api_key:
            raise SEIError(
                f"Connection {self.sei_conn_id!r} has no API key: put it in the API Key field"
            )
        session = requests.Session()
        session.headers.update(settings.auth_headers())
        session.headers["User-Agent"] = f"airflow-provider-sei/{__version__}"
        session.verify = settings.verify
        session.proxies.update(settings.proxies)
        # max_retries=0: the retry policy is the only retry layer, so attempts count once.
        adapter = HTTPAdapter(pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @contextmanager
    def stream_report(self, request: ReportRequest) -> Iterator[ReportStream]:
        """Open a CSV report (``POST /v2/insights/teams/reports?format=csv``) as a stream.

        Failures before the body (429, 5xx, connection errors, timeouts) are retried; a body
        that breaks while the caller reads it raises ``SEIIncompleteReadError`` (use
        ``export_report`` to have those retried too).

        :param request: a ``TeamReportRequest`` or ``ContributorReportRequest``.
        """
        deadline = now() + self.retry_policy.max_elapsed
        stream = self._call(
            f"POST {self._url(REPORTS_PATH)}", lambda: self._open_report(request, deadline)
        )
        try:
            yield stream
        finally:
            stream.close()

    def export_report(
        self,
        request: ReportRequest,
        open_sink: Callable[[], AbstractContextManager[Sink]],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> ExportResult:
        """Download a CSV report into a sink, retrying the whole download on transient failures.

        :param request: a ``TeamReportRequest`` or ``ContributorReportRequest``.
        :param open_sink: opens a fresh, empty sink; called again for every attempt that got a
            CSV response, so a retried download never appends to a partial one.
        :param chunk_size: bytes per ``write`` (about; the last chunk may be shorter).
        """
        deadline = now() + self.retry_policy.max_elapsed
        attempts = 0

        def attempt() -> ExportResult:
            nonlocal attempts
            attempts += 1
            stream = self._open_report(request, deadline)
            try:
                with open_sink() as sink:
                    for chunk in stream.iter_chunks(chunk_size):
                        sink.write(chunk)
            finally:
                stream.close()
            return ExportResult(stream.filename, stream.bytes_read, stream.content_type, attempts)

        result = self._call(f"POST {self._url(REPORTS_PATH)}", attempt)
        self.log.info(
            "Exported SEI report %s: %d bytes in %d attempt(s)",
            result.filename or "(no file name)",
            result.bytes,
            result.attempts,
        )
        return result

    def export_team_report(
        self,
        request: TeamReportRequest,
        open_sink: Callable[[], AbstractContextManager[Sink]],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> ExportResult:
        """Download a team report (``ExportRequestDTO``); see ``export_report``."""
        _require(request, TeamReportRequest)
        return self.export_report(request, open_sink, chunk_size)

    def export_contributor_report(
        self,
        request: ContributorReportRequest,
        open_sink: Callable[[], AbstractContextManager[Sink]],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> ExportResult:
        """Download a contributor report (``ContributorExportRequestDTO``); see export_report."""
        _require(request, ContributorReportRequest)
        return self.export_report(request, open_sink, chunk_size)

    def list_org_trees(self) -> list[dict[str, Any]]:
        """The organisation trees (``GET /v2/org-trees``)."""
        return self._get_list(ORG_TREES_PATH)

    def list_org_tree_teams(self, org_tree_id: int | str) -> list[dict[str, Any]]:
        """The teams of one organisation tree, each with ``refId`` and ``name``.

        :param org_tree_id: the tree's id, as ``list_org_trees`` gives it.
        """
        return self._get_list(f"{ORG_TREES_PATH}/{org_tree_id}/teams")

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the host with one cheap ``GET /v2/org-trees``, without retries."""
        try:
            settings = self.settings
            timeout = (
                min(self.timeout[0], _TEST_TIMEOUT[0]),
                min(self.timeout[1], _TEST_TIMEOUT[1]),
            )
            response = self._send("GET", ORG_TREES_PATH, accept="application/json", timeout=timeout)
        except SEIAPIError as err:
            if err.status_code in (401, 403):
                return False, (
                    f"Authentication failed (HTTP {err.status_code}): check the API key, the auth"
                    f" scheme and the account id. Server said: {err.message}"
                )
            return False, f"The SEI API answered HTTP {err.status_code}: {err.message}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            return False, str(self._unreachable(exc, timeout))
        except SEIError as err:
            return False, str(err)
        with response:
            kind = media_type(response.headers.get("Content-Type"))
        if kind != "application/json" and not kind.endswith("+json"):
            return False, (
                f"{settings.base_url} answered HTTP {response.status_code} with"
                f" {kind or 'no Content-Type'}, not JSON: check the Base URL"
            )
        return True, f"Connected to the SEI API at {settings.base_url}"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _redact(self, text: str) -> str:
        key = self._settings.api_key if self._settings else ""
        return text.replace(key, "***") if key else text

    def _send(
        self,
        method: str,
        path: str,
        *,
        accept: str,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """One attempt, streamed; any status but 2xx raises ``SEIAPIError``.

        Redirects are not followed: ``requests`` would send the ``x-api-key`` header on to
        another host.
        """
        session = self.get_conn()
        response = session.request(
            method,
            self._url(path),
            params={**(params or {}), **self.settings.scope_params()},
            json=json_body,
            headers={"Accept": accept},
            timeout=timeout or self.timeout,
            stream=True,
            allow_redirects=False,
        )
        if 200 <= response.status_code < 300:
            return response
        raise self._api_error(response)

    def _api_error(self, response: requests.Response) -> SEIAPIError:
        try:
            head = _read_excerpt(response, budget=self.timeout[1])
        except (requests.RequestException, Urllib3Error, OSError, ValueError) as exc:
            head = f"(body unreadable: {type(exc).__name__})".encode()
        finally:
            response.close()
        message = server_message(head, self._redact) or response.reason or "no message"
        if 300 <= response.status_code < 400:
            location = self._redact(response.headers.get("Location", ""))
            message = f"redirected to {location}: set the Base URL to it"
        return SEIAPIError(
            response.status_code,
            message,
            self._redact(response.url),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` under the retry policy; connection failures become a ``SEIError``."""
        try:
            return self.retry_policy.call(fn, what=what, logger=self.log)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(
        self, exc: BaseException, timeout: tuple[float, float] | None = None
    ) -> SEIConnectionError:
        host = self.settings.host
        connect, read = timeout or self.timeout
        if isinstance(exc, requests.ConnectTimeout):
            return SEIConnectionError(
                f"Could not connect to the SEI API at {host} within {connect:g} s"
            )
        if isinstance(exc, requests.Timeout):
            return SEIConnectionError(
                f"The SEI API at {host} sent nothing for {read:g} s (read timeout)"
            )
        return SEIConnectionError(
            f"Could not connect to the SEI API at {host} ({type(exc).__name__})"
        )

    def _open_report(self, request: ReportRequest, deadline: float) -> ReportStream:
        response = self._send(
            "POST",
            REPORTS_PATH,
            accept="text/csv",
            params={"format": "csv"},
            json_body=request.to_json(),
        )
        return ReportStream.open(response, deadline=deadline, redact=self._redact)

    def _get_list(self, path: str) -> list[dict[str, Any]]:
        deadline = now() + self.retry_policy.max_elapsed

        def attempt() -> Any:
            with self._send("GET", path, accept="application/json") as response:
                # Read like a report: a body that drips cannot outlast max_elapsed.
                body = ReportStream(response, deadline=deadline, redact=self._redact)
                try:
                    return json.loads(b"".join(body.iter_chunks()))
                except ValueError:
                    raise SEIResponseError(f"GET {path} did not answer with JSON") from None

        return _as_list(self._call(f"GET {self._url(path)}", attempt), path)


def _read_excerpt(response: requests.Response, budget: float) -> bytes:
    """Up to ``EXCERPT_BYTES`` of an error body, for at most about ``budget`` seconds.

    One socket read at a time (``read1``), so an error body that drips in a byte at a time
    cannot hold an export past its time bound: ``raw.read(n)`` would wait for all n bytes.
    """
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: urllib3 >= 2.3
    stop = now() + budget
    head = b""
    while len(head) < EXCERPT_BYTES and now() < stop:
        data = read(EXCERPT_BYTES - len(head), decode_content=True)
        if not data:
            break
        head += data
    return head


def _as_list(body: Any, path: str) -> list[dict[str, Any]]:
    """A bare JSON list, or the list an object wraps under a key such as ``teams``."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in _LIST_KEYS:
            if isinstance(body.get(key), list):
                return body[key]
    raise SEIResponseError(f"GET {path} answered JSON without a list of items")


def _require(request: Any, kind: type) -> None:
    if not isinstance(request, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(request).__name__}")
