"""The ``harness_sei`` connection form: the one definition of its fields and their defaults.

Plain data, no Airflow import: ``get_provider_info()`` reads it (Airflow 3.2+ builds the form
from ``conn-fields`` / ``ui-field-behaviour``), and ``SEIHook`` turns the same data into WTForms
widgets for Airflow 3.1, so the two forms cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any

CONN_TYPE = "harness_sei"
DEFAULT_BASE_URL = "https://app.harness.io/gateway/sei/api"

#: ``auto``: ``x-api-key`` on the legacy reports endpoint (as its page documents) and
#: ``authorization: ApiKey`` on the V2 export jobs (as theirs do); the others apply to both.
AUTH_SCHEMES = ("auto", "x-api-key", "apikey")
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 300
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_MAX = 60
DEFAULT_MAX_ELAPSED = 1800


def _field(label: str, type_: str, description: str, **schema: Any) -> dict[str, Any]:
    # Optional fields are nullable; a field with an enum is not (an enum with null shows a
    # literal "null" in the 3.2+ UI), so it carries a real default instead.
    nullable = "enum" not in schema
    return {
        "label": label,
        "description": description,
        "schema": {"type": [type_, "null"] if nullable else type_, **schema},
    }


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "auth_scheme": _field(
        "Auth scheme",
        "string",
        "auto: x-api-key on legacy reports, 'authorization: ApiKey' on V2 exports (as each"
        " page documents); x-api-key or apikey: that header on both.",
        enum=list(AUTH_SCHEMES),
        default=AUTH_SCHEMES[0],
    ),
    "account_id": _field(
        "Account ID",
        "string",
        "Sent as the Harness-Account header. Empty: taken from a pat./sat. API key.",
    ),
    "project_identifier": _field(
        "Project identifier", "string", "Sent as the projectIdentifier query parameter."
    ),
    "org_identifier": _field(
        "Organization identifier", "string", "Sent as the orgIdentifier query parameter."
    ),
    "timeout": _field(
        "Read timeout (seconds)",
        "integer",
        "Longest wait for the server between two reads of a response.",
        default=DEFAULT_READ_TIMEOUT,
    ),
    "connect_timeout": _field(
        "Connect timeout (seconds)",
        "integer",
        "Longest wait to open a connection.",
        default=DEFAULT_CONNECT_TIMEOUT,
    ),
    "verify": _field(
        "Verify TLS",
        "string",
        "true, false, or the path of a CA bundle file.",
        default="true",
    ),
    "proxies": _field(
        "Proxies",
        "string",
        'A JSON object, e.g. {"https": "http://proxy.example.com:3128"}.',
    ),
    "max_retries": _field(
        "Max retries",
        "integer",
        "Retries of 429, 5xx, timeouts, connection errors and cut bodies.",
        default=DEFAULT_MAX_RETRIES,
    ),
    "backoff_max": _field(
        "Max backoff (seconds)",
        "integer",
        "Longest wait between two attempts.",
        default=DEFAULT_BACKOFF_MAX,
    ),
    "max_elapsed": _field(
        "Max total time (seconds)",
        "integer",
        "Bound on one call, retries and download included.",
        default=DEFAULT_MAX_ELAPSED,
    ),
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["login", "port", "schema"],
    "relabeling": {"host": "Base URL", "password": "API Key"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "pat.<accountId>.<tokenId>.<secret>",
        "account_id": "taken from the API key when empty",
        "project_identifier": "myproject",
        "org_identifier": "default",
    },
}


def conn_fields() -> dict[str, dict[str, Any]]:
    """``conn-fields`` for the provider info (a copy: callers may mutate it)."""
    return copy.deepcopy(CONN_FIELDS)


def ui_field_behaviour(kebab_case: bool = True) -> dict[str, Any]:
    """``ui-field-behaviour`` for the provider info, or with snake_case keys for the hook."""
    behaviour = copy.deepcopy(UI_FIELD_BEHAVIOUR)
    if kebab_case:
        return behaviour
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


def connection_form_widgets() -> dict[str, Any]:
    """Return the WTForms widgets of the extra fields (Airflow 3.1's connection form).

    Imported only when Airflow 3.1's UI asks: the UI's process has these packages.
    """
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
