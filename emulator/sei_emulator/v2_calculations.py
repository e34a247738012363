"""How the emulator computes the V2 exports' numbers (see :mod:`.calculations` for the legacy
ones, whose event anchors, roll-up and aggregation rules apply here too).

**Periods.** A row covers one period of the request's granularity, clipped to ``dateRange``:
``DAILY`` days (label ``2024-01-05``), ``WEEKLY`` ISO weeks, Monday to Sunday (``2024-W01``),
``MONTHLY`` calendar months (``Jan 2024``), ``QUARTERLY`` calendar quarters (``Q1 2024``);
``SPRINT`` the sprints of the org calendar (see :mod:`.v2_activity`) that end in the range,
unclipped (``Sprint 27``). Rows at sprint level have one row per sprint ending in the period.

**Tallies.** A row's tally is the legacy :class:`~sei_emulator.calculations.Tally` of the
period (PRs by creation, work items by completion, deployments by time, incidents by start,
commits by day) plus the V2 details of the same events (:mod:`.v2_activity`); time-in-status
counts a ticket in the period of its terminal date (resolution, or version release with
``terminalDateColumn: version_release_date``). Team rows roll up their whole subtree.

**Efficiency.** ``LTTC`` aggregates the legacy lead-time samples (deployment - commit) with
``options.aggregation``; each stage (``PLANNING`` .. ``DEPLOY``) aggregates the same samples
scaled by the team's share of that stage, so the stage means add up to the LTTC mean.
``TOTAL_WORK_ITEMS`` completed items; ``PR_ASSOCIATIONS`` PRs with a ticket and
``PERCENTAGE_PR_ASSOCIATED`` their share of PRs; ``DEPLOYMENT_FREQUENCY`` the deployments and
deployments per day; ``TOTAL_SUCCESS`` / ``TOTAL_FAILURES`` deployments that did not / did fail,
``CFR`` failed / deployments x 100; ``MTTR`` aggregates restore times; ``OVERALL_RATING`` is
the legacy overall DORA score rounded to a tier (``Elite`` .. ``Low``).

**Productivity** (developer rows: the person; team rows: the subtree). ``CODING_DAYS`` coding
days (team: per active developer); ``PR_CYCLE_TIME_DAYS_AVG`` mean PR cycle time;
``AVG_TIME_TO_COMPLETE`` mean ``completed - started`` of items; ``PR_VELOCITY`` merged PRs per
active developer; ``PR_MERGED`` PRs (every PR merges), ``_SMALL`` < 100 lines, ``_MEDIUM``
100-399, ``_LARGE`` >= 400; ``WORK_COMPLETED`` items, ``_FEATURES_`` stories, ``_BUGS_`` bugs,
``_OTHER_`` tasks; ``LOC_ADDED`` / ``LOC_REMOVED`` / ``LOC_TOTAL`` (their sum);
``REWORK_PERCENT`` (``_RECENT``, ``_LEGACY``) rework lines / changed lines x 100;
``LOC_REFACTORED`` (``_RECENT``, ``_LEGACY``) refactored lines; ``PR_MISSING_TICKETS`` PRs
without a ticket; ``REVIEW_COMMENTS_PER_PR_AVG`` comments / PRs;
``REVIEW_TIME_TO_FIRST_COMMENT_HRS_AVG`` mean wait for the first comment, in hours.

**Sprint** (story points, or tickets with ``computationMode: TICKETS``; summed over the
sprints ending in the period and the subtree): ``SPRINT_COMMIT`` = delivered + missed
committed work, ``SPRINT_CREEP`` = delivered + missed creep, ``SPRINT_SIZE`` = commit + creep,
``SCOPE_CREEP_PERCENT`` = creep / commit x 100, ``TOTAL_WORK_DELIVERED`` = delivered commit +
delivered creep, ``TOTAL_DELIVERED_WORK_VS_COMMITTED_WORK`` = delivered / commit x 100,
``SPRINT_VELOCITY`` = delivered / sprints, ``COMMITTED_WORK_DELIVERED_PERCENT`` = delivered
commit / commit x 100, ``CREEP_WORK_DELIVERED_PERCENT`` = delivered creep / creep x 100,
``TOTAL_WORK_DELIVERED_PERCENT`` = delivered / size x 100, ``TICKETS_REMOVED_MID_SPRINT``,
``CHURN_RATE`` = (creep + removed work) / commit x 100,
``PREDICTABILITY_DELIVERY_CONSISTENCY`` = max(0, 100 - the coefficient of variation of the
delivered work per sprint, in %), ``PREDICTABILITY_RELIABILITY_OF_COMMITMENT`` = the mean per
sprint of the committed work delivered, in %.

**Business alignment**: story points and tickets of completed items per category.
**Time in status**: ``Issue_Count`` tickets, then each asked status's days aggregated with
``options.aggregation`` (a status outside the workflow has no data).

Cells: counts as integers, other numbers with two decimals, no data empty.
"""

from __future__ import annotations

import calendar
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sei_emulator.calculations import (
    TIER_NAMES,
    Tally,
    Window,
    aggregate,
    format_value,
    overall_dora,
    tally_months,
)
from sei_emulator.catalogue import CalculationType, Granularity
from sei_emulator.org import WORK_TYPES, Org, Team
from sei_emulator.v2_activity import habits, month_details, sprint_work, sprints_ending_in
from sei_emulator.v2_catalogue import BA_CATEGORIES, WORKFLOW_STATUSES

Cell = int | float | str | None
_LAG_DAYS = 14  # the longest release lag: tickets released in a period resolved up to this before


@dataclass(frozen=True)
class Period:
    """A row's time span and its ``Granularity`` label."""

    label: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def periods(first: date, last: date, granularity: str) -> list[Period]:
    """Return the periods of ``granularity`` covering ``first .. last`` (see the module
    docstring)."""
    if granularity == "SPRINT":
        return [Period(s.name, s.start, s.end) for s in sprints_ending_in(first, last)]
    out, day = [], first
    while day <= last:
        if granularity == "DAILY":
            end, label = day, day.isoformat()
        elif granularity == "WEEKLY":
            end = day + timedelta(days=6 - day.weekday())
            year, week, _ = day.isocalendar()
            label = f"{year}-W{week:02d}"
        elif granularity == "MONTHLY":
            end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
            label = f"{calendar.month_abbr[day.month]} {day.year}"
        else:  # QUARTERLY
            q = (day.month - 1) // 3
            month = 3 * q + 3
            end = date(day.year, month, calendar.monthrange(day.year, month)[1])
            label = f"Q{q + 1} {day.year}"
        out.append(Period(label, day, min(end, last)))
        day = min(end, last) + timedelta(days=1)
    return out


def sprint_periods(period: Period) -> list[Period]:
    """Return the sprints ending in ``period``, as periods of their own."""
    return [Period(s.name, s.start, s.end) for s in sprints_ending_in(period.start, period.end)]


@dataclass(slots=True)
class V2Tally:
    """Mergeable sums for one row: the legacy tally plus the V2 details."""

    base: Tally = field(default_factory=Tally)
    loc_added: int = 0
    loc_removed: int = 0
    rework_recent: int = 0
    rework_legacy: int = 0
    refactored_recent: int = 0
    refactored_legacy: int = 0
    pr_sizes: list[int] = field(default_factory=lambda: [0, 0, 0])  # small, medium, large
    cycle_days: float = 0.0
    work_types: list[int] = field(default_factory=lambda: [0, 0, 0])  # stories, bugs, tasks
    stages: list[list[float]] = field(default_factory=lambda: [[] for _ in range(5)])
    ba_points: list[int] = field(default_factory=lambda: [0] * len(BA_CATEGORIES))
    ba_tickets: list[int] = field(default_factory=lambda: [0] * len(BA_CATEGORIES))
    issues: int = 0
    status_days: list[list[float]] = field(default_factory=lambda: [[] for _ in WORKFLOW_STATUSES])

    def add(self, o: V2Tally) -> None:
        """Roll ``o`` into this tally."""
        self.base.add(o.base)
        self.add_details(o)

    def add_details(self, o: V2Tally) -> None:
        """Roll ``o``'s V2 details (not its legacy tally) into this tally."""
        for name in (
            "loc_added",
            "loc_removed",
            "rework_recent",
            "rework_legacy",
            "refactored_recent",
            "refactored_legacy",
            "cycle_days",
            "issues",
        ):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        for mine, theirs in (
            (self.pr_sizes, o.pr_sizes),
            (self.work_types, o.work_types),
            (self.ba_points, o.ba_points),
            (self.ba_tickets, o.ba_tickets),
        ):
            for i, v in enumerate(theirs):
                mine[i] += v
        for mine_l, theirs_l in zip(
            self.stages + self.status_days, o.stages + o.status_days, strict=True
        ):
            mine_l.extend(theirs_l)


def tally_team(
    org: Org, team: Team, period: Period, release_anchor: bool = False
) -> tuple[V2Tally, list[V2Tally]]:
    """Return the team's own tally and one per contributor for ``period``.

    :param release_anchor: count tickets in time-in-status by version release, not resolution.
    """
    window = Window(period.start, period.end, Granularity.DAILY)
    n = len(team.profile.contributors)
    base, people_base = tally_months(org.activity(team.ref_id, period.start, period.end), window, n)
    people = [V2Tally(b) for b in people_base]
    lo, hi = period.start.toordinal(), period.end.toordinal() + 1
    scan_from = period.start - timedelta(days=_LAG_DAYS if release_anchor else 0)
    for month in org.activity(team.ref_id, scan_from, period.end):
        prs, tickets = month_details(team, month)
        for author, created, lines, pr in zip(
            month.pr_author, month.pr_created, month.pr_lines, prs, strict=True
        ):
            if lo <= created < hi:
                t = people[author]
                t.loc_added += pr.loc_added
                t.loc_removed += pr.loc_removed
                t.rework_recent += pr.rework_recent
                t.rework_legacy += pr.rework_legacy
                t.refactored_recent += pr.refactored_recent
                t.refactored_legacy += pr.refactored_legacy
                t.pr_sizes[0 if lines < 100 else 1 if lines < 400 else 2] += 1
                t.cycle_days += pr.cycle_days
        for who, kind, completed, ticket in zip(
            month.item_assignee, month.item_type, month.item_completed, tickets, strict=True
        ):
            t = people[who]
            if lo <= completed < hi:
                t.work_types[("Story", "Bug", "Task").index(WORK_TYPES[kind])] += 1
                t.ba_points[ticket.category] += ticket.points
                t.ba_tickets[ticket.category] += 1
            if lo <= (ticket.released if release_anchor else completed) < hi:
                t.issues += 1
                for days, value in zip(t.status_days, ticket.status_days, strict=True):
                    days.append(value)
    own = V2Tally(base)  # tally_months has already rolled the people into ``base``
    own.stages = [[x * share for x in base.lead_times] for share in habits(team).lttc_shares]
    for person in people:
        own.add_details(person)
    return own, people


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return num * scale / den if den else None


def efficiency_cells(name: str, t: V2Tally, period: Period, agg: str) -> list[Cell]:
    """Return the cells of efficiency metric ``name`` (one per column)."""
    b, calc = t.base, CalculationType(agg.upper())
    stages = ("PLANNING", "CODING", "REVIEW", "BUILD", "DEPLOY")
    if name in stages:
        return [aggregate(t.stages[stages.index(name)], calc)]
    if name == "LTTC":
        return [aggregate(b.lead_times, calc)]
    if name == "MTTR":
        return [aggregate(b.restore_times, calc)]
    if name == "OVERALL_RATING":
        score = overall_dora(b, Window(period.start, period.end, Granularity.DAILY), calc)
        return [None if score is None else TIER_NAMES[int(score + 0.5) - 1]]
    counts: dict[str, Callable[[], list[Cell]]] = {
        "TOTAL_WORK_ITEMS": lambda: [b.items_done],
        "PR_ASSOCIATIONS": lambda: [b.prs - b.prs_missing_ticket],
        "PERCENTAGE_PR_ASSOCIATED": lambda: [_ratio(b.prs - b.prs_missing_ticket, b.prs, 100)],
        "DEPLOYMENT_FREQUENCY": lambda: [b.deployments, b.deployments / period.days],
        "TOTAL_SUCCESS": lambda: [b.deployments - b.failed_deployments],
        "TOTAL_FAILURES": lambda: [b.failed_deployments],
        "CFR": lambda: [_ratio(b.failed_deployments, b.deployments, 100)],
    }
    return counts[name]()


def productivity_cell(name: str, t: V2Tally, developer: bool) -> Cell:
    """Return the value of productivity metric ``name`` for a developer's or a team's tally."""
    b = t.base
    lines = t.loc_added + t.loc_removed
    if name == "CODING_DAYS":
        return b.coding_days if developer else (_ratio(b.coding_days, b.active_devs) or 0.0)
    return {
        "PR_CYCLE_TIME_DAYS_AVG": lambda: _ratio(t.cycle_days, b.prs),
        "AVG_TIME_TO_COMPLETE": lambda: _ratio(b.complete_days, b.items_done),
        "PR_VELOCITY": lambda: _ratio(b.prs, b.active_devs) or 0.0,
        "PR_MERGED": lambda: b.prs,
        "PR_MERGED_SMALL": lambda: t.pr_sizes[0],
        "PR_MERGED_MEDIUM": lambda: t.pr_sizes[1],
        "PR_MERGED_LARGE": lambda: t.pr_sizes[2],
        "WORK_COMPLETED": lambda: b.items_done,
        "WORK_FEATURES_COMPLETED": lambda: t.work_types[0],
        "WORK_BUGS_COMPLETED": lambda: t.work_types[1],
        "WORK_OTHER_COMPLETED": lambda: t.work_types[2],
        "LOC_ADDED": lambda: t.loc_added,
        "LOC_REMOVED": lambda: t.loc_removed,
        "LOC_TOTAL": lambda: lines,
        "REWORK_PERCENT": lambda: _ratio(t.rework_recent + t.rework_legacy, lines, 100),
        "REWORK_PERCENT_RECENT": lambda: _ratio(t.rework_recent, lines, 100),
        "REWORK_PERCENT_LEGACY": lambda: _ratio(t.rework_legacy, lines, 100),
        "LOC_REFACTORED": lambda: t.refactored_recent + t.refactored_legacy,
        "LOC_REFACTORED_RECENT": lambda: t.refactored_recent,
        "LOC_REFACTORED_LEGACY": lambda: t.refactored_legacy,
        "PR_MISSING_TICKETS": lambda: b.prs_missing_ticket,
        "REVIEW_COMMENTS_PER_PR_AVG": lambda: _ratio(b.pr_comments, b.prs),
        "REVIEW_TIME_TO_FIRST_COMMENT_HRS_AVG": lambda: _ratio(
            b.first_comment_days, b.prs_commented, 24
        ),
    }[name]()


def ba_cells(name: str, t: V2Tally) -> list[Cell]:
    """Business-alignment cells: story points (and KTLO's tickets) of one category."""
    i = ("KTLO", "NEW_CAPABILITY", "SECURITY_AND_COMPLIANCE", "UNCATEGORIZED").index(name)
    return [t.ba_points[i], t.ba_tickets[i]] if name == "KTLO" else [t.ba_points[i]]


def status_cell(status: str, t: V2Tally, agg: str) -> Cell:
    """Days in ``status`` (a workflow status, any case) aggregated; None outside the workflow."""
    names = [s.lower() for s in WORKFLOW_STATUSES]
    wanted = status.strip().lower()
    if wanted not in names:
        return None
    return aggregate(t.status_days[names.index(wanted)], CalculationType(agg.upper()))


@dataclass(slots=True)
class SprintTally:
    """Per sprint number: delivered commit, delivered creep, missed commit, missed creep,
    removed work, removed tickets (summed over a subtree)."""

    per_sprint: dict[int, list[int]] = field(default_factory=dict)

    def add(self, o: SprintTally) -> None:
        for n, values in o.per_sprint.items():
            mine = self.per_sprint.setdefault(n, [0] * 6)
            for i, v in enumerate(values):
                mine[i] += v


def sprint_tally(org: Org, team: Team, period: Period, story_points: bool) -> SprintTally:
    """Return the team's own work in the sprints ending in ``period``."""
    out = SprintTally()
    for sprint in sprints_ending_in(period.start, period.end):
        w = sprint_work(org, team, sprint, story_points)
        out.per_sprint[sprint.number] = [
            w.delivered_commit,
            w.delivered_creep,
            w.missed_commit,
            w.missed_creep,
            w.removed,
            w.removed_tickets,
        ]
    return out


def sprint_cell(name: str, t: SprintTally) -> Cell:
    """Return the value of sprint metric ``name`` (see the module docstring)."""
    rows = t.per_sprint.values()
    dc, dcr, mc, mcr, removed, removed_tickets = (sum(v[i] for v in rows) for i in range(6))
    commit, creep = dc + mc, dcr + mcr
    delivered = dc + dcr
    if name == "PREDICTABILITY_DELIVERY_CONSISTENCY":
        per = [v[0] + v[1] for v in t.per_sprint.values()]
        if not per or not statistics.fmean(per):
            return None
        return max(0.0, 100 - 100 * statistics.pstdev(per) / statistics.fmean(per))
    if name == "PREDICTABILITY_RELIABILITY_OF_COMMITMENT":
        shares = [100 * v[0] / (v[0] + v[2]) for v in t.per_sprint.values() if v[0] + v[2]]
        return statistics.fmean(shares) if shares else None
    return {
        "SPRINT_COMMIT": lambda: commit,
        "SPRINT_CREEP": lambda: creep,
        "SPRINT_SIZE": lambda: commit + creep,
        "SCOPE_CREEP_PERCENT": lambda: _ratio(creep, commit, 100),
        "TOTAL_WORK_DELIVERED": lambda: delivered,
        "DELIVERED_COMMIT": lambda: dc,
        "MISSED_COMMIT": lambda: mc,
        "DELIVERED_CREEP": lambda: dcr,
        "MISSED_CREEP": lambda: mcr,
        "TOTAL_DELIVERED_WORK_VS_COMMITTED_WORK": lambda: _ratio(delivered, commit, 100),
        "SPRINT_VELOCITY": lambda: _ratio(delivered, len(t.per_sprint)),
        "COMMITTED_WORK_DELIVERED_PERCENT": lambda: _ratio(dc, commit, 100),
        "CREEP_WORK_DELIVERED_PERCENT": lambda: _ratio(dcr, creep, 100),
        "TOTAL_WORK_DELIVERED_PERCENT": lambda: _ratio(delivered, commit + creep, 100),
        "TICKETS_REMOVED_MID_SPRINT": lambda: removed_tickets,
        "CHURN_RATE": lambda: _ratio(creep + removed, commit, 100),
    }[name]()


def format_cell(value: Cell) -> str:
    """Format a CSV cell: integers as they are, other numbers with two decimals, no data empty."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_value(value)
    return value or ""
