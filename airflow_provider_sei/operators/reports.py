"""Operators that export legacy Harness SEI reports into any store ObjectStoragePath reaches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_provider_sei.models import (
    ContributorReportRequest,
    ReportRequest,
    TeamReportRequest,
    parse_granularity,
    parse_id,
    parse_identifier,
)
from airflow_provider_sei.models._parse import is_nullish
from airflow_provider_sei.operators._base import IF_EMPTY_CHOICES, SEIExportBaseOperator
from airflow_provider_sei.output.transfer import ExportResult, OutputOptions

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sei.operators._dates import DateRange

__all__ = [
    "IF_EMPTY_CHOICES",
    "SEIContributorReportOperator",
    "SEITeamReportOperator",
    "team_request",
]

COMMON_DOC = """
    :param destination: where the report goes: a URI string (``file:///...``,
        ``s3://bucket/key.csv``, ``gs://...``, any scheme ``ObjectStoragePath`` supports,
        optionally with the conn id inline as ``s3://conn_id@bucket/key``), an
        ``ObjectStoragePath`` (its storage options kept), or an ``Asset`` whose URI is the
        destination (the asset is then added to ``outlets``; in ``.partial()`` of a mapped task
        it is not: give it in ``outlets`` too). A destination that ends in ``/``
        (or is an existing folder) is a folder: the file takes the server's file name when it
        is a plain report name, else ``sei-<kind>-<id>-<start>-<end>`` with the format's
        suffix (an ``ObjectStoragePath`` drops a trailing ``/``: a folder given as one must
        exist). ``{{ sei.date_start }}``, ``{{ sei.date_end }}``, ``{{ sei.suffix }}`` and the
        operator's own names (``sei.collection_id``, ``sei.granularity``, ...) are available to
        every template but the dates'; a name ``sei`` does not hold fails the task. (templated;
        an ``Asset`` or ``ObjectStoragePath`` is not)
    :param dest_conn_id: the connection of the destination's store, e.g. ``aws_default``.
        An unknown connection fails the task. (templated)
    :param dest_storage_options: options of the file opened for writing, e.g. on S3
        ``{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "...", "ACL": "...",
        "ContentType": "text/csv"}``. (templated)
    :param harness_sei_conn_id: the Harness SEI connection.
    :param if_empty: a report without data rows (0 bytes, or a header alone): ``write`` it,
        ``skip`` the task (the destination is left as it is), or ``fail``. (templated)
    :param overwrite: replace an existing destination file. With False, an existing file fails
        the task before any request (for a folder destination, once the file name is known,
        before the body is read). (templated)
    :param output_format: ``csv`` (as the API sends it), ``csv.gz`` or ``parquet`` (typed
        columns; needs ``airflow-provider-sei[parquet]``). (templated)
    :param add_columns: metadata columns appended to every row: any of ``date_start``,
        ``date_end``, ``granularity``, ``collection_id``, ``team_id``, ``export_type``,
        ``exported_at`` (the task's start, ISO 8601 UTC), ``run_id``. (templated)
    :param max_bytes: fail when the decoded report grows beyond this many bytes; None for
        no cap. (templated)
    :param max_header_bytes: the longest header line accepted; None: 1 MiB, a thousand times
        the widest documented header. (templated)
    :param max_row_bytes: the longest row accepted; None: 1 MiB. (templated)
    :param progress_interval: seconds between two progress lines while a report streams.

    **Date range.** ``date_start`` / ``date_end`` win when given, each on its own (a datetime
    with an offset is converted to the DAG's timezone first). Otherwise, in the DAG's
    timezone: from the date of ``data_interval_start`` to the day before ``data_interval_end``
    (its end is exclusive); for an interval shorter than a day the one day before
    ``data_interval_end``; with no data interval (a manual trigger without a logical date,
    an asset-triggered run) the day before the run's ``run_after``. Both fallbacks log a
    warning.

    **Writing.** The report streams into the store; a failed export leaves the destination as
    it was and no temporary file or upload behind.

    **Return value** (XCom), also the ``extra`` of each outlet ``Asset``'s event:
    ``{"uri", "bytes", "rows", "columns", "filename", "date_start", "date_end",
    "output_format"}``: ``bytes`` as written, ``rows`` without the header, ``columns`` the
    report's header, ``filename`` the server's name when it was used.
"""


class _ReportOperator(SEIExportBaseOperator):
    """The legacy report operators: a request built from the parameters, one streamed POST."""

    render_first = (*SEIExportBaseOperator.render_first, "collection_id", "granularity")

    def build_request(self, date_start: date, date_end: date) -> ReportRequest:
        raise NotImplementedError

    collection_id: Any
    granularity: Any

    def namespace(self, context: Context) -> dict[str, Any]:
        return super().namespace(context) | {
            "collection_id": parse_identifier("collection_id", self.collection_id),
            "granularity": parse_granularity("granularity", self.granularity).value,
            "export_type": self._kind,
        }

    def lineage_source(self, context: Context) -> str:
        return f"reports/{self._kind}/{context['sei']['collection_id']}"  # type: ignore[typeddict-item]

    def export(
        self, context: Context, dates: DateRange, output: OutputOptions
    ) -> tuple[ExportResult, dict[str, Any]]:
        request = self.build_request(dates.start, dates.end)
        self.log.info(
            "Exporting the SEI %s of collection %s for %s .. %s (from %s) to %s",
            self._kind,
            request.collection_id,
            dates.start,
            dates.end,
            dates.source,
            self.destination,
        )
        result = self.hook.download_report(
            request,
            self.destination_arg(),
            dest_conn_id=self.dest_conn_id,
            write_options=self.dest_storage_options,
            output=output,
            limits=self.csv_limits(),
            progress_interval=self.progress_interval,
        )
        return result, {}


class SEITeamReportOperator(_ReportOperator):
    __doc__ = (
        """
    Export a team-level Harness SEI report (productivity and DORA efficiency metrics).

    One row per team (the team and all its child teams), one column per metric.

    :param collection_id: the team's collection id: the number in the app's
        ``collectionId=`` URL parameter (ASCII digits, at most 18; not the team's name).
        (templated)
    :param team_ref_id: the team id; the CSV holds this team and all its children. Defaults
        to ``collection_id``: the API says both name the same team. (templated)
    :param date_start: the first day of the report (``yyyy-MM-dd``, a date or a datetime);
        default: see *Date range*. (templated)
    :param date_end: the last day of the report, inclusive; default: see *Date range*.
        (templated)
    :param granularity: ``daily``, ``weekly`` or ``monthly``: the period of rate metrics.
        (templated)
    :param productivity_metrics: productivity metric names; ``[]`` means all six. (templated)
    :param efficiency_metrics: DORA metric names; ``[]`` means all five. When both lists are
        None, every metric of both categories is exported. (templated)
    :param calculation_type: how DORA values aggregate: ``MEAN``, ``MEDIAN``, ``P90``, ``P95``.
        (templated)
    """
        + COMMON_DOC
    )

    template_fields: Sequence[str] = (
        "collection_id",
        "team_ref_id",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
        *SEIExportBaseOperator.common_template_fields,
    )
    render_first = (*_ReportOperator.render_first, "team_ref_id")
    _kind = "team"

    def __init__(
        self,
        *,
        collection_id: str | int,
        destination: Any,
        team_ref_id: int | str | None = None,
        granularity: str = "weekly",
        productivity_metrics: list[str] | str | None = None,
        efficiency_metrics: list[str] | str | None = None,
        calculation_type: str = "MEAN",
        **kwargs: Any,
    ) -> None:
        super().__init__(destination=destination, **kwargs)
        self.collection_id = collection_id
        self.team_ref_id = team_ref_id
        self.granularity = granularity
        self.productivity_metrics = productivity_metrics
        self.efficiency_metrics = efficiency_metrics
        self.calculation_type = calculation_type

    def namespace(self, context: Context) -> dict[str, Any]:
        sei = super().namespace(context)
        ref = self.team_ref_id
        sei["team_ref_id"] = (
            sei["collection_id"] if is_nullish(ref) else str(parse_id("team_ref_id", ref))
        )
        return sei

    def build_request(self, date_start: date, date_end: date) -> TeamReportRequest:
        return team_request(
            self,
            collection_id=self.collection_id,
            team_ref_id=self.team_ref_id,
            date_start=date_start,
            date_end=date_end,
        )


class SEIContributorReportOperator(_ReportOperator):
    __doc__ = (
        """
    Export a Harness SEI contributor report (productivity per developer).

    One row per collection and contributor (the org tree, each manager, their direct
    reports and individual contributors), one column per metric.

    :param collection_id: the collection id: the number in the app's ``collectionId=`` URL
        parameter (ASCII digits, at most 18; not the team's name). (templated)
    :param date_start: the first day of the report (``yyyy-MM-dd``, a date or a datetime);
        default: see *Date range*. (templated)
    :param date_end: the last day of the report, inclusive; default: see *Date range*.
        (templated)
    :param granularity: ``daily``, ``weekly`` or ``monthly``: the period of rate metrics.
        (templated)
    :param include_ratings: add a rating column for each metric that has performance tiers.
        (templated)
    :param metrics: contributor metric names; None or ``[]`` means all seven. (templated)
    """
        + COMMON_DOC
    )

    template_fields: Sequence[str] = (
        "collection_id",
        "granularity",
        "include_ratings",
        "metrics",
        *SEIExportBaseOperator.common_template_fields,
    )
    _kind = "contributor"

    def __init__(
        self,
        *,
        collection_id: str | int,
        destination: Any,
        granularity: str = "weekly",
        include_ratings: bool | str = False,
        metrics: list[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(destination=destination, **kwargs)
        self.collection_id = collection_id
        self.granularity = granularity
        self.include_ratings = include_ratings
        self.metrics = metrics

    def build_request(self, date_start: date, date_end: date) -> ContributorReportRequest:
        return ContributorReportRequest.build(
            collection_id=self.collection_id,
            date_start=date_start,
            date_end=date_end,
            granularity=self.granularity,
            include_ratings=self.include_ratings,
            metrics=self.metrics,
        )


def team_request(
    operator: Any, *, collection_id: Any, team_ref_id: Any, date_start: date, date_end: date
) -> TeamReportRequest:
    """Build the team report request for one team, with ``operator``'s granularity and metrics.

    Shared by the team operator and the multi-team fan-out, which asks it once per team.
    """
    return TeamReportRequest.build(
        collection_id=collection_id,
        date_start=date_start,
        date_end=date_end,
        granularity=operator.granularity,
        team_ref_id=team_ref_id,
        productivity_metrics=operator.productivity_metrics,
        efficiency_metrics=operator.efficiency_metrics,
        calculation_type=operator.calculation_type,
    )
