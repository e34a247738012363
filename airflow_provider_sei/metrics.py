"""The SEI export API's metric catalogue: the one place that names every metric.

The request models, the operators and the emulator all import from here. Names are spelled
exactly as the API spells them; the display names are the CSV header's column titles.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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


# -- V2 export jobs (``POST /v2/insights/{type}/exports``) -------------------------------------


class ExportType(str, enum.Enum):
    """The five V2 export types, by the names the operator takes."""

    EFFICIENCY = "efficiency"
    PRODUCTIVITY = "productivity"
    SPRINT = "sprint"
    BUSINESS_ALIGNMENT = "business_alignment"
    TIME_IN_STATUS = "time_in_status"


@dataclass(frozen=True)
class ExportTypeSpec:
    """What the V2 pages document for one export type.

    :param segment: the path segment (``/v2/insights/{segment}/exports``).
    :param granularities: allowed values, spelled as the type's page spells them.
    :param metric_groups: group -> its metrics (an empty tuple: the page lists none).
    :param group_aliases: other documented spellings of a group (``df`` for
        ``deployment_frequency``).
    :param metric_levels: allowed ``options.metricLevel`` values (empty: not an option).
    :param aggregations: allowed ``options.aggregation`` values (empty: not an option).
    :param level_only: metric -> the only ``metricLevel`` values it exists at (the pages'
        "+ LOC_ADDED at developer level"); a metric not listed exists at every level.
    :param options: other ``options`` keys the type's page documents -> their values, spelled
        as the page spells them (keys it does not document are sent as given).
    """

    segment: str
    granularities: tuple[str, ...]
    metric_groups: dict[str, tuple[str, ...]]
    group_aliases: dict[str, str]
    metric_levels: tuple[str, ...] = ()
    aggregations: tuple[str, ...] = ()
    level_only: dict[str, tuple[str, ...]] = field(default_factory=dict)
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def metrics(self) -> tuple[str, ...]:
        """Every metric the type documents, in group order."""
        return tuple(dict.fromkeys(m for group in self.metric_groups.values() for m in group))


_UPPER = ("WEEKLY", "MONTHLY", "QUARTERLY")
AGGREGATIONS = ("mean", "median", "p90", "p95")

EXPORT_TYPES: dict[ExportType, ExportTypeSpec] = {
    ExportType.EFFICIENCY: ExportTypeSpec(
        segment="efficiency",
        granularities=_UPPER,
        metric_groups={
            "lttc": ("PLANNING", "CODING", "REVIEW", "BUILD", "DEPLOY", "LTTC"),
            "work_items": ("TOTAL_WORK_ITEMS", "PR_ASSOCIATIONS", "PERCENTAGE_PR_ASSOCIATED"),
            "deployment_frequency": ("DEPLOYMENT_FREQUENCY",),
            "cfr": ("TOTAL_SUCCESS", "TOTAL_FAILURES", "CFR"),
            "mttr": ("MTTR",),
            "rating": ("OVERALL_RATING",),
            "summary": (),
        },
        group_aliases={"df": "deployment_frequency"},
        aggregations=AGGREGATIONS,
    ),
    ExportType.PRODUCTIVITY: ExportTypeSpec(
        segment="productivity",
        granularities=("weekly", "monthly", "quarterly"),
        metric_groups={
            "activity": ("CODING_DAYS",),
            "velocity": ("PR_CYCLE_TIME_DAYS_AVG", "AVG_TIME_TO_COMPLETE", "PR_VELOCITY"),
            "volume": (
                "PR_MERGED",
                "PR_MERGED_SMALL",
                "PR_MERGED_MEDIUM",
                "PR_MERGED_LARGE",
                "WORK_COMPLETED",
                "WORK_FEATURES_COMPLETED",
                "WORK_BUGS_COMPLETED",
                "WORK_OTHER_COMPLETED",
                "LOC_ADDED",
                "LOC_REMOVED",
            ),
            "quality": (
                "REWORK_PERCENT",
                "REWORK_PERCENT_RECENT",
                "REWORK_PERCENT_LEGACY",
                "LOC_REFACTORED",
                "LOC_REFACTORED_RECENT",
                "LOC_REFACTORED_LEGACY",
                "PR_MISSING_TICKETS",
                "LOC_TOTAL",
            ),
            "collaboration": (
                "REVIEW_COMMENTS_PER_PR_AVG",
                "REVIEW_TIME_TO_FIRST_COMMENT_HRS_AVG",
            ),
        },
        group_aliases={},
        metric_levels=("developer", "team"),
        aggregations=AGGREGATIONS,
        level_only={
            "PR_VELOCITY": ("team",),
            "LOC_TOTAL": ("team",),
            "LOC_ADDED": ("developer",),
            "LOC_REMOVED": ("developer",),
        },
        options={"aggregationLevel": ("developer", "team")},  # an older page's metricLevel
    ),
    ExportType.SPRINT: ExportTypeSpec(
        segment="sprint",
        granularities=(*_UPPER, "SPRINT"),
        metric_groups={
            "work": ("SPRINT_COMMIT", "SPRINT_CREEP", "SPRINT_SIZE", "SCOPE_CREEP_PERCENT"),
            "delivery": (
                "TOTAL_WORK_DELIVERED",
                "DELIVERED_COMMIT",
                "MISSED_COMMIT",
                "DELIVERED_CREEP",
                "MISSED_CREEP",
                "TOTAL_DELIVERED_WORK_VS_COMMITTED_WORK",
                "SPRINT_VELOCITY",
            ),
            "deliveryAnalysis": (
                "COMMITTED_WORK_DELIVERED_PERCENT",
                "CREEP_WORK_DELIVERED_PERCENT",
                "TOTAL_WORK_DELIVERED_PERCENT",
            ),
            "analysis": (
                "TICKETS_REMOVED_MID_SPRINT",
                "CHURN_RATE",
                "PREDICTABILITY_DELIVERY_CONSISTENCY",
                "PREDICTABILITY_RELIABILITY_OF_COMMITMENT",
            ),
        },
        group_aliases={},
        metric_levels=("team", "sprint"),
        aggregations=AGGREGATIONS,
        level_only={
            "SPRINT_VELOCITY": ("team",),
            "TICKETS_REMOVED_MID_SPRINT": ("sprint",),
            "PREDICTABILITY_DELIVERY_CONSISTENCY": ("team",),
            "PREDICTABILITY_RELIABILITY_OF_COMMITMENT": ("team",),
        },
        options={"computationMode": ("STORY_POINTS", "TICKETS")},
    ),
    ExportType.BUSINESS_ALIGNMENT: ExportTypeSpec(
        segment="ba",
        granularities=_UPPER,
        metric_groups={"CATEGORIZED": (), "UNCATEGORIZED": ()},
        group_aliases={},
        aggregations=AGGREGATIONS,
    ),
    ExportType.TIME_IN_STATUS: ExportTypeSpec(
        segment="ticket-data",
        granularities=("daily", "weekly", "monthly", "quarterly"),
        metric_groups={},
        group_aliases={},
        aggregations=AGGREGATIONS,  # its columns are per-status durations: To_Do_Mean_Days
        options={
            "aggregationLevel": ("sprint", "team"),
            "terminalDateColumn": ("issue_resolved_at", "version_release_date"),
        },
    ),
}


def export_type(value: str) -> ExportType | None:
    """Find the export type named ``value``: its name (any case, ``-`` or ``_``) or its segment."""
    text = value.strip().lower().replace("-", "_")
    for kind, spec in EXPORT_TYPES.items():
        if text in (kind.value, spec.segment.replace("-", "_")):
            return kind
    return None
