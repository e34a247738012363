"""The ``harness_sei`` connection read into typed, validated settings.

Extras may arrive as strings (from the UI, ``airflow connections add`` or a URI), under their
own name or the legacy ``extra__harness_sei__<name>`` key; empty values mean "use the default".
Every problem raises ``SEIInvalidRequestError`` naming the extra, before any request is sent.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.hooks.form import (
    AUTH_SCHEMES,
    CONN_TYPE,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
)
from airflow_provider_sei.hooks.retry import RetryPolicy

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_KEY_PREFIXES = ("pat", "sat")


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook needs from a connection; ``repr`` never shows the API key."""

    base_url: str
    api_key: str = field(repr=False)
    auth_scheme: str = AUTH_SCHEMES[0]
    #: The Base URL had no scheme and ``https://`` was put in front (said in TLS errors).
    scheme_assumed: bool = False
    account_id: str | None = None
    project_identifier: str | None = None
    org_identifier: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    verify: bool | str = True
    proxies: dict[str, str] = field(default_factory=dict)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionSettings:
        """Read an Airflow ``Connection`` (host, password, schema, port and extras)."""
        extra = _Extras(conn.extra_dejson or {})
        api_key = check_api_key(conn.password)
        scheme = extra.text("auth_scheme") or AUTH_SCHEMES[0]
        if scheme.lower() not in AUTH_SCHEMES:
            raise SEIInvalidRequestError("auth_scheme", scheme, " or ".join(AUTH_SCHEMES))
        defaults = RetryPolicy()
        backoff_max = extra.number("backoff_max", defaults.backoff_max, minimum=1)
        # Not in the form (an advanced setting): the first wait, doubled on every retry.
        backoff_initial = extra.number("backoff_initial", defaults.backoff_initial, minimum=0.001)
        if backoff_initial > backoff_max:
            raise SEIInvalidRequestError(
                "backoff_initial",
                backoff_initial,
                f"a number of seconds <= backoff_max ({backoff_max:g})",
            )
        policy = RetryPolicy(
            max_retries=extra.integer("max_retries", defaults.max_retries, minimum=0),
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_elapsed=extra.number("max_elapsed", defaults.max_elapsed, minimum=1),
        )
        return cls(
            base_url=normalise_base_url(conn.host, conn.schema, conn.port),
            scheme_assumed=bool((conn.host or "").strip()) and "://" not in conn.host,
            api_key=api_key,
            auth_scheme=scheme.lower(),
            account_id=extra.text("account_id") or account_id_from_key(api_key),
            project_identifier=extra.text("project_identifier"),
            org_identifier=extra.text("org_identifier"),
            connect_timeout=extra.number("connect_timeout", DEFAULT_CONNECT_TIMEOUT, minimum=0.001),
            read_timeout=extra.number("timeout", DEFAULT_READ_TIMEOUT, minimum=0.001),
            verify=extra.verify(),
            proxies=extra.proxies(),
            retry_policy=policy,
        )

    @property
    def host(self) -> str:
        """The API's host name (for messages: never a secret)."""
        return urlsplit(self.base_url).netloc

    def auth_headers(self, *, v2: bool = False) -> dict[str, str]:
        """Return the authentication headers of the legacy endpoint, or of the V2 export jobs."""
        scheme = (
            self.auth_scheme if self.auth_scheme != "auto" else ("apikey" if v2 else "x-api-key")
        )
        if scheme == "apikey":
            headers = {"Authorization": f"ApiKey {self.api_key}"}
        else:
            headers = {"x-api-key": self.api_key}
        if self.account_id:
            headers["Harness-Account"] = self.account_id
        return headers

    def scope_params(self) -> dict[str, str]:
        """``projectIdentifier`` / ``orgIdentifier`` query parameters, when configured."""
        params = {}
        if self.project_identifier:
            params["projectIdentifier"] = self.project_identifier
        if self.org_identifier:
            params["orgIdentifier"] = self.org_identifier
        return params


def normalise_base_url(host: str | None, schema: str | None = None, port: Any = None) -> str:
    """Return the base URL without a trailing slash; ``https://`` when no scheme is given.

    Empty means the SaaS gateway. In the URI form (``harness-sei://:KEY@host/gateway/sei/api``)
    Airflow puts the path into ``schema`` and the port into ``port``: both are folded back in.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SEIInvalidRequestError("host", host, "a base URL such as " + DEFAULT_BASE_URL)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SEIInvalidRequestError(
            "host", host, "a base URL without credentials, query or fragment"
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path.rstrip("/")
    if not path and schema and schema.strip("/"):
        path = "/" + schema.strip("/")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def check_api_key(password: str | None) -> str:
    """Return the API key, or raise an error if it cannot be one; the error never repeats the key.

    Harness keys are printable ASCII without spaces: anything else (a line break pasted
    with it, a non-Latin-1 character) would otherwise surface later, inside an HTTP library's
    exception, with the key in its text.
    """
    key = (password or "").strip()
    if key and not all("!" <= char <= "~" for char in key):
        raise SEIInvalidRequestError(
            "password (API key)",
            "<not shown>",
            "printable ASCII characters without spaces or control characters, as Harness "
            "issues keys: check for a line break or a stray character pasted with it",
        )
    return key


def account_id_from_key(api_key: str) -> str | None:
    """Return the account id inside a ``pat.<account>.<token>.<secret>`` or ``sat.…`` key."""
    parts = api_key.split(".")
    if len(parts) == 4 and parts[0] in _KEY_PREFIXES and parts[1]:
        return parts[1]
    return None


class _Extras:
    """Typed access to a connection's extras, tolerating strings and legacy prefixes."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self._extra = extra

    def raw(self, name: str) -> Any:
        value = self._extra.get(name)
        if value is None:
            value = self._extra.get(f"extra__{CONN_TYPE}__{name}")
        if isinstance(value, str):
            value = value.strip()
            if value.lower() in ("", "none", "null"):
                return None
        return value

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise SEIInvalidRequestError(name, value, "a string")
        return str(value)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.raw(name)
        if value is None:
            return float(default)
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number) or number < minimum:
            raise SEIInvalidRequestError(name, value, f"a number of seconds >= {minimum:g}")
        return number

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise SEIInvalidRequestError(name, value, f"an integer >= {minimum}")
        return value

    def verify(self) -> bool | str:
        value = self.raw("verify")
        if value is None or isinstance(value, bool):
            return True if value is None else value
        text = str(value)
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        if not os.path.exists(text):
            raise SEIInvalidRequestError(
                "verify", value, "true, false, or the path of an existing CA bundle"
            )
        return text

    def proxies(self) -> dict[str, str]:
        value = self.raw("proxies")
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SEIInvalidRequestError(
                "proxies", "<not shown>", 'a JSON object such as {"https": "http://proxy:3128"}'
            )
        return dict(value)
