"""Apache Airflow provider for the Harness SEI export API.

Importing this package imports neither Airflow nor requests: Airflow reads the provider info
without loading the provider.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_INTEGRATION = "Harness SEI"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point group ``apache_airflow_provider``).

    Validated against ``airflow/provider_info.schema.json``. ``conn-fields`` and
    ``ui-field-behaviour`` build the connection form on Airflow 3.2+; Airflow 3.1 asks the hook.
    """
    from airflow_provider_sei.hooks.form import CONN_TYPE, conn_fields, ui_field_behaviour

    return {
        "package-name": "airflow-provider-sei",
        "name": _INTEGRATION,
        "description": "`Harness SEI <https://developer.harness.io/docs/software-engineering-insights>`__"
        " (Software Engineering Insights): export productivity, DORA efficiency, sprint,"
        " business-alignment and time-in-status metrics (V2 export jobs and the legacy reports"
        " endpoint) as CSV, gzip or Parquet into any object store.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://developer.harness.io/docs/software-engineering-insights",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_sei.hooks.sei"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_provider_sei.operators.exports",
                    "airflow_provider_sei.operators.reports",
                    "airflow_provider_sei.operators.fanout",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_sei.triggers.exports"],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_sei.hooks.sei.SEIHook",
                "hook-name": "Harness SEI",
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
    }
