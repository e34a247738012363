"""The errors the hook raises, built in one place: redacted, and with the fix in the message.

``test_connection`` and the task errors give the same hints, from :func:`hint`:

* 401/403: check the API key, the auth scheme and the account id;
* 404 from the legacy reports endpoint: use the numeric ``collectionId`` of the Insights URL;
* a TLS failure after ``https://`` was assumed for a Base URL without a scheme: say so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import NoReturn

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIError,
    SEIInvalidRequestError,
    SEITLSError,
)
from airflow_provider_sei.hooks.redact import Redactor
from airflow_provider_sei.hooks.retry import parse_retry_after
from airflow_provider_sei.hooks.stream import EXCERPT_BYTES, clean, server_message

AUTH_HINT = "check the API key, the auth scheme (auth_scheme extra) and the account id"
COLLECTION_HINT = (
    "the collection (team) was not found: collection_id / team_ref_id must be the numeric id "
    "from the Insights URL (?collectionId=6036), not the team's name"
)
EXPORT_HINT = (
    "check team_id / org_tree_name and the connection's project_identifier and org_identifier"
)


def hint(status: int, endpoint: str) -> str:
    """Return what to fix for ``status`` from ``endpoint`` (``reports``, ``exports``,
    ``org-trees``)."""
    if status in (401, 403):
        return AUTH_HINT
    if status == 404 and endpoint == "reports":
        return COLLECTION_HINT
    if status in (400, 404) and endpoint == "exports":
        return EXPORT_HINT
    return ""


def api_error(response: requests.Response, redact: Redactor, endpoint: str) -> SEIAPIError:
    """Build the ``SEIAPIError`` of a non-2xx ``requests`` response (its body read, then closed)."""
    try:
        head = read_excerpt(response)
    except (requests.RequestException, Urllib3Error, OSError, ValueError) as exc:
        head = f"(body unreadable: {type(exc).__name__})".encode()
    finally:
        response.close()
    return status_error(
        response.status_code,
        response.reason or "",
        response.headers,
        response.url or "",
        head,
        redact,
        endpoint,
    )


def status_error(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    url: str,
    head: bytes,
    redact: Redactor,
    endpoint: str,
) -> SEIAPIError:
    """Return the ``SEIAPIError`` of a status: the server's message, redacted, and what to fix."""
    message = server_message(head, redact) or clean(reason) or "no message"
    if 300 <= status < 400:
        location = redact(clean(headers.get("Location", "")))
        message = f"redirected to {location or '(no Location)'}: set the Base URL to it"
    fix = hint(status, endpoint)
    if fix:
        message = f"{message} -- {fix}"
    return SEIAPIError(
        status,
        message,
        redact(clean(url)),
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


def read_excerpt(response: requests.Response) -> bytes:
    """Up to ``EXCERPT_BYTES`` of an error body (the attempt's deadline bounds the wait)."""
    return response.raw.read(EXCERPT_BYTES, decode_content=True) or b""


def unreachable(
    exc: BaseException, host: str, timeout: tuple[float, float], scheme_assumed: bool
) -> SEIConnectionError:
    """Return a connection failure, said plainly (``requests``' own text can quote headers)."""
    connect, read = timeout
    if isinstance(exc, requests.exceptions.SSLError):
        assumed = (
            " https:// was assumed because the Base URL has no scheme: if the server speaks "
            "plain HTTP, write http://" + host + "."
            if scheme_assumed
            else " Check the Base URL's scheme and port, and the verify extra."
        )
        return SEITLSError(f"The TLS handshake with the SEI API at {host} failed.{assumed}")
    if isinstance(exc, requests.ConnectTimeout):
        return SEIConnectionError(
            f"Could not connect to the SEI API at {host} within {connect:g} s"
        )
    if isinstance(exc, requests.Timeout):
        return SEIConnectionError(
            f"The SEI API at {host} sent nothing for {read:g} s (read timeout)"
        )
    return SEIConnectionError(f"Could not connect to the SEI API at {host} ({type(exc).__name__})")


@contextlib.contextmanager
def guarded(redact: Callable[[], Redactor]) -> Iterator[None]:
    """Let nothing leave the hook with a secret in its text, its repr or its causes.

    Errors built by the hook are redacted already; this catches the rest (an HTTP library's
    exception quoting a header, a store's error quoting a URL) and replaces such an exception
    with an ``SEIError`` of its redacted text, its chain cut.
    """
    try:
        yield
        return
    except (SEIInvalidRequestError, KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        redactor = redact()
        if not any(redactor.found_in(text) for err in _chain(exc) for text in _texts(err)):
            raise
        kind = type(exc) if _rebuildable(exc) else SEIError
        replacement = kind(redactor(str(exc)))
    _raise_alone(replacement)


def _texts(error: BaseException) -> Iterator[str]:
    yield str(error)
    yield repr(error)
    for arg in error.args:
        yield arg if isinstance(arg, str) else repr(arg)


def _raise_alone(error: BaseException) -> NoReturn:
    """Raise ``error`` with no cause and no context.

    ``raise ... from None`` only hides the exception being handled: it stays reachable as
    ``__context__`` (for a debugger, Sentry, ``traceback.TracebackException``), secret and all.
    Raised here, outside any handler of this frame, it still picks up the exception the caller
    (``contextmanager.__exit__``) is handling; so the link is cut and the error re-raised bare,
    which chains nothing.
    """
    try:
        raise error
    except BaseException as raised:
        raised.__cause__ = None
        raised.__context__ = None
        raised.__suppress_context__ = True
        raise


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _rebuildable(exc: BaseException) -> bool:
    """Whether ``type(exc)(message)`` builds the same kind of error (plain SEI errors)."""
    return type(exc) in (SEIError, SEIConnectionError, SEITLSError) or (
        isinstance(exc, SEIError) and type(exc).__init__ is SEIError.__init__
    )


def unreachable_async(
    exc: BaseException, host: str, timeout: tuple[float, float], scheme_assumed: bool
) -> SEIConnectionError:
    """:func:`unreachable` for an ``httpx`` error (the trigger's async polls)."""
    import ssl

    import httpx

    if any(isinstance(err, ssl.SSLError) for err in _chain(exc)):
        cause: BaseException = requests.exceptions.SSLError()
    elif isinstance(exc, httpx.ConnectTimeout):
        cause = requests.ConnectTimeout()
    elif isinstance(exc, httpx.TimeoutException):
        cause = requests.ReadTimeout()
    else:
        cause = requests.ConnectionError()
    error = unreachable(cause, host, timeout, scheme_assumed)
    if type(cause) is requests.ConnectionError:
        return type(error)(f"Could not reach the SEI API at {host} ({type(exc).__name__})")
    return error
