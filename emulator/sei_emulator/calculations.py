"""How the emulator computes every metric from the synthetic activity (see :mod:`.org`).

A report covers the days ``dateStart .. dateEnd`` inclusive (``range_days`` of them). An event
is in the range when its anchor time is: a pull request by its creation, a work item by its
completion, a deployment by its time, an incident by its start, a commit by its day.

**Periods.** Rate metrics are counts per granularity period. A period is 1 day (``daily``),
7 days (``weekly``) or 30.4375 days (``monthly``: the mean Gregorian month, 365.25 / 12), and
``periods = range_days / period_days`` (fractional, so weekly is exactly 7 x daily). Durations
are always in days and ignore granularity.

**Active developers** of a row are its contributors with at least one coding day, pull request
or completed work item in the range (managers do not code). Per-developer rates divide by them
and are 0 when there are none.

Team productivity metrics (contributor metrics in brackets, same formula for one person or
for a group of people):

- ``TIME_TO_FIRST_COMMENT`` (same): mean of ``first comment - created`` in days over the PRs
  with at least one comment.
- ``PR_VELOCITY_PER_DEV`` (``PR_VELOCITY``): lines changed in PRs / active developers / periods.
- ``WORKTYPE_COMPLETED_PER_DEV`` (``WORK_TYPE_COMPLETED``): completed work items that have a
  priority / active developers / periods.
- ``CODING_DAYS_PER_DEV`` (``CODING_DAYS``): distinct (developer, day) pairs with a commit /
  active developers / periods.
- ``NUMBER_OF_COMMENTS_PER_PR`` (same): review comments / PRs.
- ``AVG_TIME_TO_COMPLETE`` (same): mean of ``completed - started`` in days over completed items.
- (``NO_OF_PRS_WITH_MISSING_TICKETS``): the number of PRs without a linked ticket.

Efficiency (DORA) metrics:

- ``LEAD_TIME_FOR_CHANGES``: ``deployment time - commit time`` in days for every commit shipped
  by a deployment in the range, aggregated by ``calculationType``.
- ``DEPLOYMENT_FREQUENCY``: deployments / periods.
- ``CHANGE_FAILURE_RATE``: failed deployments / deployments x 100.
- ``MEAN_TIME_TO_RESTORE``: ``restored - start`` in days per incident, by ``calculationType``.
- ``OVERALL_DORA``: the mean of the four DORA metrics' tier scores (Elite 4, High 3, Medium 2,
  Low 1; the lead time and restore tiers judge the value in the row, i.e. with the request's
  ``calculationType``), over the metrics that have data. 1.00 (all Low) .. 4.00 (all Elite).

**Aggregation** (``calculationType``): ``MEAN`` is the arithmetic mean; ``MEDIAN``, ``P90`` and
``P95`` are percentiles by linear interpolation between closest ranks (Hyndman & Fan type 7,
NumPy's and Excel ``PERCENTILE.INC``'s default): for sorted values ``x[0..n-1]`` and fraction
``p``, ``h = (n - 1) p``, ``f = floor h`` and the value is ``x[f] + (h - f)(x[f + 1] - x[f])``.
So P95 >= P90 >= MEDIAN always.

**Roll-up.** A team's row counts its own events and those of all its descendant teams: tallies
(sums, counts and the duration samples) are added child into parent before any formula runs.

**No data.** An average over nothing, a rate of failures over no deployments, or a duration
aggregate without samples is empty in the CSV; rates and counts of nothing are ``0.00``.

**Tiers** (``includeRatings``: ``Elite``, ``High``, ``Medium``, ``Low``, or ``—`` without data).
DORA tiers (2023 State of DevOps, as in the project notes): deployment frequency per *day*
>= 1 Elite, >= 1/7 High, >= 1/30.4375 Medium, else Low; lead time < 1 day Elite, < 7 High,
< 30.4375 Medium, else Low; change failure rate <= 5 % Elite, <= 10 % High, <= 15 % Medium,
else Low; time to restore < 1 hour Elite, < 1 day High, < 7 days Medium, else Low.

Contributor tiers are the emulator's own, only for metrics with a natural better direction:

- ``TIME_TO_FIRST_COMMENT``: faster review is better: < 4 hours Elite, < 1 day High,
  < 3 days Medium, else Low.
- ``AVG_TIME_TO_COMPLETE``: shorter cycle time is better: < 2 days Elite, < 5 High, < 10 Medium,
  else Low.
- ``CODING_DAYS``: judged per week whatever the granularity; more regular coding is better:
  >= 4 Elite, >= 3 High, >= 2 Medium, else Low.
- ``NO_OF_PRS_WITH_MISSING_TICKETS``: judged on the *share* of PRs missing a ticket (a raw count
  grows with team size and range); fewer is better: <= 5 % Elite, <= 10 % High, <= 20 % Medium,
  else Low.

``PR_VELOCITY`` (more lines is not better work), ``WORK_TYPE_COMPLETED`` (items differ in size)
and ``NUMBER_OF_COMMENTS_PER_PR`` (no better direction) have no tiers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sei_emulator.catalogue import CalculationType, Granularity, Metric
from sei_emulator.org import MonthActivity

PERIOD_DAYS = {Granularity.DAILY: 1.0, Granularity.WEEKLY: 7.0, Granularity.MONTHLY: 30.4375}
MONTH_DAYS = PERIOD_DAYS[Granularity.MONTHLY]
NO_RATING = "—"
TIER_NAMES = ("Low", "Medium", "High", "Elite")  # index + 1 is the tier's score


@dataclass(slots=True)
class Tally:
    """Mergeable sums and samples for one row (a person, a team, or a team's subtree)."""

    prs: int = 0
    pr_lines: int = 0
    pr_comments: int = 0
    prs_commented: int = 0
    first_comment_days: float = 0.0
    prs_missing_ticket: int = 0
    items_done: int = 0
    items_prioritized: int = 0
    complete_days: float = 0.0
    coding_days: int = 0
    active_devs: int = 0
    deployments: int = 0
    failed_deployments: int = 0
    lead_times: list[float] = field(default_factory=list)
    restore_times: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Roll ``other`` into this tally."""
        self.prs += other.prs
        self.pr_lines += other.pr_lines
        self.pr_comments += other.pr_comments
        self.prs_commented += other.prs_commented
        self.first_comment_days += other.first_comment_days
        self.prs_missing_ticket += other.prs_missing_ticket
        self.items_done += other.items_done
        self.items_prioritized += other.items_prioritized
        self.complete_days += other.complete_days
        self.coding_days += other.coding_days
        self.active_devs += other.active_devs
        self.deployments += other.deployments
        self.failed_deployments += other.failed_deployments
        self.lead_times += other.lead_times
        self.restore_times += other.restore_times

    @property
    def empty(self) -> bool:
        """Whether there was no activity at all."""
        return not (
            self.prs or self.items_done or self.coding_days or self.deployments
            or self.restore_times
        )  # fmt: skip


@dataclass(frozen=True)
class Window:
    """A report's date range and granularity."""

    date_start: date
    date_end: date
    granularity: Granularity

    @property
    def days(self) -> int:
        return (self.date_end - self.date_start).days + 1

    @property
    def period_days(self) -> float:
        return PERIOD_DAYS[self.granularity]

    @property
    def periods(self) -> float:
        return self.days / self.period_days


def tally_months(
    months: Iterable[MonthActivity], window: Window, contributors: int
) -> tuple[Tally, list[Tally]]:
    """Return a team's own tally and one tally per contributor (index order) for ``window``."""
    lo, hi = window.date_start.toordinal(), window.date_end.toordinal() + 1
    people = [Tally() for _ in range(contributors)]
    team = Tally()
    for m in months:
        a, b = max(0, lo - m.first_day), min(m.days, hi - m.first_day)
        if a >= b:
            continue
        in_range = ((1 << b) - 1) ^ ((1 << a) - 1)
        for person, mask in zip(people, m.coding_masks, strict=True):
            person.coding_days += (mask & in_range).bit_count()
        for author, created, lines, comments, first, ticket in zip(
            m.pr_author, m.pr_created, m.pr_lines, m.pr_comments, m.pr_first_comment,
            m.pr_has_ticket, strict=True
):  # fmt: skip
            if lo <= created < hi:
                t = people[author]
                t.prs += 1
                t.pr_lines += lines
                t.pr_comments += comments
                t.prs_missing_ticket += not ticket
                if first == first:  # not NaN: the PR has comments
                    t.prs_commented += 1
                    t.first_comment_days += first - created
        for assignee, priority, started, completed in zip(
            m.item_assignee, m.item_priority, m.item_started, m.item_completed, strict=True
        ):
            if lo <= completed < hi:
                t = people[assignee]
                t.items_done += 1
                t.items_prioritized += priority >= 0
                t.complete_days += completed - started
        at = 0
        for time, failed, n in zip(m.deploy_time, m.deploy_failed, m.deploy_commits, strict=True):
            if lo <= time < hi:
                team.deployments += 1
                team.failed_deployments += failed
                team.lead_times.extend([time - c for c in m.commit_times[at : at + n]])
            at += n
        team.restore_times.extend(
            [
                r - s
                for s, r in zip(m.incident_start, m.incident_restored, strict=True)
                if lo <= s < hi
            ]
        )
    for person in people:
        person.active_devs = int(bool(person.coding_days or person.prs or person.items_done))
        team.add(person)
    return team, people


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolation percentile (type 7) of non-empty ``values``.

    Sorts ``values`` in place: a parent's samples are then its children's sorted runs, which
    ``list.sort`` merges in near-linear time.
    """
    values.sort()
    ordered = values
    h = (len(ordered) - 1) * fraction
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def aggregate(values: list[float], calculation_type: CalculationType) -> float | None:
    """``values`` aggregated the way ``calculationType`` asks; None without values."""
    if not values:
        return None
    if calculation_type is CalculationType.MEAN:
        return math.fsum(values) / len(values)
    fraction = {"MEDIAN": 0.5, "P90": 0.9, "P95": 0.95}[calculation_type.value]
    return percentile(values, fraction)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _per_dev(total: float, t: Tally, window: Window) -> float:
    return total / t.active_devs / window.periods if t.active_devs else 0.0


def metric_value(
    metric: Metric, t: Tally, window: Window, calc: CalculationType = CalculationType.MEAN
) -> float | None:
    """Return the value of ``metric`` for tally ``t`` (None: no data, an empty CSV cell)."""
    name = metric.name
    if name == "TIME_TO_FIRST_COMMENT":
        return _ratio(t.first_comment_days, t.prs_commented)
    if name in ("PR_VELOCITY_PER_DEV", "PR_VELOCITY"):
        return _per_dev(t.pr_lines, t, window)
    if name in ("WORKTYPE_COMPLETED_PER_DEV", "WORK_TYPE_COMPLETED"):
        return _per_dev(t.items_prioritized, t, window)
    if name in ("CODING_DAYS_PER_DEV", "CODING_DAYS"):
        return _per_dev(t.coding_days, t, window)
    if name == "NUMBER_OF_COMMENTS_PER_PR":
        return _ratio(t.pr_comments, t.prs)
    if name == "AVG_TIME_TO_COMPLETE":
        return _ratio(t.complete_days, t.items_done)
    if name == "NO_OF_PRS_WITH_MISSING_TICKETS":
        return float(t.prs_missing_ticket)
    if name == "LEAD_TIME_FOR_CHANGES":
        return aggregate(t.lead_times, calc)
    if name == "DEPLOYMENT_FREQUENCY":
        return t.deployments / window.periods
    if name == "CHANGE_FAILURE_RATE":
        return _ratio(t.failed_deployments * 100.0, t.deployments)
    if name == "MEAN_TIME_TO_RESTORE":
        return aggregate(t.restore_times, calc)
    if name == "OVERALL_DORA":
        return overall_dora(t, window, calc)
    raise ValueError(f"no formula for metric {name}")


# Tier rules: (higher is better, elite, high, medium bounds, bounds inclusive).
_TIERS: dict[str, tuple[bool, float, float, float, bool]] = {
    "DEPLOYMENT_FREQUENCY": (True, 1.0, 1 / 7, 1 / MONTH_DAYS, True),  # per day
    "LEAD_TIME_FOR_CHANGES": (False, 1.0, 7.0, MONTH_DAYS, False),
    "CHANGE_FAILURE_RATE": (False, 5.0, 10.0, 15.0, True),
    "MEAN_TIME_TO_RESTORE": (False, 1 / 24, 1.0, 7.0, False),
    "TIME_TO_FIRST_COMMENT": (False, 1 / 6, 1.0, 3.0, False),
    "AVG_TIME_TO_COMPLETE": (False, 2.0, 5.0, 10.0, False),
    "CODING_DAYS": (True, 4.0, 3.0, 2.0, True),  # per week
    "NO_OF_PRS_WITH_MISSING_TICKETS": (False, 5.0, 10.0, 20.0, True),  # % of PRs
}
DORA_METRICS = (
    "DEPLOYMENT_FREQUENCY", "LEAD_TIME_FOR_CHANGES", "CHANGE_FAILURE_RATE", "MEAN_TIME_TO_RESTORE"
)  # fmt: skip


def has_tiers(metric: Metric) -> bool:
    """Whether ``includeRatings`` adds a rating column after ``metric``."""
    return metric.name in _TIERS


def _score(name: str, value: float) -> int:
    """Return the tier score 1 (Low) .. 4 (Elite) of ``value`` by ``name``'s rule."""
    higher, *bounds, inclusive = _TIERS[name]
    for score, bound in zip((4, 3, 2), bounds, strict=True):
        if higher and (value >= bound if inclusive else value > bound):
            return score
        if not higher and (value <= bound if inclusive else value < bound):
            return score
    return 1


def tier_score(
    name: str, t: Tally, window: Window, calc: CalculationType = CalculationType.MEAN
) -> int | None:
    """Return the tier score of metric ``name`` for ``t``, or None when it has no data."""
    if name == "DEPLOYMENT_FREQUENCY":
        return _score(name, t.deployments / window.days) if t.deployments else None
    if name == "CODING_DAYS":
        per_week = t.coding_days / t.active_devs / window.days * 7 if t.active_devs else None
        return None if per_week is None else _score(name, per_week)
    if name == "NO_OF_PRS_WITH_MISSING_TICKETS":
        share = _ratio(t.prs_missing_ticket * 100.0, t.prs)
        return None if share is None else _score(name, share)
    value = {
        "LEAD_TIME_FOR_CHANGES": lambda: aggregate(t.lead_times, calc),
        "MEAN_TIME_TO_RESTORE": lambda: aggregate(t.restore_times, calc),
        "CHANGE_FAILURE_RATE": lambda: _ratio(t.failed_deployments * 100.0, t.deployments),
        "TIME_TO_FIRST_COMMENT": lambda: _ratio(t.first_comment_days, t.prs_commented),
        "AVG_TIME_TO_COMPLETE": lambda: _ratio(t.complete_days, t.items_done),
    }[name]()
    return None if value is None else _score(name, value)


def rating(metric: Metric, t: Tally, window: Window) -> str:
    """Return the rating cell for ``metric``: a tier name, or ``—`` without data."""
    score = tier_score(metric.name, t, window)
    return NO_RATING if score is None else TIER_NAMES[score - 1]


def overall_dora(t: Tally, window: Window, calc: CalculationType) -> float | None:
    """Mean tier score of the DORA metrics that have data."""
    scores = [s for n in DORA_METRICS if (s := tier_score(n, t, window, calc)) is not None]
    return sum(scores) / len(scores) if scores else None


def format_value(value: float | None) -> str:
    """Format a CSV cell: two decimals, empty for no data."""
    return "" if value is None else f"{value:.2f}"
