"""The export API's two request bodies as typed, validated models.

``TeamReportRequest`` is the page's ``ExportRequestDTO``; ``ContributorReportRequest`` its
``ContributorExportRequestDTO``. ``build()`` takes what a user or a rendered template gives
(strings in any case, dates as ``yyyy-MM-dd`` strings, ``date``, ``datetime`` or pendulum
values) and either returns a canonical request or raises ``SEIInvalidRequestError`` (a
``ValueError``) naming the field, the bad value and what is allowed. ``to_json()`` gives the
body exactly as the API expects it: camelCase names, ``collectionId`` a string, ``teamRefId``
a number, dates as ``yyyy-MM-dd``, metric names in upper case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.metrics import (
    CATALOGUE,
    COLLECTION_NAME_COLUMN,
    CalculationType,
    Category,
    Granularity,
    get_metric,
    metric_names,
)
from airflow_provider_sei.models._parse import (
    is_nullish,
    one_of,
    parse_bool,
    parse_date,
    parse_id,
    parse_list,
    shown,
)

DateLike = str | date | datetime
MetricsLike = Iterable[str] | str | None


def parse_identifier(field: str, value: Any) -> str:
    """Parse a collection id: the number in the app's ``?collectionId=`` URL, as a string."""
    return str(parse_id(field, value))


def parse_granularity(field: str, value: Any) -> Granularity:
    """Parse a ``Granularity`` from its name in any case."""
    if isinstance(value, Granularity):
        return value
    if isinstance(value, str):
        try:
            return Granularity(value.strip().lower())
        except ValueError:
            pass
    raise SEIInvalidRequestError(field, shown(value), one_of(g.value for g in Granularity))


def parse_calculation_type(field: str, value: Any) -> CalculationType:
    """Parse a ``CalculationType`` from its name in any case; None means the API's default, MEAN."""
    if value is None:
        return CalculationType.MEAN
    if isinstance(value, CalculationType):
        return value
    if isinstance(value, str):
        try:
            return CalculationType(value.strip().upper())
        except ValueError:
            pass
    raise SEIInvalidRequestError(field, shown(value), one_of(c.value for c in CalculationType))


def parse_metrics(field: str, value: MetricsLike, category: Category) -> tuple[str, ...] | None:
    """Upper-case metric names of ``category``; None stays None, ``[]`` means all of them.

    A string is accepted as a list: comma-separated names, or a list as Jinja renders one
    (``"['PR_VELOCITY', 'CODING_DAYS']"``, without ``render_template_as_native_obj``).
    Duplicates are dropped, order is kept.
    """
    if value is None:
        return None
    items = parse_list(field, value, what=_metrics_allowed(category))
    names: list[str] = []
    for item in items:
        metric = get_metric(category, item) if isinstance(item, str) else None
        if metric is None:
            raise SEIInvalidRequestError(field, shown(item), _wrong_metric_hint(item, category))
        if metric.name not in names:
            names.append(metric.name)
    return tuple(names)


def _wrong_metric_hint(item: Any, category: Category) -> str:
    if isinstance(item, str):
        for other in Category:
            if other is not category and get_metric(other, item):
                allowed = _metrics_allowed(category)
                return f"{allowed} ({item.upper()} is one of the {other.value} metrics)"
    return _metrics_allowed(category)


def _metrics_allowed(category: Category) -> str:
    return f"{category.value} metrics: {', '.join(metric_names(category))}"


def _check_range(start: date, end: date) -> None:
    if start > end:
        raise SEIInvalidRequestError(
            "date_start", start.isoformat(), f"a date on or before date_end ({end.isoformat()})"
        )


@dataclass(frozen=True)
class TeamReportRequest:
    """``ExportRequestDTO``: team-level productivity and efficiency (DORA) metrics.

    ``productivity_metrics`` / ``efficiency_metrics``: None leaves the category out of the
    request, an empty tuple asks for all of its metrics. Use ``build()`` for loose input.
    """

    collection_id: str
    date_start: date
    date_end: date
    granularity: Granularity
    team_ref_id: int | None = None
    productivity_metrics: tuple[str, ...] | None = None
    efficiency_metrics: tuple[str, ...] | None = None
    calculation_type: CalculationType = CalculationType.MEAN

    def __post_init__(self) -> None:
        _check_range(self.date_start, self.date_end)

    @classmethod
    def build(
        cls,
        *,
        collection_id: Any,
        date_start: DateLike,
        date_end: DateLike,
        granularity: Any = Granularity.WEEKLY,
        team_ref_id: Any = None,
        productivity_metrics: MetricsLike = None,
        efficiency_metrics: MetricsLike = None,
        calculation_type: Any = None,
    ) -> TeamReportRequest:
        """Validate loose input. With both metric lists None, every metric of both is asked for.

        ``collection_id`` must be the numeric id (ASCII digits, at most 18): ``teamRefId`` is a
        Number and the API's tip says both name the same team, so ``team_ref_id`` defaults to it.
        """
        collection = parse_identifier("collection_id", collection_id)
        ref = int(collection) if is_nullish(team_ref_id) else parse_id("team_ref_id", team_ref_id)
        productivity = parse_metrics(
            "productivity_metrics", productivity_metrics, Category.PRODUCTIVITY
        )
        efficiency = parse_metrics("efficiency_metrics", efficiency_metrics, Category.EFFICIENCY)
        if productivity is None and efficiency is None:
            productivity, efficiency = (), ()
        return cls(
            collection_id=collection,
            date_start=parse_date("date_start", date_start),
            date_end=parse_date("date_end", date_end),
            granularity=parse_granularity("granularity", granularity),
            team_ref_id=ref,
            productivity_metrics=productivity,
            efficiency_metrics=efficiency,
            calculation_type=parse_calculation_type("calculation_type", calculation_type),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the request body, as the API spells it."""
        body: dict[str, Any] = {
            "collectionId": self.collection_id,
            "dateStart": self.date_start.isoformat(),
            "dateEnd": self.date_end.isoformat(),
            "granularity": self.granularity.value,
        }
        if self.team_ref_id is not None:
            body["teamRefId"] = self.team_ref_id
        if self.productivity_metrics is not None:
            body["productivity"] = {"metrics": list(self.productivity_metrics)}
        if self.efficiency_metrics is not None:
            body["efficiency"] = {
                "metrics": list(self.efficiency_metrics),
                "calculationType": self.calculation_type.value,
            }
        return body

    def expected_metrics(self) -> tuple[str, ...]:
        """Every metric this request exports, an empty list expanded to its whole category."""
        return _expand(Category.PRODUCTIVITY, self.productivity_metrics) + _expand(
            Category.EFFICIENCY, self.efficiency_metrics
        )


@dataclass(frozen=True)
class ContributorReportRequest:
    """``ContributorExportRequestDTO``: productivity metrics per contributor and collection.

    ``metrics``: an empty tuple asks for all seven contributor metrics.
    """

    collection_id: str
    date_start: date
    date_end: date
    granularity: Granularity
    include_ratings: bool = False
    metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_range(self.date_start, self.date_end)

    @classmethod
    def build(
        cls,
        *,
        collection_id: Any,
        date_start: DateLike,
        date_end: DateLike,
        granularity: Any = Granularity.WEEKLY,
        include_ratings: Any = False,
        metrics: MetricsLike = None,
    ) -> ContributorReportRequest:
        """Validate loose input; None or an empty list of metrics means all seven."""
        return cls(
            collection_id=parse_identifier("collection_id", collection_id),
            date_start=parse_date("date_start", date_start),
            date_end=parse_date("date_end", date_end),
            granularity=parse_granularity("granularity", granularity),
            include_ratings=parse_bool("include_ratings", include_ratings),
            metrics=parse_metrics("metrics", metrics, Category.CONTRIBUTOR) or (),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the request body, as the API spells it."""
        return {
            "collectionId": self.collection_id,
            "dateStart": self.date_start.isoformat(),
            "dateEnd": self.date_end.isoformat(),
            "granularity": self.granularity.value,
            "includeRatings": self.include_ratings,
            "productivityContributors": {"metrics": list(self.metrics)},
        }

    def expected_metrics(self) -> tuple[str, ...]:
        """Every metric this request exports, an empty list expanded to all seven."""
        return _expand(Category.CONTRIBUTOR, self.metrics)


ReportRequest = TeamReportRequest | ContributorReportRequest


def header_names(request: ReportRequest) -> tuple[str, ...]:
    """Column names a report for ``request`` may carry: the collection column and, for each
    metric asked for, its API name and display name (the header text is not documented)."""
    if isinstance(request, ContributorReportRequest):
        categories: tuple[Category, ...] = (Category.CONTRIBUTOR,)
    else:
        categories = (Category.PRODUCTIVITY, Category.EFFICIENCY)
    names = [COLLECTION_NAME_COLUMN]
    for name in request.expected_metrics():
        for category in categories:
            metric = get_metric(category, name)
            if metric is not None:
                names += [metric.name, metric.display_name]
    return tuple(dict.fromkeys(names))


def _expand(category: Category, names: tuple[str, ...] | None) -> tuple[str, ...]:
    if names is None:
        return ()
    return names or tuple(m.name for m in CATALOGUE[category])
