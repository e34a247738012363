"""Exceptions of the provider: each carries the facts (field, status, message), never a secret."""

from __future__ import annotations

from typing import Any

from airflow_provider_sei._compat import AirflowException, AirflowFailException


class SEIError(AirflowException):
    """Base class of every error this provider raises."""


class SEIInvalidRequestError(SEIError, AirflowFailException, ValueError):
    """A request parameter is invalid; raised before any request is sent.

    It fails the task without retries: the same parameters would fail again.

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


class SEIAPIError(SEIError):
    """The SEI API answered with an error status.

    :param status_code: the HTTP status.
    :param message: the server's message (from its JSON body, else a short excerpt).
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

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (rate limits and server errors)."""
        return self.status_code == 429 or self.status_code >= 500


class SEIConnectionError(SEIError):
    """The SEI API could not be reached, or sent nothing before the read timeout."""


class SEITimeoutError(SEIError):
    """An export ran past its total time bound (the connection's ``max_elapsed``)."""


class SEIResponseError(SEIError):
    """The SEI API answered 200, but the response is not the CSV report it should be."""


class SEIIncompleteReadError(SEIResponseError):
    """The body ended early: short of ``Content-Length``, or a chunked body broken off."""

    def __init__(self, expected: int | None, received: int) -> None:
        self.expected = expected
        self.received = received
        of = f" of {expected}" if expected is not None else ""
        super().__init__(f"Response body cut short: received {received}{of} bytes")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.expected, self.received))
