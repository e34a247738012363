"""The ``harness_sei`` connection read into settings: extras, defaults, the key, conn ids."""

from __future__ import annotations

import json
import warnings

import pytest

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.hooks.settings import (
    ConnectionSettings,
    account_id_from_key,
    check_api_key,
    normalise_base_url,
)

from .support import REPORTS, assert_no_key, chain, team_request


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, "https://app.harness.io/gateway/sei/api"),
        ("", None, None, "https://app.harness.io/gateway/sei/api"),
        (
            "https://app.harness.io/gateway/sei/api/",
            None,
            None,
            "https://app.harness.io/gateway/sei/api",
        ),
        (
            "https://accounts.eu.harness.io/sei/api",
            None,
            None,
            "https://accounts.eu.harness.io/sei/api",
        ),
        ("app.harness.io/prod1/sei/api", None, None, "https://app.harness.io/prod1/sei/api"),
        ("sei.internal.example", "sei/api", 8443, "https://sei.internal.example:8443/sei/api"),
        ("http://127.0.0.1:9000", None, None, "http://127.0.0.1:9000"),
    ],
)
def test_normalise_base_url(host, schema, port, expected):
    assert normalise_base_url(host, schema, port) == expected


@pytest.mark.parametrize(
    "host", ["ftp://example.com", "https://", "https://h/api?x=1", "https://u:p@h", "https://h/#f"]
)
def test_normalise_base_url_rejects(host):
    with pytest.raises(SEIInvalidRequestError) as info:
        normalise_base_url(host)
    assert info.value.field == "host"


def test_account_id_from_key():
    assert account_id_from_key("pat.acc.tok.secret") == "acc"
    assert account_id_from_key("sat.acc.tok.secret") == "acc"
    assert account_id_from_key("xyz.acc.tok.secret") is None
    assert account_id_from_key("pat.acc.secret") is None
    assert account_id_from_key("pat..tok.secret") is None


# -- the API key -------------------------------------------------------------------------------

SECRET = "pat.acct.tok.0123456789abcdef"


@pytest.mark.parametrize(
    "key",
    [
        SECRET[:15] + " " + SECRET[15:],  # a space inside
        SECRET[:15] + "\t" + SECRET[15:],
        SECRET[:15] + "\r\n" + SECRET[15:],  # a header injection if it were sent
        SECRET[:15] + "\n" + SECRET[15:],
        SECRET + "é",  # Latin-1, not ASCII
        SECRET + "密",  # not even Latin-1: http.client would fail quoting it
        SECRET + "\x00",
        SECRET + "\x7f",
        SECRET[:15] + "\u00a0" + SECRET[15:],  # a no-break space pasted from a web page
    ],
    ids=["space", "tab", "crlf", "lf", "latin-1", "cjk", "nul", "del", "nbsp"],
)
def test_a_key_that_cannot_be_one_is_refused_without_repeating_it(make_conn, server, key, tmp_path):
    hook = SEIHook(make_conn(host=server.url, password=key))
    with pytest.raises(SEIInvalidRequestError) as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    error = info.value
    assert error.field == "password (API key)"
    assert isinstance(error, ValueError)
    assert "line break" in str(error)
    assert_no_key(SECRET, *chain(error))
    assert_no_key(SECRET[15:], *chain(error))  # not even the part after the bad character
    assert server.hits == 0
    assert list(tmp_path.iterdir()) == []


def test_whitespace_around_a_key_is_dropped_not_sent(make_conn, server, tmp_path):
    """A line break pasted after the key is not part of it: the header carries the key alone."""
    hook = SEIHook(make_conn(host=server.url, password=f"  {SECRET}\r\n"))
    hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.requests[0].headers["x-api-key"] == SECRET


def test_check_api_key():
    assert check_api_key(None) == ""
    assert check_api_key(" k-1 ") == "k-1"


def test_a_missing_key_fails_before_any_request_naming_the_field(make_conn, server, tmp_path):
    hook = SEIHook(make_conn(host=server.url, password=""))
    with pytest.raises(SEIInvalidRequestError, match="has none") as info:
        hook.download_report(team_request(), tmp_path / "r.csv")
    assert info.value.field == "password (API key)"
    assert server.hits == 0


def test_the_settings_repr_hides_the_key(make_conn, api_key):
    hook = SEIHook(make_conn())
    assert_no_key(api_key, repr(hook.settings), repr(hook), repr(hook.get_conn()))


# -- auth headers and scope ----------------------------------------------------------------------


def settings(**changes: object) -> ConnectionSettings:
    return ConnectionSettings(base_url="https://h", api_key="pat.acc.tok.secret", **changes)  # type: ignore[arg-type]


def test_auth_headers_auto_follow_each_endpoint_family():
    auto = settings(account_id="acc")
    assert auto.auth_headers() == {"x-api-key": "pat.acc.tok.secret", "Harness-Account": "acc"}
    assert auto.auth_headers(v2=True) == {
        "Authorization": "ApiKey pat.acc.tok.secret",
        "Harness-Account": "acc",
    }


@pytest.mark.parametrize("scheme", ["x-api-key", "apikey"])
def test_an_explicit_auth_scheme_applies_to_both_families(scheme):
    chosen = settings(auth_scheme=scheme)
    assert chosen.auth_headers() == chosen.auth_headers(v2=True)
    name = "x-api-key" if scheme == "x-api-key" else "Authorization"
    assert list(chosen.auth_headers()) == [name]


def test_scope_params():
    assert settings().scope_params() == {}
    both = settings(project_identifier="p", org_identifier="o")
    assert both.scope_params() == {"projectIdentifier": "p", "orgIdentifier": "o"}


# -- extras --------------------------------------------------------------------------------------


def test_extras_from_strings(make_conn, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conn_id = make_conn(
        timeout="12.5",
        connect_timeout="3",
        max_retries="2.0",
        backoff_initial="0.25",
        backoff_max="10",
        max_elapsed="120",
        verify=str(bundle),
        proxies='{"https": "http://user:pw@proxy.example:3128"}',
        project_identifier="",
        account_id="null",
        auth_scheme="ApiKey",
    )
    hook = SEIHook(conn_id)
    settings = hook.settings

    assert hook.timeout == (3.0, 12.5)
    policy = hook.retry_policy
    assert (policy.max_retries, policy.backoff_initial, policy.backoff_max) == (2, 0.25, 10.0)
    assert policy.max_elapsed == 120.0
    assert settings.verify == str(bundle)
    assert settings.proxies == {"https": "http://user:pw@proxy.example:3128"}
    assert settings.project_identifier is None  # "" from a form means unset
    assert settings.account_id == "acct123"  # "null" too: taken from the key
    assert settings.auth_scheme == "apikey"
    session = hook.get_conn()
    assert session.verify == str(bundle)
    assert session.proxies["https"] == "http://user:pw@proxy.example:3128"
    assert session.trust_env is False  # configured proxies win over the environment's


def test_extras_defaults(make_conn):
    hook = SEIHook(make_conn())
    assert hook.base_url == "https://app.harness.io/gateway/sei/api"
    assert hook.timeout == (10.0, 300.0)
    assert hook.retry_policy == RetryPolicy()
    assert hook.settings.verify is True
    assert hook.settings.auth_scheme == "auto"
    assert hook.get_conn().trust_env is True


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("True", True), (False, False), ("0", False)]
)
def test_verify_booleans(make_conn, value, expected):
    assert SEIHook(make_conn(verify=value)).get_conn().verify is expected


def test_legacy_prefixed_extras(make_conn):
    hook = SEIHook(make_conn(**{"extra__harness_sei__auth_scheme": "apikey"}))
    assert hook.settings.auth_scheme == "apikey"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"auth_scheme": "bearer"}, "auth_scheme"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "nan"}, "timeout"),
        ({"connect_timeout": "-1"}, "connect_timeout"),
        ({"max_retries": "-1"}, "max_retries"),
        ({"max_retries": "two"}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"verify": "/no/such/ca.pem"}, "verify"),
        ({"proxies": "not json"}, "proxies"),
        ({"proxies": '["http://p"]'}, "proxies"),
        ({"max_elapsed": "-5"}, "max_elapsed"),
        ({"backoff_max": "0.5"}, "backoff_max"),
        ({"backoff_initial": "30", "backoff_max": "10"}, "backoff_initial"),
        ({"account_id": {"a": 1}}, "account_id"),
    ],
)
def test_invalid_extras_are_named_before_any_request(make_conn, server, extra, field):
    with pytest.raises(SEIInvalidRequestError) as info:
        SEIHook(make_conn(host=server.url, **extra)).list_org_trees()
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert server.hits == 0


def test_a_proxy_with_credentials_is_not_repeated_in_an_error(make_conn):
    with pytest.raises(SEIInvalidRequestError) as info:
        SEIHook(make_conn(proxies='{"https": 5, "user": "u:hunter2@p"}')).get_conn()
    assert "hunter2" not in str(info.value)


def test_hook_overrides(make_conn):
    policy = RetryPolicy(max_retries=0)
    hook = SEIHook(make_conn(timeout="30"), retry_policy=policy, timeout=2)
    assert hook.retry_policy is policy
    assert hook.timeout == (2.0, 2.0)


# -- connection ids ------------------------------------------------------------------------------


def test_env_var_json_connection_default_id(server, monkeypatch, api_key, tmp_path):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HARNESS_SEI_DEFAULT",
        json.dumps(
            {
                "conn_type": "harness_sei",
                "host": server.url,
                "password": api_key,
                "extra": {"auth_scheme": "apikey", "max_retries": "0"},
            }
        ),
    )
    hook = SEIHook()
    assert hook.harness_sei_conn_id == "harness_sei_default"
    hook.download_report(team_request(), tmp_path / "r.csv")
    assert server.requests[0].path == REPORTS
    assert server.requests[0].headers["authorization"] == f"ApiKey {api_key}"
    assert hook.retry_policy.max_retries == 0


def test_env_var_uri_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEI_URI",
        "harness-sei://:pat.acc9.tok.sec@sei.example.com:8443/gateway/sei/api"
        "?auth_scheme=apikey&max_retries=1",
    )
    hook = SEIHook("sei_uri")
    assert hook.base_url == "https://sei.example.com:8443/gateway/sei/api"
    assert hook.settings.auth_scheme == "apikey"
    assert hook.settings.account_id == "acc9"
    assert hook.retry_policy.max_retries == 1


def test_the_old_conn_id_parameter_still_works_with_a_warning(make_conn):
    conn_id = make_conn(host="https://old.example")
    with pytest.warns(DeprecationWarning, match="harness_sei_conn_id"):
        hook = SEIHook(sei_conn_id=conn_id)
    assert hook.harness_sei_conn_id == conn_id
    assert hook.base_url == "https://old.example"


def test_the_old_default_connection_is_read_with_a_warning(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HARNESS_SEI_DEFAULT", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEI_DEFAULT",
        json.dumps({"conn_type": "harness_sei", "host": "https://legacy.example", "password": "k"}),
    )
    with pytest.warns(DeprecationWarning, match="sei_default"):
        assert SEIHook().base_url == "https://legacy.example"


def test_the_new_default_connection_wins_without_a_warning(monkeypatch):
    for conn_id, host in (("SEI_DEFAULT", "https://old"), ("HARNESS_SEI_DEFAULT", "https://new")):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps({"conn_type": "harness_sei", "host": host, "password": "k"}),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert SEIHook().base_url == "https://new"


def test_a_missing_connection_is_not_found(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HARNESS_SEI_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SEI_DEFAULT", raising=False)
    with pytest.raises(Exception, match=r"harness_sei_default|sei_default") as info:
        SEIHook().settings  # noqa: B018
    assert type(info.value).__name__ == "AirflowNotFoundException"
