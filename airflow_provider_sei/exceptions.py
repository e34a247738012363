"""Exceptions of the provider: each carries the facts (field, status, message), never a secret.

Two families, as a ``@task`` user would expect them:

* **Configuration errors** are ``ValueError``s: :class:`SEIInvalidRequestError` (a parameter or a
  connection setting that can never work), raised before any request is sent.
* **API and transport errors** are ``AirflowException``s: :class:`SEIError` and its kinds.

Whether a failure is worth another attempt is not a property of these classes: the hook's
:class:`~airflow_provider_sei.hooks.retry.RetryPolicy` decides it (``is_retryable``), and the
operators turn what it would not retry into ``AirflowFailException``, so a task does not burn
its retries on an outcome a retry cannot change.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class SEIInvalidRequestError(ValueError):
    """A request parameter or connection setting is invalid; raised before any request is sent.

    :param field: the parameter's name, as the operator spells it (``date_start``).
    :param value: the rejected value.
    :param allowed: what would have been accepted.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"Invalid {field}: {value!r}. Allowed: {allowed}.")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.allowed))


class SEIError(AirflowException):
    """Base class of the errors the SEI API, or the way to it, caused."""


class SEIAPIError(SEIError):
    """The SEI API answered with an error status.

    :param status_code: the HTTP status.
    :param message: the server's message (from its JSON body, else a short excerpt), redacted,
        followed by what to fix when the status says it (a wrong key, a team name for an id).
    :param url: the request URL (the API key is never part of it).
    :param retry_after: seconds from the server's ``Retry-After`` header, when it sent one.
    """

    def __init__(
        self, status_code: int, message: str, url: str = "", retry_after: float | None = None
    ) -> None:
        # AirflowException.status_code is an HTTPStatus for the API server's own replies;
        # here it is whatever the SEI API sent, including codes HTTPStatus does not know.
        self.status_code = status_code  # type: ignore[assignment]
        self.message = message
        self.url = url
        self.retry_after = retry_after
        where = f" from {url}" if url else ""
        super().__init__(f"SEI API error {status_code}{where}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status_code, self.message, self.url, self.retry_after))


class SEIConnectionError(SEIError):
    """The SEI API could not be reached, or sent nothing before the read timeout."""


class SEITLSError(SEIConnectionError):
    """The TLS handshake with the SEI API failed (a wrong scheme, port or certificate)."""


class SEITimeoutError(SEIError):
    """A call ran past its time bound (``max_elapsed``, or an export job's ``max_wait``)."""


class SEIResponseError(SEIError):
    """The SEI API answered 200, but the response is not what it should be (e.g. no CSV)."""


class SEIIncompleteReadError(SEIResponseError):
    """The body ended early: short of ``Content-Length``, a broken chunked or gzip stream."""

    def __init__(self, expected: int | None, received: int, what: str = "") -> None:
        self.expected = expected
        self.received = received
        self.what = what
        of = f" of {expected}" if expected is not None else ""
        detail = f" ({what})" if what else ""
        super().__init__(f"Response body cut short: received {received}{of} bytes{detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.expected, self.received, self.what))


class SEIExportJobError(SEIError):
    """A V2 export job ended ``FAILED`` or ``CANCELLED``.

    :param export_id: the job's id.
    :param status: the status it ended with, upper case.
    :param message: the server's reason, when it gave one (redacted).
    """

    def __init__(self, export_id: str, status: str, message: str = "") -> None:
        self.export_id = export_id
        self.status = status
        self.message = message
        reason = f": {message}" if message else " (the server gave no reason)"
        super().__init__(f"SEI export job {export_id} ended {status}{reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.export_id, self.status, self.message))


class SEIDestinationError(SEIError):
    """The destination store cannot be written (unknown connection, missing bucket, no access)."""
