"""Hooks of the Harness SEI provider (``airflow_provider_sei.hooks.sei.SEIHook``).

Kept free of imports: ``get_provider_info()`` reads ``hooks.form`` without importing Airflow.
"""
