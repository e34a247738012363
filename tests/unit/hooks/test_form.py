"""The connection form: one definition, whose defaults are the ones the hook really uses."""

from __future__ import annotations

from airflow_provider_sei.hooks import form
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.sei import SEIHook


def test_the_form_defaults_are_the_hooks_defaults(make_conn):
    hook = SEIHook(make_conn())
    fields = form.conn_fields()

    def default(name: str) -> object:
        return fields[name]["schema"]["default"]

    assert default("auth_scheme") == hook.settings.auth_scheme
    assert (default("connect_timeout"), default("timeout")) == hook.timeout
    policy = hook.retry_policy
    assert default("max_retries") == policy.max_retries == RetryPolicy().max_retries
    assert default("backoff_max") == policy.backoff_max
    assert default("max_elapsed") == policy.max_elapsed
    assert default("verify") == "true"
    assert hook.settings.verify is True


def test_every_field_is_an_extra_the_settings_read(make_conn):
    """A value typed into any field reaches the settings (no dead field)."""
    values = {
        "auth_scheme": "apikey",
        "account_id": "acc",
        "project_identifier": "p",
        "org_identifier": "o",
        "timeout": "11",
        "connect_timeout": "4",
        "verify": "false",
        "proxies": '{"https": "http://proxy:3128"}',
        "max_retries": "2",
        "backoff_max": "9",
        "max_elapsed": "99",
    }
    assert set(values) == set(form.CONN_FIELDS)
    hook = SEIHook(make_conn(**values))
    settings = hook.settings
    assert (settings.auth_scheme, settings.account_id) == ("apikey", "acc")
    assert settings.scope_params() == {"projectIdentifier": "p", "orgIdentifier": "o"}
    assert hook.timeout == (4.0, 11.0)
    assert settings.verify is False
    assert settings.proxies == {"https": "http://proxy:3128"}
    policy = hook.retry_policy
    assert (policy.max_retries, policy.backoff_max, policy.max_elapsed) == (2, 9.0, 99.0)


def test_an_enum_field_has_a_real_default_and_no_null():
    auth = form.CONN_FIELDS["auth_scheme"]["schema"]
    assert auth["type"] == "string"
    assert auth["enum"] == list(form.AUTH_SCHEMES)
    assert auth["default"] == "auto"
    for name, spec in form.CONN_FIELDS.items():
        if name != "auth_scheme":
            assert "null" in spec["schema"]["type"], name


def test_copies_are_independent():
    first = form.conn_fields()
    first["timeout"]["schema"]["default"] = 1
    assert form.conn_fields()["timeout"]["schema"]["default"] == form.DEFAULT_READ_TIMEOUT
    behaviour = form.ui_field_behaviour()
    behaviour["hidden-fields"].append("host")
    assert "host" not in form.ui_field_behaviour()["hidden-fields"]


def test_ui_field_behaviour_in_both_spellings():
    kebab = form.ui_field_behaviour()
    snake = form.ui_field_behaviour(kebab_case=False)
    assert set(kebab) == {"hidden-fields", "relabeling", "placeholders"}
    assert set(snake) == {"hidden_fields", "relabeling", "placeholders"}
    assert snake["hidden_fields"] == kebab["hidden-fields"]
    assert kebab["relabeling"] == {"host": "Base URL", "password": "API Key"}
    assert SEIHook.get_ui_field_behaviour() == snake
