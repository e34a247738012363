"""get_provider_info(): schema, discovery by Airflow, and the connection form on 3.1 and 3.2+."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_sei import __version__, get_provider_info
from airflow_provider_sei.hooks.sei import SEIHook

AIRFLOW_DIR = Path(airflow.__file__).parent


def _connection_type() -> dict[str, Any]:
    (conn_type,) = get_provider_info()["connection-types"]
    return conn_type


def test_valid_against_airflow_schema():
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_identity():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-sei"
    assert info["versions"] == [__version__]
    conn_type = _connection_type()
    assert conn_type["connection-type"] == SEIHook.conn_type == "harness_sei"
    assert conn_type["hook-class-name"] == "airflow_provider_sei.hooks.sei.SEIHook"
    assert conn_type["hook-name"] == SEIHook.hook_name
    modules = info["operators"][0]["python-modules"]
    assert modules == [
        "airflow_provider_sei.operators.exports",
        "airflow_provider_sei.operators.reports",
        "airflow_provider_sei.operators.fanout",
    ]
    assert info["triggers"][0]["python-modules"] == ["airflow_provider_sei.triggers.exports"]
    assert info["hooks"][0]["python-modules"] == ["airflow_provider_sei.hooks.sei"]
    for module in [*modules, "airflow_provider_sei.triggers.exports"]:
        importlib.import_module(module)


def test_every_operator_is_reachable_from_the_operators_package():
    import airflow_provider_sei.operators as operators

    for name in operators.__all__:
        cls = getattr(operators, name)
        assert cls.__name__ == name
        assert cls.__module__ in get_provider_info()["operators"][0]["python-modules"]


def test_package_import_needs_neither_airflow_nor_requests():
    code = (
        "import sys, airflow_provider_sei as p; p.get_provider_info(); "
        "bad = {'airflow', 'requests'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ui_field_behaviour_valid_and_agrees_with_hook():
    behaviour = _connection_type()["ui-field-behaviour"]
    hook_behaviour = SEIHook.get_ui_field_behaviour()
    assert hook_behaviour == {k.replace("-", "_"): v for k, v in behaviour.items()}
    assert set(behaviour["hidden-fields"]) == {"login", "port", "schema"}
    assert behaviour["relabeling"]["password"] == "API Key"
    assert behaviour["placeholders"]["host"] == "https://app.harness.io/gateway/sei/api"
    schema_file = AIRFLOW_DIR / "customized_form_field_behaviours.schema.json"
    jsonschema.validate(hook_behaviour, json.loads(schema_file.read_text()))


def test_conn_fields_are_valid_json_schemas_with_real_defaults():
    fields = _connection_type()["conn-fields"]
    expected = {
        "auth_scheme", "account_id", "project_identifier", "org_identifier", "timeout",
        "connect_timeout", "verify", "proxies", "max_retries", "backoff_max", "max_elapsed",
    }  # fmt: skip
    assert set(fields) == expected
    for name, field in fields.items():
        assert field["label"], name
        jsonschema.Draft7Validator.check_schema(field["schema"])
        if "default" in field["schema"]:
            jsonschema.validate(field["schema"]["default"], field["schema"])
        if "enum" in field["schema"]:  # an enum with null shows a literal "null" in the UI
            assert "null" not in field["schema"]["type"], name
            assert None not in field["schema"]["enum"], name
            assert field["schema"]["default"] in field["schema"]["enum"], name


def _hook_widgets_as_the_31_ui_sees_them(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Run ``get_connection_form_widgets`` with the mocks Airflow's UI service uses for it."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as H

    wtforms = types.ModuleType("wtforms")
    wtforms.StringField = H.MockStringField  # type: ignore[attr-defined]
    wtforms.IntegerField = H.MockIntegerField  # type: ignore[attr-defined]
    wtforms.BooleanField = H.MockBooleanField  # type: ignore[attr-defined]
    validators = types.ModuleType("wtforms.validators")
    validators.Optional = H.MockOptional  # type: ignore[attr-defined]
    validators.any_of = H.MockEnum  # type: ignore[attr-defined]
    babel = types.ModuleType("flask_babel")
    babel.lazy_gettext = str  # type: ignore[attr-defined]
    fab = types.ModuleType("flask_appbuilder")
    fieldwidgets = types.ModuleType("flask_appbuilder.fieldwidgets")
    fieldwidgets.BS3TextFieldWidget = H.MockAnyWidget  # type: ignore[attr-defined]
    for name, module in {
        "wtforms": wtforms,
        "wtforms.validators": validators,
        "flask_babel": babel,
        "flask_appbuilder": fab,
        "flask_appbuilder.fieldwidgets": fieldwidgets,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return {
        name: field.param.dump() for name, field in SEIHook.get_connection_form_widgets().items()
    }


def _normalise(dump: dict[str, Any]) -> dict[str, Any]:
    schema = dump["schema"]
    types_ = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
    return {
        "title": schema.get("title"),
        "type": [t for t in types_ if t != "null"],
        "default": dump.get("value"),
        "enum": schema.get("enum"),
        "description": dump.get("description"),
    }


def test_hook_form_widgets_agree_with_conn_fields(monkeypatch):
    from_hook = _hook_widgets_as_the_31_ui_sees_them(monkeypatch)
    from_info = {
        name: {
            "value": field["schema"].get("default"),
            "schema": {**field["schema"], "title": field["label"]},
            "description": field["description"],
        }
        for name, field in _connection_type()["conn-fields"].items()
    }
    assert {k: _normalise(v) for k, v in from_hook.items()} == {
        k: _normalise(v) for k, v in from_info.items()
    }


def test_discovered_by_providers_manager():
    try:
        metadata.distribution("airflow-provider-sei")
    except metadata.PackageNotFoundError:
        pytest.fail("airflow-provider-sei is not installed: pip install -e . first")
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-sei"].version == __version__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3.3 moved .hooks to the task runtime manager
        hook_info = manager.hooks["harness_sei"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_sei.hooks.sei.SEIHook"
    assert hook_info.connection_id_attribute_name == "harness_sei_conn_id"
    assert hook_info.hook_name == "Harness SEI"
    assert hook_info.connection_testable


def test_connection_form_as_the_ui_gets_it():
    """The UI's own service (3.1: hook methods under mocks; 3.2+: provider info) sees the form.

    In a subprocess: ProvidersManager is a process-wide singleton.
    """
    code = (
        "import json\n"
        "from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService\n"
        "meta = HookMetaService.hook_meta_data()\n"
        "(m,) = [m for m in meta if m.connection_type == 'harness_sei']\n"
        "print('RESULT=' + json.dumps(m.model_dump(mode='json'), default=str))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("RESULT=")]
    meta = json.loads(line.removeprefix("RESULT="))
    standard = meta["standard_fields"]
    assert standard["password"]["title"] == "API Key"
    assert standard["host"]["placeholder"] == "https://app.harness.io/gateway/sei/api"
    assert all(standard[f]["hidden"] for f in ("login", "port", "url_schema"))
    extra = meta["extra_fields"]
    assert set(extra) == set(_connection_type()["conn-fields"])
    assert extra["auth_scheme"]["value"] == "auto"
    assert extra["auth_scheme"]["schema"]["enum"] == ["auto", "x-api-key", "apikey"]
    assert extra["timeout"]["value"] == 300
    assert extra["max_retries"]["schema"]["title"] == "Max retries"
