"""The legacy reports API's metric catalogue, as the emulator knows it.

Written from the API page, independently of the provider's own catalogue: a fake that shared
the client's list of names would be wrong in the same way as the client. Names are spelled
exactly as the API spells them; the display names are the CSV header's column titles.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Category(str, enum.Enum):
    """Which request body (and which part of it) a metric belongs to."""

    PRODUCTIVITY = "productivity"  # ExportRequestDTO.productivity
    EFFICIENCY = "efficiency"  # ExportRequestDTO.efficiency (DORA)
    CONTRIBUTOR = "contributor"  # ContributorExportRequestDTO.productivityContributors


class Kind(str, enum.Enum):
    """What a metric's number measures; decides how granularity affects it."""

    RATE = "rate"  # a count per granularity period: scaled by the granularity
    DURATION = "duration"  # days, never affected by granularity
    COUNT = "count"  # a dimensionless count or average count
    PERCENT = "percent"  # 0-100
    SCORE = "score"  # a composite score


class Granularity(str, enum.Enum):
    """Time unit for rate-based metrics."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class CalculationType(str, enum.Enum):
    """How efficiency metric values are aggregated; the API's default is MEAN."""

    MEAN = "MEAN"
    MEDIAN = "MEDIAN"
    P90 = "P90"
    P95 = "P95"


@dataclass(frozen=True)
class Metric:
    """One exportable metric.

    :param name: the API's name, upper case.
    :param category: the request body part that asks for it.
    :param kind: what its number measures.
    :param display_name: its column title in the CSV header.
    :param aggregated: whether ``calculationType`` applies; its column title then ends in
        ``(mean)``, ``(median)``, ``(p90)`` or ``(p95)``.
    """

    name: str
    category: Category
    kind: Kind
    display_name: str
    aggregated: bool = False

    def column(self, calculation_type: CalculationType = CalculationType.MEAN) -> str:
        """Return the CSV column title for this metric, e.g. ``Lead Time for Changes (median)``."""
        if self.aggregated:
            return f"{self.display_name} ({calculation_type.value.lower()})"
        return self.display_name


_P, _E, _C = Category.PRODUCTIVITY, Category.EFFICIENCY, Category.CONTRIBUTOR

TEAM_PRODUCTIVITY_METRICS: tuple[Metric, ...] = (
    Metric("TIME_TO_FIRST_COMMENT", _P, Kind.DURATION, "Time to First Comment"),
    Metric("PR_VELOCITY_PER_DEV", _P, Kind.RATE, "PR Velocity per Developer"),
    Metric("WORKTYPE_COMPLETED_PER_DEV", _P, Kind.RATE, "Work Completed per Developer"),
    Metric("CODING_DAYS_PER_DEV", _P, Kind.RATE, "Coding Days per Developer"),
    Metric("NUMBER_OF_COMMENTS_PER_PR", _P, Kind.COUNT, "Number of Comments per PR"),
    Metric("AVG_TIME_TO_COMPLETE", _P, Kind.DURATION, "Average Time to Complete"),
)

EFFICIENCY_METRICS: tuple[Metric, ...] = (
    Metric("LEAD_TIME_FOR_CHANGES", _E, Kind.DURATION, "Lead Time for Changes", aggregated=True),
    Metric("DEPLOYMENT_FREQUENCY", _E, Kind.RATE, "Deployment Frequency"),
    Metric("CHANGE_FAILURE_RATE", _E, Kind.PERCENT, "Change Failure Rate"),
    Metric("MEAN_TIME_TO_RESTORE", _E, Kind.DURATION, "Mean Time to Restore", aggregated=True),
    Metric("OVERALL_DORA", _E, Kind.SCORE, "Overall DORA Score"),
)

CONTRIBUTOR_METRICS: tuple[Metric, ...] = (
    Metric("PR_VELOCITY", _C, Kind.RATE, "PR Velocity per Developer"),
    Metric("WORK_TYPE_COMPLETED", _C, Kind.RATE, "Work Completed per Developer"),
    Metric("CODING_DAYS", _C, Kind.RATE, "Coding Days per Developer"),
    Metric("TIME_TO_FIRST_COMMENT", _C, Kind.DURATION, "Time to First Comment"),
    Metric("NUMBER_OF_COMMENTS_PER_PR", _C, Kind.COUNT, "Number of Comments per PR"),
    Metric("AVG_TIME_TO_COMPLETE", _C, Kind.DURATION, "Average Time to Complete"),
    Metric("NO_OF_PRS_WITH_MISSING_TICKETS", _C, Kind.COUNT, "PRs with Missing Tickets"),
)

CATALOGUE: dict[Category, tuple[Metric, ...]] = {
    Category.PRODUCTIVITY: TEAM_PRODUCTIVITY_METRICS,
    Category.EFFICIENCY: EFFICIENCY_METRICS,
    Category.CONTRIBUTOR: CONTRIBUTOR_METRICS,
}

#: The first column of every report.
COLLECTION_NAME_COLUMN = "Collection Name"


def metric_names(category: Category) -> tuple[str, ...]:
    """Return the API names of every metric in ``category``, in catalogue order."""
    return tuple(m.name for m in CATALOGUE[category])


def get_metric(category: Category, name: str) -> Metric | None:
    """Return the metric called ``name`` (any case) in ``category``, or None when it has none."""
    wanted = name.strip().upper()
    return next((m for m in CATALOGUE[category] if m.name == wanted), None)
