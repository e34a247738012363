"""Operators of the Harness SEI provider.

``SEITeamReportOperator`` and ``SEIContributorReportOperator`` live in
``airflow_provider_sei.operators.reports``; import them from there (this package stays light).
"""
