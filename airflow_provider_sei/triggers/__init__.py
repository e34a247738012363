"""Triggers of the Harness SEI provider (``airflow_provider_sei.triggers.exports``)."""
