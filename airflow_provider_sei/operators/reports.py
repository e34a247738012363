"""Operators that export Harness SEI reports (CSV) into any store ObjectStoragePath reaches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_sei._compat import AirflowFailException, AirflowSkipException
from airflow_provider_sei.csvstats import CSVStats
from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.models import (
    ContributorReportRequest,
    ReportRequest,
    TeamReportRequest,
    parse_bool,
)
from airflow_provider_sei.operators._dates import resolve_date_range
from airflow_provider_sei.operators._writer import (
    AtomicWriter,
    build_path,
    conn_id_of,
    exists,
    fs_of,
    is_dir,
    public_uri,
    safe_filename,
)
from airflow_provider_sei.progress import DEFAULT_INTERVAL, ExportProgress

if TYPE_CHECKING:
    from airflow.sdk import Context

IF_EMPTY_CHOICES = ("write", "skip", "fail")

_COMMON_DOC = """
    :param destination: where the CSV goes: a URI string (``file:///...``, ``s3://bucket/key.csv``,
        ``gs://...``, any scheme ``ObjectStoragePath`` supports, optionally with the conn id
        inline as ``s3://conn_id@bucket/key``), an ``ObjectStoragePath``, or an ``Asset`` whose
        URI is the destination (the asset is then added to ``outlets``). A destination that
        ends in ``/`` (or is an existing folder) is a folder: the file takes the server's
        filename from ``Content-Disposition``, else ``sei-<kind>-<collection>-<start>-<end>.csv``.
        (templated; an ``Asset`` or ``ObjectStoragePath`` is not)
    :param destination_conn_id: the connection of the destination's store, e.g. ``aws_default``.
        (templated)
    :param sei_conn_id: the Harness SEI connection.
    :param if_empty: what to do when the API returns an empty report (0 bytes): ``write`` an
        empty file, ``skip`` the task (the destination is left as it is) or ``fail`` it.
        (templated)
    :param overwrite: replace an existing destination file. With False, an existing file fails
        the task before any request (for a folder destination, once the filename is known,
        before anything is moved into place). (templated)
    :param progress_interval: seconds between two progress lines (bytes and rows so far, and
        the rate) while a report streams.

    **Date range.** ``date_start`` / ``date_end`` win when given, each on its own. Otherwise,
    in the DAG's timezone: from the date of ``data_interval_start`` to the day before
    ``data_interval_end`` (its end is exclusive); for an interval shorter than a day (cron
    strings, manual runs of ``schedule=None`` DAGs) the one day before ``data_interval_end``;
    with no data interval (asset-triggered runs) the day before the run's ``run_after``. A
    range whose explicit bound contradicts the default of the other fails, naming both.

    **Writing.** The report is streamed in 1 MiB chunks into a temporary sibling of the
    destination and moved into place once complete, its rows checked against its header. A
    failed export leaves the destination as it was and no temporary file behind.

    **Return value** (XCom), also the ``extra`` of the event of each outlet ``Asset``:
    ``{"uri", "bytes", "rows", "columns", "filename", "date_start", "date_end"}`` where
    ``rows`` excludes the header, ``columns`` lists the header's names, ``filename`` is the
    server's (None when it sent none) and dates are ``yyyy-MM-dd``.
"""


class _SEIReportOperator(BaseOperator):
    """Render, validate, stream, write: what both report operators share."""

    _common_template_fields: tuple[str, ...] = (
        "date_start",
        "date_end",
        "destination",
        "destination_conn_id",
        "if_empty",
        "overwrite",
    )
    _kind = "report"
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath | Asset,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        destination_conn_id: str | None = None,
        sei_conn_id: str = "sei_default",
        if_empty: str = "write",
        overwrite: bool | str = True,
        progress_interval: float = DEFAULT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        if isinstance(destination, Asset):
            kwargs["outlets"] = [*_as_list(kwargs.get("outlets")), destination]
            destination = destination.uri
        elif isinstance(destination, ObjectStoragePath):
            # Templating an ObjectStoragePath itself is unreliable in Airflow 3: keep strings.
            destination_conn_id = destination_conn_id or conn_id_of(destination)
            destination = public_uri(destination)
        super().__init__(**kwargs)
        self.destination = destination
        self.date_start = date_start
        self.date_end = date_end
        self.destination_conn_id = destination_conn_id
        self.sei_conn_id = sei_conn_id
        self.if_empty = if_empty
        self.overwrite = overwrite
        self.progress_interval = progress_interval

    def build_request(self, date_start: date, date_end: date) -> ReportRequest:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_sei.hooks.sei import SEIHook

        if_empty = _parse_if_empty(self.if_empty)
        overwrite = parse_bool("overwrite", self.overwrite)
        dates = resolve_date_range(self.date_start, self.date_end, context)
        request = self.build_request(dates.start, dates.end)
        folder, target = _resolve_destination(self.destination, self.destination_conn_id)
        self.log.info(
            "Exporting the SEI %s report of collection %s for %s .. %s (from %s) to %s",
            self._kind,
            request.collection_id,
            dates.start,
            dates.end,
            dates.source,
            public_uri(target or folder),
        )
        if target is not None and not overwrite:
            _refuse_existing(target)

        progress = ExportProgress(
            self.log, public_uri(target or folder), interval=self.progress_interval
        )
        writer = AtomicWriter(folder, CSVStats(), progress)
        try:
            result = SEIHook(sei_conn_id=self.sei_conn_id).export_report(request, writer.open_sink)
            writer.stats.finish()
            if result.bytes == 0 and if_empty != "write":
                message = f"The SEI API returned an empty report (0 bytes); if_empty={if_empty!r}"
                if if_empty == "skip":
                    raise AirflowSkipException(message + ": the destination is left as it was")
                raise AirflowFailException(message)
            filename = safe_filename(result.filename)
            if target is None:
                target = folder / (filename or self._fallback_filename(request))
                if not overwrite:
                    _refuse_existing(target)
            writer.commit(target)
        except BaseException:
            writer.discard()
            raise

        stats = writer.stats
        summary: dict[str, Any] = {
            "uri": public_uri(target),
            "bytes": stats.bytes,
            "rows": stats.rows,
            "columns": list(stats.columns),
            "filename": filename,
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
        }
        self.log.info(
            "Wrote %s: %d bytes, %d rows, %d columns",
            summary["uri"],
            stats.bytes,
            stats.rows,
            len(stats.columns),
        )
        self._attach_to_asset_events(context, summary)
        return summary

    def _attach_to_asset_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Give each outlet Asset's event the summary as its ``extra``."""
        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in _as_list(self.outlets):
            if isinstance(outlet, Asset):
                events[outlet].extra.update(summary)

    def _fallback_filename(self, request: ReportRequest) -> str:
        return (
            f"sei-{self._kind}-{safe_filename(request.collection_id) or 'collection'}-"
            f"{request.date_start.isoformat()}-{request.date_end.isoformat()}.csv"
        )


class SEITeamReportOperator(_SEIReportOperator):
    __doc__ = (
        """
    Export a team-level Harness SEI report (productivity and DORA efficiency metrics) as CSV.

    One row per team (the team and all its child teams), one column per metric.

    :param collection_id: the team's collection id, as in the app's ``collectionId=`` URL
        parameter. (templated)
    :param team_ref_id: the team id; the CSV holds this team and all its children. Defaults
        to ``collection_id`` when that is numeric: the API says both name the same team.
        (templated)
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
        + _COMMON_DOC
    )

    template_fields: Sequence[str] = (
        "collection_id",
        "team_ref_id",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
        *_SEIReportOperator._common_template_fields,
    )
    _kind = "team"

    def __init__(
        self,
        *,
        collection_id: str | int,
        destination: str | ObjectStoragePath | Asset,
        team_ref_id: int | str | None = None,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        granularity: str = "weekly",
        productivity_metrics: list[str] | None = None,
        efficiency_metrics: list[str] | None = None,
        calculation_type: str = "MEAN",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination, date_start=date_start, date_end=date_end, **kwargs
        )
        self.collection_id = collection_id
        self.team_ref_id = team_ref_id
        self.granularity = granularity
        self.productivity_metrics = productivity_metrics
        self.efficiency_metrics = efficiency_metrics
        self.calculation_type = calculation_type

    def build_request(self, date_start: date, date_end: date) -> TeamReportRequest:
        return team_request(
            self,
            collection_id=self.collection_id,
            team_ref_id=self.team_ref_id,
            date_start=date_start,
            date_end=date_end,
        )


class SEIContributorReportOperator(_SEIReportOperator):
    __doc__ = (
        """
    Export a Harness SEI contributor report (productivity per developer) as CSV.

    One row per collection and contributor (the org tree, each manager, their direct
    reports and individual contributors), one column per metric.

    :param collection_id: the collection id, as in the app's ``collectionId=`` URL
        parameter. (templated)
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
        + _COMMON_DOC
    )

    template_fields: Sequence[str] = (
        "collection_id",
        "granularity",
        "include_ratings",
        "metrics",
        *_SEIReportOperator._common_template_fields,
    )
    _kind = "contributor"

    def __init__(
        self,
        *,
        collection_id: str | int,
        destination: str | ObjectStoragePath | Asset,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        granularity: str = "weekly",
        include_ratings: bool | str = False,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination, date_start=date_start, date_end=date_end, **kwargs
        )
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
    """The team report request for one team, with ``operator``'s granularity and metrics.

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


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _parse_if_empty(value: Any) -> str:
    choice = value.strip().lower() if isinstance(value, str) else value
    if choice not in IF_EMPTY_CHOICES:
        raise SEIInvalidRequestError("if_empty", value, "one of " + ", ".join(IF_EMPTY_CHOICES))
    return choice


def _resolve_destination(
    destination: Any, conn_id: str | None
) -> tuple[ObjectStoragePath, ObjectStoragePath | None]:
    """``(folder, file)`` of the rendered destination; ``file`` is None for a folder."""
    if not isinstance(destination, str) or not destination.strip():
        raise SEIInvalidRequestError(
            "destination", destination, "a URI such as s3://bucket/key.csv or file:///dir/"
        )
    uri = destination.strip()
    scheme, separator, rest = uri.partition("://")
    if not (separator and scheme and rest.strip("/")) and not uri.startswith("/"):
        # A rendered None, a relative path or a bare "file://" would land in the worker's
        # current directory: a URI must name its scheme and a location.
        raise SEIInvalidRequestError(
            "destination", destination, "a URI with a scheme and a path, such as "
            "s3://bucket/key.csv or file:///dir/ (not a relative path or a rendered None)"
        )  # fmt: skip
    try:
        path = build_path(uri, conn_id)
        # Airflow 3.1 builds a path of any scheme and fails only once its filesystem is asked
        # for (3.2+ fails above): ask now, so an unknown scheme fails here on every version.
        fs_of(path)
    except Exception as err:  # unknown scheme, missing provider, malformed URI
        raise SEIInvalidRequestError(
            "destination", uri, f"a URI ObjectStoragePath supports ({err})"
        ) from err
    if uri.endswith("/") or is_dir(path):
        return path, None
    return path.parent, path


def _refuse_existing(target: ObjectStoragePath) -> None:
    if exists(target):
        raise AirflowFailException(
            f"The destination {public_uri(target)} already exists and overwrite is False"
        )
