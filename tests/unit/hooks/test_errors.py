"""The hook's errors: built in one place, redacted, with the fix in the message; ``guarded()``."""

from __future__ import annotations

import pickle
import traceback

import httpx
import pytest
import requests
from hostile import json_error, response

from airflow_provider_sei.exceptions import (
    SEIAPIError,
    SEIConnectionError,
    SEIError,
    SEIIncompleteReadError,
    SEIInvalidRequestError,
    SEIResponseError,
    SEITLSError,
)
from airflow_provider_sei.hooks.errors import (
    AUTH_HINT,
    COLLECTION_HINT,
    EXPORT_HINT,
    api_error,
    guarded,
    hint,
    status_error,
    unreachable,
    unreachable_async,
)
from airflow_provider_sei.hooks.redact import Redactor

from .support import chain

KEY = "pat.acct123.tok456.s3cr3t-value-never-logged"
REDACT = Redactor(KEY)


# -- hints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "endpoint", "expected"),
    [
        (401, "reports", AUTH_HINT),
        (403, "exports", AUTH_HINT),
        (401, "org-trees", AUTH_HINT),
        (404, "reports", COLLECTION_HINT),
        (404, "exports", EXPORT_HINT),
        (400, "exports", EXPORT_HINT),
        (404, "org-trees", ""),
        (400, "reports", ""),
        (503, "reports", ""),
    ],
)
def test_hint(status, endpoint, expected):
    assert hint(status, endpoint) == expected


def test_the_hints_say_what_to_fix():
    assert "auth_scheme" in AUTH_HINT
    assert "account id" in AUTH_HINT
    assert "collectionId" in COLLECTION_HINT
    assert "numeric" in COLLECTION_HINT
    assert "project_identifier" in EXPORT_HINT


# -- status errors -----------------------------------------------------------------------------


def test_a_json_error_gives_its_message_the_hint_and_retry_after():
    body = b'{"status": "error", "message": "Invalid API key", "correlationId": "c-9"}'
    error = status_error(
        401, "Unauthorized", {"Retry-After": "5"}, "https://h/v2/x", body, REDACT, "reports"
    )
    assert isinstance(error, SEIAPIError)
    assert (error.status_code, error.url, error.retry_after) == (401, "https://h/v2/x", 5.0)
    assert error.message == f"Invalid API key (correlationId c-9) -- {AUTH_HINT}"
    assert str(error).startswith("SEI API error 401 from https://h/v2/x: Invalid API key")


def test_a_server_echoing_the_key_is_redacted_everywhere():
    body = f'{{"message": "key {KEY} is revoked"}}'.encode()
    url = f"https://h/v2/x?apiKey={KEY}"
    error = status_error(403, "Forbidden", {}, url, body, REDACT, "exports")
    assert KEY not in " ".join(chain(error))
    assert "***" in error.message
    assert "***" in error.url
    assert KEY not in repr(pickle.loads(pickle.dumps(error)))


def test_a_redirect_names_its_location_redacted():
    headers = {"Location": f"https://login.example/?key={KEY}"}
    error = status_error(302, "Found", headers, "https://h/x", b"", REDACT, "reports")
    assert error.message == "redirected to https://login.example/?key=***: set the Base URL to it"


def test_an_empty_error_body_falls_back_to_the_reason():
    error = status_error(500, "Internal Server Error", {}, "u", b"", REDACT, "reports")
    assert error.message == "Internal Server Error"
    assert status_error(500, "", {}, "u", b"", REDACT, "reports").message == "no message"


def test_api_error_reads_a_bounded_excerpt_and_closes_the_response(server):
    server.script(response(400, {"Content-Type": "text/plain"}, "bad   request\n" + "x" * 50_000))
    answer = requests.get(server.url + "/r", stream=True, timeout=5)
    error = api_error(answer, REDACT, "reports")
    assert error.message.startswith("bad request xxx")
    assert len(error.message) < 400
    assert answer.raw.closed


def test_api_error_survives_an_unreadable_body(server):
    server.script(response(503, {"Content-Type": "text/plain"}, b"x" * 1000, cut_after=10))
    answer = requests.get(server.url + "/r", stream=True, timeout=5)
    answer.raw.read = lambda *a, **k: (_ for _ in ()).throw(OSError("boom"))  # type: ignore[method-assign]
    error = api_error(answer, REDACT, "reports")
    assert error.status_code == 503
    assert "body unreadable: OSError" in error.message


def test_api_error_of_a_real_json_error(server):
    server.script(json_error(429, "Too many requests", retry_after="3"))
    answer = requests.get(server.url + "/r", stream=True, timeout=5)
    error = api_error(answer, REDACT, "exports")
    assert (error.status_code, error.message, error.retry_after) == (429, "Too many requests", 3.0)


# -- connection failures -----------------------------------------------------------------------


def test_a_tls_failure_after_an_assumed_scheme_says_so():
    error = unreachable(requests.exceptions.SSLError("wrong version"), "h:80", (1, 2), True)
    assert isinstance(error, SEITLSError)
    assert "https:// was assumed" in str(error)
    assert "http://h:80" in str(error)
    other = unreachable(requests.exceptions.SSLError(), "h", (1, 2), False)
    assert "https:// was assumed" not in str(other)
    assert "verify extra" in str(other)


def test_timeouts_and_refusals_are_said_plainly_without_the_library_text():
    leak = f"HTTPConnectionPool(host='h'): headers {{'x-api-key': '{KEY}'}}"
    connect = unreachable(requests.ConnectTimeout(leak), "h", (3, 9), False)
    read = unreachable(requests.ReadTimeout(leak), "h", (3, 9), False)
    refused = unreachable(requests.ConnectionError(leak), "h", (3, 9), False)
    assert str(connect) == "Could not connect to the SEI API at h within 3 s"
    assert str(read) == "The SEI API at h sent nothing for 9 s (read timeout)"
    assert str(refused) == "Could not connect to the SEI API at h (ConnectionError)"
    for error in (connect, read, refused):
        assert type(error) is SEIConnectionError
        assert KEY not in " ".join(chain(error))


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (httpx.ConnectTimeout("t"), SEIConnectionError, "within 3 s"),
        (httpx.ReadTimeout("t"), SEIConnectionError, "sent nothing for 9 s"),
        (httpx.ConnectError(f"refused {KEY}"), SEIConnectionError, "Could not reach"),
    ],
)
def test_unreachable_async(error, kind, text):
    result = unreachable_async(error, "h", (3, 9), False)
    assert type(result) is kind
    assert text in str(result)
    assert KEY not in str(result)


def test_unreachable_async_finds_a_tls_error_in_the_chain():
    import ssl

    error = httpx.ConnectError("handshake")
    error.__cause__ = ssl.SSLError("wrong version number")
    assert isinstance(unreachable_async(error, "h", (3, 9), True), SEITLSError)


# -- guarded(): nothing leaves with a secret ---------------------------------------------------


def _fail(error: BaseException, cause: BaseException | None) -> None:
    if cause is None:
        raise error
    try:
        raise cause
    except BaseException as inner:
        raise error from inner


def raise_in_guard(error: BaseException, cause: BaseException | None = None) -> BaseException:
    with pytest.raises(BaseException) as info, guarded(lambda: REDACT):
        _fail(error, cause)
    return info.value


def assert_clean(error: BaseException) -> None:
    texts = chain(error)
    texts += traceback.format_exception(error)
    assert not any(KEY in text for text in texts), texts


def test_a_requests_exception_quoting_the_header_value_is_replaced(server):
    """requests quotes an invalid header value whole: the key with it."""
    with pytest.raises(SEIError) as info, guarded(lambda: REDACT):
        requests.get(server.url, headers={"x-api-key": f" {KEY}"}, timeout=5)
    assert type(info.value) is SEIError
    assert "***" in str(info.value)
    assert_clean(info.value)
    assert server.hits == 0


@pytest.mark.parametrize(
    "error",
    [
        ValueError(f"value {KEY}"),  # in str
        ValueError(b"bytes " + KEY.encode()),  # only in repr and args
        OSError(5, "io", f"/tmp/{KEY}"),  # in args and str
        SEIAPIError(400, f"echo {KEY}"),
    ],
    ids=["str", "repr", "args", "SEIAPIError"],
)
def test_an_exception_holding_the_key_is_replaced(error):
    replaced = raise_in_guard(error)
    assert replaced is not error
    assert isinstance(replaced, SEIError)
    assert_clean(replaced)


def test_a_key_in_a_chained_cause_replaces_the_whole_chain():
    replaced = raise_in_guard(SEIResponseError("outer text is clean"), ValueError(KEY))
    assert str(replaced) == "outer text is clean"
    assert type(replaced) is SEIResponseError  # rebuilt as its own kind
    assert replaced.__cause__ is None
    assert replaced.__context__ is None
    assert_clean(replaced)


def test_a_key_in_an_implicit_context_is_cut_too():
    def handler() -> None:
        try:
            raise KeyError(KEY)
        except KeyError:
            raise SEIConnectionError("could not connect") from None  # context stays

    with pytest.raises(SEIConnectionError) as info, guarded(lambda: REDACT):
        handler()
    assert info.value.__context__ is None
    assert_clean(info.value)


def test_a_clean_exception_passes_unchanged():
    error = SEIIncompleteReadError(100, 10)
    assert raise_in_guard(error) is error
    assert raise_in_guard(SEIAPIError(503, "busy")).__class__ is SEIAPIError


def test_a_config_error_passes_unchanged():
    """It names a field and never holds the key (``check_api_key`` says ``<not shown>``)."""
    error = SEIInvalidRequestError("date_start", "soon", "a date")
    assert raise_in_guard(error) is error


def test_guarded_returns_what_the_block_returns():
    def work() -> int:
        with guarded(lambda: REDACT):
            return 7

    assert work() == 7
