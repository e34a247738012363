"""The V2 export API's catalogue: the five export types, their options and metric groups.

Written from Harness's "Export Insights" pages (see the project's ``sei-v2-exports.md``),
independently of the provider. Names are spelled as the pages spell them; matching is
case-insensitive. Each type also records what *its* page documents about the job responses
(status casing, where the download is, what the create answer holds): the emulator's defaults.

Column titles follow the pages' samples: ``LTTC_Mean_Days``, ``DF_Deployment_Count``, the
business-alignment sample header. Titles with ``{agg}`` take the request's
``options.aggregation`` (``Mean``, ``Median``, ``P90``, ``P95``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: The column prefix of every V2 export (the BA sample's first five columns).
PERIOD_COLUMNS = ("Granularity", "Team", "Team_Hierarchy", "Start_Date", "End_Date")
AGGREGATIONS = ("mean", "median", "p90", "p95")
COMPUTATION_MODES = ("STORY_POINTS", "TICKETS")
TERMINAL_DATE_COLUMNS = ("issue_resolved_at", "version_release_date")
FORMATS = ("csv",)
COMPRESSIONS = ("gzip", "none")
#: The issue workflow the synthetic org's tickets move through (time-in-status exports).
WORKFLOW_STATUSES = ("To Do", "In Progress", "In Review", "QA", "Done")


class ExportType(str, enum.Enum):
    """The path segment of ``/v2/insights/{type}/exports``."""

    EFFICIENCY = "efficiency"
    PRODUCTIVITY = "productivity"
    SPRINT = "sprint"
    BA = "ba"
    TICKET_DATA = "ticket-data"


class StatusCase(str, enum.Enum):
    """How job statuses are spelled: ``COMPLETED`` (most pages) or ``completed``."""

    UPPER = "upper"
    LOWER = "lower"


class StatusShape(str, enum.Enum):
    """Where a completed job's status says the download is."""

    DOWNLOAD_URL = "downloadUrl"  # {"downloadUrl": "/v2/.../download"}
    DOWNLOAD = "download"  # {"download": {"url", "filename", "contentType"}}
    DOWNLOAD_SIZED = "download_sized"  # the same plus "sizeBytes" and "compression"


class CreateShape(str, enum.Enum):
    """What a ``202`` create answer holds besides ``exportId``, ``createdAt``, ``message``."""

    STATUS = "status"  # "status": "QUEUED"
    NO_STATUS = "no_status"  # nothing more (the productivity page)
    METADATA = "metadata"  # "status", "createdBy" and "metadata" (the sprint page)


@dataclass(frozen=True)
class V2Metric:
    """One exportable metric of a type.

    :param name: the API's name, upper case.
    :param group: the metric group that contains it (lower case, as the pages write groups).
    :param columns: its CSV column titles (``{agg}``: the aggregation's title).
    :param levels: the ``metricLevel`` values where it exists; empty = every level.
    """

    name: str
    group: str
    columns: tuple[str, ...]
    levels: frozenset[str] = frozenset()

    def at(self, level: str | None) -> bool:
        """Whether the metric exists at ``level``."""
        return not self.levels or level in self.levels

    def titles(self, aggregation: str) -> list[str]:
        """Return the column titles for the request's aggregation."""
        agg = aggregation.title() if aggregation in ("mean", "median") else aggregation.upper()
        return [c.format(agg=agg) for c in self.columns]


@dataclass(frozen=True)
class ExportTypeSpec:
    """What one export type's page documents.

    :param granularities: the allowed ``options.granularity`` values (upper case).
    :param levels: the allowed ``options.metricLevel`` values, the default first; empty = none.
    :param metrics: the metric catalogue, in column order.
    :param group_aliases: other spellings of group names (the efficiency example's ``df``).
    :param extra_groups: groups that are not a metric's own group (efficiency's ``summary``).
    :param status_case: the status casing of its page.
    :param status_shape: where its page's completed status puts the download.
    :param create_shape: what its page's create answer holds.
    :param poll_segment: the path segment of its page's poll and download URLs.
    """

    type: ExportType
    granularities: tuple[str, ...]
    levels: tuple[str, ...]
    metrics: tuple[V2Metric, ...]
    group_aliases: tuple[tuple[str, str], ...] = ()
    extra_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    status_case: StatusCase = StatusCase.UPPER
    status_shape: StatusShape = StatusShape.DOWNLOAD_URL
    create_shape: CreateShape = CreateShape.STATUS
    poll_segment: str = ""

    @property
    def segment(self) -> str:
        """The segment of the poll and download URLs the status documents."""
        return self.poll_segment or self.type.value

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Every group name (lower case, aliases included) → its metric names."""
        out: dict[str, list[str]] = {}
        for m in self.metrics:
            out.setdefault(m.group.lower(), []).append(m.name)
        for name, members in self.extra_groups:
            out[name] = list(members)
        for alias, group in self.group_aliases:
            out[alias] = out[group]
        return {k: tuple(v) for k, v in out.items()}

    def metric(self, name: str) -> V2Metric | None:
        """Return the metric called ``name`` (any case), or None."""
        wanted = name.strip().upper()
        return next((m for m in self.metrics if m.name == wanted), None)


def _m(name: str, group: str, *columns: str, levels: tuple[str, ...] = ()) -> V2Metric:
    return V2Metric(name, group, columns or (title_column(name),), frozenset(levels))


def title_column(name: str) -> str:
    """Return a metric name as a column title: ``PR_CYCLE_TIME_DAYS_AVG`` →
    ``PR_Cycle_Time_Days_Avg``."""
    keep = {"PR", "LOC", "LTTC", "DF", "CFR", "MTTR", "KTLO", "QA"}
    return "_".join(w if w in keep else w.title() for w in name.split("_"))


_WEEK_MONTH_QUARTER = ("WEEKLY", "MONTHLY", "QUARTERLY")
_DEV, _TEAM, _SPRINT = ("developer",), ("team",), ("sprint",)

EFFICIENCY = ExportTypeSpec(
    ExportType.EFFICIENCY,
    _WEEK_MONTH_QUARTER,
    (),
    (
        _m("PLANNING", "lttc", "LTTC_Planning_{agg}_Days"),
        _m("CODING", "lttc", "LTTC_Coding_{agg}_Days"),
        _m("REVIEW", "lttc", "LTTC_Review_{agg}_Days"),
        _m("BUILD", "lttc", "LTTC_Build_{agg}_Days"),
        _m("DEPLOY", "lttc", "LTTC_Deploy_{agg}_Days"),
        _m("LTTC", "lttc", "LTTC_{agg}_Days"),
        _m("TOTAL_WORK_ITEMS", "work_items", "Work_Items_Total"),
        _m("PR_ASSOCIATIONS", "work_items", "Work_Items_PR_Associations"),
        _m("PERCENTAGE_PR_ASSOCIATED", "work_items", "Work_Items_PR_Associated_Percent"),
        _m(
            "DEPLOYMENT_FREQUENCY",
            "deployment_frequency",
            "DF_Deployment_Count",
            "DF_Deployments_Per_Day",
        ),
        _m("TOTAL_SUCCESS", "cfr", "CFR_Total_Success"),
        _m("TOTAL_FAILURES", "cfr", "CFR_Total_Failures"),
        _m("CFR", "cfr", "CFR_Percent"),
        _m("MTTR", "mttr", "MTTR_{agg}_Days"),
        _m("OVERALL_RATING", "rating", "DORA_Overall_Rating"),
    ),
    group_aliases=(("df", "deployment_frequency"),),
    # The field table names a ``summary`` group without listing it: the headline numbers.
    extra_groups=(("summary", ("LTTC", "DEPLOYMENT_FREQUENCY", "CFR", "MTTR", "OVERALL_RATING")),),
)

PRODUCTIVITY = ExportTypeSpec(
    ExportType.PRODUCTIVITY,
    _WEEK_MONTH_QUARTER,
    ("team", "developer"),
    (
        _m("CODING_DAYS", "activity"),
        _m("PR_CYCLE_TIME_DAYS_AVG", "velocity"),
        _m("AVG_TIME_TO_COMPLETE", "velocity"),
        _m("PR_VELOCITY", "velocity", levels=_TEAM),
        _m("PR_MERGED", "volume"),
        _m("PR_MERGED_SMALL", "volume"),
        _m("PR_MERGED_MEDIUM", "volume"),
        _m("PR_MERGED_LARGE", "volume"),
        _m("WORK_COMPLETED", "volume"),
        _m("WORK_FEATURES_COMPLETED", "volume"),
        _m("WORK_BUGS_COMPLETED", "volume"),
        _m("WORK_OTHER_COMPLETED", "volume"),
        _m("LOC_ADDED", "volume", levels=_DEV),
        _m("LOC_REMOVED", "volume", levels=_DEV),
        _m("REWORK_PERCENT", "quality"),
        _m("REWORK_PERCENT_RECENT", "quality"),
        _m("REWORK_PERCENT_LEGACY", "quality"),
        _m("LOC_REFACTORED", "quality"),
        _m("LOC_REFACTORED_RECENT", "quality"),
        _m("LOC_REFACTORED_LEGACY", "quality"),
        _m("PR_MISSING_TICKETS", "quality"),
        _m("LOC_TOTAL", "quality", levels=_TEAM),
        _m("REVIEW_COMMENTS_PER_PR_AVG", "collaboration"),
        _m("REVIEW_TIME_TO_FIRST_COMMENT_HRS_AVG", "collaboration"),
    ),
    status_case=StatusCase.LOWER,
    status_shape=StatusShape.DOWNLOAD,
    create_shape=CreateShape.NO_STATUS,
)

SPRINT = ExportTypeSpec(
    ExportType.SPRINT,
    (*_WEEK_MONTH_QUARTER, "SPRINT"),
    ("team", "sprint"),
    (
        _m("SPRINT_COMMIT", "work"),
        _m("SPRINT_CREEP", "work"),
        _m("SPRINT_SIZE", "work"),
        _m("SCOPE_CREEP_PERCENT", "work"),
        _m("TOTAL_WORK_DELIVERED", "delivery"),
        _m("DELIVERED_COMMIT", "delivery"),
        _m("MISSED_COMMIT", "delivery"),
        _m("DELIVERED_CREEP", "delivery"),
        _m("MISSED_CREEP", "delivery"),
        _m("TOTAL_DELIVERED_WORK_VS_COMMITTED_WORK", "delivery"),
        _m("SPRINT_VELOCITY", "delivery", levels=_TEAM),
        _m("COMMITTED_WORK_DELIVERED_PERCENT", "deliveryAnalysis"),
        _m("CREEP_WORK_DELIVERED_PERCENT", "deliveryAnalysis"),
        _m("TOTAL_WORK_DELIVERED_PERCENT", "deliveryAnalysis"),
        _m("TICKETS_REMOVED_MID_SPRINT", "analysis", levels=_SPRINT),
        _m("CHURN_RATE", "analysis"),
        _m("PREDICTABILITY_DELIVERY_CONSISTENCY", "analysis", levels=_TEAM),
        _m("PREDICTABILITY_RELIABILITY_OF_COMMITMENT", "analysis", levels=_TEAM),
    ),
    status_shape=StatusShape.DOWNLOAD_SIZED,
    create_shape=CreateShape.METADATA,
    poll_segment="sprints",
)

BA = ExportTypeSpec(
    ExportType.BA,
    _WEEK_MONTH_QUARTER,
    (),
    (
        _m("KTLO", "CATEGORIZED", "KTLO_story_points", "KTLO_tickets"),
        _m("NEW_CAPABILITY", "CATEGORIZED", "New_Capability_story_points"),
        _m("SECURITY_AND_COMPLIANCE", "CATEGORIZED", "Security_and_Compliance_story_points"),
        _m("UNCATEGORIZED", "UNCATEGORIZED", "Uncategorized_story_points"),
    ),
)

TICKET_DATA = ExportTypeSpec(
    ExportType.TICKET_DATA,
    ("DAILY", *_WEEK_MONTH_QUARTER),
    ("team", "sprint"),
    (),  # no metric groups: the columns follow ``issueStatuses``
)

SPECS: dict[ExportType, ExportTypeSpec] = {
    s.type: s for s in (EFFICIENCY, PRODUCTIVITY, SPRINT, BA, TICKET_DATA)
}
#: Path segments → type: the plural ``sprints`` of the sprint page's poll URL included.
SEGMENTS: dict[str, ExportType] = {**{t.value: t for t in ExportType}, "sprints": ExportType.SPRINT}
#: Business-alignment categories (the sample's column stems), in column order.
BA_CATEGORIES = ("KTLO", "New_Capability", "Security_and_Compliance", "Uncategorized")


def status_column(status: str, aggregation: str) -> str:
    """Return the time-in-status column of a workflow status: ``In Review`` →
    ``In_Review_Mean_Days``."""
    stem = "".join(c if c.isalnum() else "_" for c in status.strip()).strip("_")
    return V2Metric(status, "", (f"{stem}_{{agg}}_Days",)).titles(aggregation)[0]
