"""The API's request bodies as typed, validated models.

* :mod:`.reports`: the legacy reports endpoint's ``ExportRequestDTO`` (:class:`TeamReportRequest`)
  and ``ContributorExportRequestDTO`` (:class:`ContributorReportRequest`);
* :mod:`.exports`: the V2 export job's body (:class:`ExportJobRequest`).

``build()`` takes loose input and raises ``SEIInvalidRequestError`` naming the field; ``to_json()``
gives the body as the API spells it.
"""

from __future__ import annotations

from airflow_provider_sei.models._parse import (
    parse_bool,
    parse_date,
    parse_id,
    parse_int,
    parse_list,
)
from airflow_provider_sei.models.exports import ExportJob, ExportJobRequest, parse_export_type
from airflow_provider_sei.models.reports import (
    ContributorReportRequest,
    ReportRequest,
    TeamReportRequest,
    header_names,
    parse_calculation_type,
    parse_granularity,
    parse_identifier,
    parse_metrics,
)

__all__ = [
    "ContributorReportRequest",
    "ExportJob",
    "ExportJobRequest",
    "ReportRequest",
    "TeamReportRequest",
    "header_names",
    "parse_bool",
    "parse_calculation_type",
    "parse_date",
    "parse_export_type",
    "parse_granularity",
    "parse_id",
    "parse_identifier",
    "parse_int",
    "parse_list",
    "parse_metrics",
]
