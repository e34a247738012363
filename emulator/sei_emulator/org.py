"""The emulator's synthetic organisation: a deterministic team tree, its people and activity.

Everything here is a pure function of ``seed`` (and ``teams``). Nothing uses Python's salted
``hash()``: every random stream is a :class:`random.Random` seeded with a string such as
``"42:456:2024-03"``, which CPython hashes with SHA-512, so the same seed gives the same bytes on
every run and every machine.

**The tree.** Team ref ids are ``1`` (the root, also the org tree's id and the examples'
``collectionId "1"``), then ``123``, ``456`` and ``789`` (the ids the API page's examples use),
then ``1001, 1002, ...``. With ``teams=N`` the ``N - 1`` non-root teams are spread over three
levels below the root: ``ceil((N-1) ** (1/3))`` departments, then up to ``departments ** 2``
(but at most half the rest) teams, then the rest; each level is dealt round-robin over the
shuffled level above, so the tree has depth 3-4 (depth 4 for the default 12 teams:
``123, 456, 789`` are the departments).

**People.** Each team has one manager (who does not code) and 3-7 contributors, generated
lazily from the team's own stream. A manager's direct reports are the team's contributors;
the managers of child teams report up the tree. Names are unique within a team; in very large
orgs two people in different teams can share a name.

**Activity** is generated lazily per team and calendar month, only inside
:data:`ACTIVITY_START` .. :data:`ACTIVITY_END` (outside it there is nothing: such a report is
empty), and cached in a bounded LRU so memory stays flat for large orgs. Per month:

- *commits*: for each contributor a bitmask of the days they committed (bit ``d`` = day
  ``d + 1`` of the month); weekdays with the contributor's own density (25/50/75 %), weekends
  at 1/8. A coding day is a day with at least one commit.
- *pull requests*: author, created time, lines changed (lognormal, median ~120), comment count
  (exponential), time to first comment (lognormal around the team's review speed; only when
  there are comments) and whether a ticket is linked.
- *work items*: assignee, type, priority (``None`` for ~10 %: not prioritised), started and
  completed times (time to complete is lognormal around the team's median).
- *deployments*: time, failed or not (team failure probability), and the commit times they ship
  (1-3 commits, each ``deploy - lognormal(team lead time)``).
- *incidents*: start and restore times (time to restore lognormal around the team's median).

Times are floats in days: ``date.toordinal() + fraction of the day``. Each team gets a profile
(deploy rate, lead time, failure probability, review speed...) drawn from lognormal or uniform
spreads, so teams land in different DORA tiers and durations are skewed (mean > median).
"""

from __future__ import annotations

import calendar
import math
import random
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from itertools import accumulate
from statistics import NormalDist
from typing import NamedTuple

ACTIVITY_START = date(2023, 1, 1)
ACTIVITY_END = date(2026, 12, 31)

ROOT_REF_ID = 1
EXAMPLE_REF_IDS = (123, 456, 789)
FIRST_GENERATED_REF_ID = 1001
ORG_TREE_ID = 1

#: Months of activity kept per org (a 12-team org's whole window fits); others are regenerated.
ACTIVITY_CACHE_MONTHS = 1024

_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
_AREAS = (
    "Platform", "Payments", "Mobile", "Data", "Search", "Identity", "Billing", "Growth",
    "Checkout", "Messaging", "Storage", "Analytics", "Security", "Infra", "Catalog", "Ads",
    "Maps", "Media", "Onboarding", "Support", "Fraud", "Pricing", "Ledger", "Notifications",
)  # fmt: skip
_SUFFIXES = (
    "Core", "API", "Web", "Services", "Tools", "Reliability", "Experience", "Pipeline",
    "Frontend", "Backend", "Ops", "Insights", "Edge", "Runtime", "Quality",
)  # fmt: skip
_FIRST = (
    "Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Katherine", "Donald", "Sophie", "John", "Hedy", "Guido", "Anita", "Bjarne",
    "Joan", "Niklaus", "Karen", "Leslie", "Shafi", "Vint", "Mary", "Ivan", "Lynn", "Robin",
    "Priya", "Kenji", "Amara", "Mateo", "Ingrid", "Omar", "Chen", "Fatima", "Lars", "Zofia",
)  # fmt: skip
_LAST = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "Knuth", "Wilson", "McCarthy",
    "Lamarr", "van Rossum", "Borg", "Stroustrup", "Clarke", "Wirth", "Jones", "Lamport",
    "Goldwasser", "Cerf", "Keller", "Sutherland", "Conway", "Milner", "Patel", "Tanaka",
    "Okafor", "Garcia", "Nilsson", "Haddad", "Wei", "Rahman", "Berg", "Nowak",
)  # fmt: skip
WORK_TYPES = ("Story", "Story", "Bug", "Bug", "Task")
PRIORITIES = ("P1", "P2", "P2", "P3", "P3", "P3", "P4", "P4", "P4")  # and 10 % without one

# A discretised standard normal: cheap lognormal draws (random.lognormvariate costs ~1.5 us,
# a table lookup a tenth of that; generation speed is what keeps a 1000-team report fast).
_Z = tuple(NormalDist().inv_cdf((i + 0.5) / 1024) for i in range(1024))


_LOGNORMAL = {s: tuple(math.exp(s * z) for z in _Z) for s in (0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)}


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """Return a lognormal draw with that median; ``sigma`` must be a key of ``_LOGNORMAL``."""
    return median * _LOGNORMAL[sigma][int(rng.random() * 1024)]


def _poisson(rng: random.Random, lam: float) -> int:
    """Return a Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam > 30:
        return max(0, round(lam + math.sqrt(lam) * _Z[int(rng.random() * 1024)]))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True)
class Person:
    """A manager or a contributor. ``index`` is the contributor's index in its team."""

    name: str
    team_ref_id: int
    index: int
    is_manager: bool = False


class PullRequest(NamedTuple):
    author: int  # contributor index in the team
    created: float
    lines: int
    comments: int
    first_comment: float | None  # time of the first comment; None without comments
    has_ticket: bool


class WorkItem(NamedTuple):
    assignee: int
    type: str
    priority: str | None
    started: float
    completed: float


class Deployment(NamedTuple):
    time: float
    failed: bool
    commit_times: tuple[float, ...]


class Incident(NamedTuple):
    start: float
    restored: float


@dataclass(frozen=True)
class MonthActivity:
    """One team's activity in one calendar month; ``first_day`` is the 1st's ordinal.

    Stored as columns of :class:`array.array` (one entry per event; ``first_comment`` is NaN
    without comments, ``priority`` -1 without a priority, ``commit_times`` the shipped commits
    of every deployment back to back, ``commits[i]`` of them for deployment ``i``): arrays are
    compact and invisible to the garbage collector, which keeps a 1000-team report fast. The
    properties give the same events as tuples.
    """

    first_day: int
    days: int
    coding_masks: tuple[int, ...]  # per contributor index
    pr_author: array = field(default_factory=lambda: array("b"))
    pr_created: array = field(default_factory=lambda: array("d"))
    pr_lines: array = field(default_factory=lambda: array("l"))
    pr_comments: array = field(default_factory=lambda: array("l"))
    pr_first_comment: array = field(default_factory=lambda: array("d"))
    pr_has_ticket: array = field(default_factory=lambda: array("b"))
    item_assignee: array = field(default_factory=lambda: array("b"))
    item_type: array = field(default_factory=lambda: array("b"))
    item_priority: array = field(default_factory=lambda: array("b"))
    item_started: array = field(default_factory=lambda: array("d"))
    item_completed: array = field(default_factory=lambda: array("d"))
    deploy_time: array = field(default_factory=lambda: array("d"))
    deploy_failed: array = field(default_factory=lambda: array("b"))
    deploy_commits: array = field(default_factory=lambda: array("b"))
    commit_times: array = field(default_factory=lambda: array("d"))
    incident_start: array = field(default_factory=lambda: array("d"))
    incident_restored: array = field(default_factory=lambda: array("d"))

    @property
    def pull_requests(self) -> list[PullRequest]:
        return [
            PullRequest(a, c, n, k, None if math.isnan(f) else f, bool(t))
            for a, c, n, k, f, t in zip(self.pr_author, self.pr_created, self.pr_lines,
                                        self.pr_comments, self.pr_first_comment,
                                        self.pr_has_ticket, strict=True)
        ]  # fmt: skip

    @property
    def work_items(self) -> list[WorkItem]:
        return [
            WorkItem(a, WORK_TYPES[t], None if p < 0 else PRIORITIES[p], s, c)
            for a, t, p, s, c in zip(self.item_assignee, self.item_type, self.item_priority,
                                     self.item_started, self.item_completed, strict=True)
        ]  # fmt: skip

    @property
    def deployments(self) -> list[Deployment]:
        out, at = [], 0
        for time, failed, n in zip(
            self.deploy_time, self.deploy_failed, self.deploy_commits, strict=True
        ):
            out.append(Deployment(time, bool(failed), tuple(self.commit_times[at : at + n])))
            at += n
        return out

    @property
    def incidents(self) -> list[Incident]:
        return [
            Incident(s, r) for s, r in zip(self.incident_start, self.incident_restored, strict=True)
        ]


@dataclass(frozen=True)
class TeamProfile:
    """A team's habits, from which its monthly activity is drawn."""

    manager: str
    contributors: tuple[str, ...]
    coding_density: tuple[int, ...]  # per contributor: 0 = 25 %, 1 = 50 %, 2 = 75 % of weekdays
    prs_per_month: tuple[float, ...]
    items_per_month: tuple[float, ...]
    review_days: float  # median time to first comment
    comments_per_pr: float
    missing_ticket: float
    complete_days: float  # median time to complete a work item
    deploys_per_day: float
    lead_days: float  # median lead time
    failure: float
    incidents_per_month: float
    restore_days: float  # median time to restore


@dataclass(eq=False)
class Team:
    """A team (a collection) of the org tree."""

    ref_id: int
    name: str
    parent_ref_id: int | None
    depth: int
    seed: int
    children: list[int] = field(default_factory=list)

    @cached_property
    def profile(self) -> TeamProfile:
        return _make_profile(random.Random(f"{self.seed}:{self.ref_id}:profile"))

    @property
    def managers(self) -> list[Person]:
        return [Person(self.profile.manager, self.ref_id, -1, is_manager=True)]

    @property
    def contributors(self) -> list[Person]:
        return [Person(n, self.ref_id, i) for i, n in enumerate(self.profile.contributors)]


@dataclass(frozen=True)
class OrgTree:
    """An org tree as ``GET /v2/org-trees`` lists it."""

    id: int
    name: str
    root_team_ref_id: int


class Org:
    """The synthetic organisation: ``teams`` teams in one org tree, all from ``seed``.

    :param seed: the seed every random stream derives from.
    :param teams: how many teams (>= 1); ref ids ``1, 123, 456, 789, 1001, ...`` in that order.
    """

    def __init__(self, seed: int = 42, teams: int = 12) -> None:
        if teams < 1:
            raise ValueError("an org needs at least one team")
        self.seed = seed
        rng = random.Random(f"{seed}:org")
        company = rng.choice(_COMPANIES)
        ids = [ROOT_REF_ID, *EXAMPLE_REF_IDS][:teams]
        ids += range(FIRST_GENERATED_REF_ID, FIRST_GENERATED_REF_ID + teams - len(ids))
        root = Team(ROOT_REF_ID, f"{company} Engineering", None, 1, seed)
        self.teams: dict[int, Team] = {ROOT_REF_ID: root}
        names = {root.name}
        above, pos = [root], 1
        for size in _level_sizes(teams - 1):
            level = []
            order = above[:]
            rng.shuffle(order)
            for k, ref_id in enumerate(ids[pos : pos + size]):
                parent = order[k % len(order)]
                team = Team(ref_id, _team_name(rng, names), parent.ref_id, parent.depth + 1, seed)
                parent.children.append(ref_id)
                self.teams[ref_id] = team
                level.append(team)
            pos += size
            above = level
        self.root = root
        self.trees = [OrgTree(ORG_TREE_ID, root.name, ROOT_REF_ID)]
        self._month = lru_cache(maxsize=ACTIVITY_CACHE_MONTHS)(self._generate_month)

    def team(self, ref_id: int) -> Team | None:
        return self.teams.get(ref_id)

    def tree(self, tree_id: int) -> OrgTree | None:
        return next((t for t in self.trees if t.id == tree_id), None)

    def subtree(self, ref_id: int) -> Iterator[Team]:
        """Yield the team and all its descendants, in pre-order."""
        stack = [self.teams[ref_id]]
        while stack:
            team = stack.pop()
            yield team
            stack.extend(self.teams[c] for c in reversed(team.children))

    def activity(self, ref_id: int, first_day: date, last_day: date) -> Iterator[MonthActivity]:
        """Yield the team's monthly activity for every month overlapping ``first_day..last_day``."""
        lo, hi = max(first_day, ACTIVITY_START), min(last_day, ACTIVITY_END)
        year, month = lo.year, lo.month
        while (year, month) <= (hi.year, hi.month):
            yield self._month(ref_id, year, month)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def _generate_month(self, ref_id: int, year: int, month: int) -> MonthActivity:
        return _generate_month(self.teams[ref_id], year, month)


def _level_sizes(rest: int) -> list[int]:
    """How many teams on each level below the root."""
    if rest <= 0:
        return []
    first = min(rest, math.ceil(rest ** (1 / 3) - 1e-9))
    second = min(rest - first, first * first, math.ceil((rest - first) / 2))
    return [s for s in (first, second, rest - first - second) if s > 0]


def _team_name(rng: random.Random, taken: set[str]) -> str:
    name = f"{rng.choice(_AREAS)} {rng.choice(_SUFFIXES)}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base} {n}", n + 1
    taken.add(name)
    return name


def _make_profile(rng: random.Random) -> TeamProfile:
    size = rng.randint(3, 7)
    names: list[str] = []
    while len(names) < size + 1:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        if name not in names:
            names.append(name)
    return TeamProfile(
        manager=names[0],
        contributors=tuple(names[1:]),
        coding_density=tuple(rng.choice((0, 1, 1, 2)) for _ in range(size)),
        prs_per_month=tuple(rng.uniform(0.8, 3.2) for _ in range(size)),
        items_per_month=tuple(rng.uniform(0.5, 2.5) for _ in range(size)),
        review_days=_lognormal(rng, 0.5, 0.9),
        comments_per_pr=rng.uniform(0.5, 6.0),
        missing_ticket=rng.uniform(0.0, 0.3),
        complete_days=_lognormal(rng, 4.0, 0.6),
        deploys_per_day=_lognormal(rng, 0.15, 1.0),
        lead_days=_lognormal(rng, 3.0, 1.2),
        failure=rng.uniform(0.01, 0.3),
        incidents_per_month=rng.uniform(0.3, 3.0),
        restore_days=_lognormal(rng, 0.3, 1.3),
    )


@lru_cache(maxsize=4096)
def _cumulative(rates: tuple[float, ...]) -> tuple[list[float], float]:
    """Cumulative rates (to pick who did something, weighted by rate) and their sum."""
    return list(accumulate(rates))[:-1], sum(rates)


@lru_cache(maxsize=64)
def _month_span(year: int, month: int) -> tuple[int, int]:
    """Return the ordinal of the month's first day and its number of days."""
    return date(year, month, 1).toordinal(), calendar.monthrange(year, month)[1]


@lru_cache(maxsize=64)
def _weekday_mask(first_day: int, days: int) -> int:
    mask = 0
    for d in range(days):
        if (first_day + d) % 7 not in (0, 6):  # ordinal % 7: 0 = Sunday, 6 = Saturday
            mask |= 1 << d
    return mask


def _generate_month(team: Team, year: int, month: int) -> MonthActivity:
    # Hot path (a 1000-team yearly report runs it 12,000 times): locals and table lookups.
    rng = random.Random(f"{team.seed}:{team.ref_id}:{year:04d}-{month:02d}")
    r, bits = rng.random, rng.getrandbits
    ln08, ln10, ln12 = _LOGNORMAL[0.8], _LOGNORMAL[1.0], _LOGNORMAL[1.2]
    p = team.profile
    first, days = _month_span(year, month)
    span = float(days)
    weekdays = _weekday_mask(first, days)
    weekends = ~weekdays & ((1 << days) - 1)
    masks = []
    for density in p.coding_density:
        a = bits(days)
        a = a & bits(days) if density == 0 else (a | bits(days) if density == 2 else a)
        masks.append((a & weekdays) | (bits(days) & bits(days) & bits(days) & weekends))
    m = MonthActivity(first, days, tuple(masks))
    pr_weights, pr_total = _cumulative(p.prs_per_month)
    for _ in range(_poisson(rng, pr_total)):
        created = first + r() * span
        comments = int(-math.log(1.0 - r()) * p.comments_per_pr)  # exponential
        m.pr_author.append(bisect_right(pr_weights, r() * pr_total))
        m.pr_created.append(created)
        m.pr_comments.append(comments)
        m.pr_first_comment.append(
            created + p.review_days * ln10[int(r() * 1024)] if comments else math.nan
        )
        m.pr_lines.append(1 + int(120.0 * ln10[int(r() * 1024)]))
        m.pr_has_ticket.append(r() >= p.missing_ticket)
    item_weights, item_total = _cumulative(p.items_per_month)
    for _ in range(_poisson(rng, item_total)):
        completed = first + r() * span
        m.item_assignee.append(bisect_right(item_weights, r() * item_total))
        m.item_completed.append(completed)
        m.item_started.append(completed - p.complete_days * ln08[int(r() * 1024)])
        m.item_type.append(int(r() * len(WORK_TYPES)))
        m.item_priority.append(int(r() * (len(PRIORITIES) + 1)) - 1)  # -1: no priority
    for _ in range(_poisson(rng, p.deploys_per_day * span)):
        time = first + r() * span
        m.deploy_time.append(time)
        n = 1 + int(r() * 3)
        m.deploy_commits.append(n)
        m.commit_times.extend([time - p.lead_days * ln10[int(r() * 1024)] for _ in range(n)])
        m.deploy_failed.append(r() < p.failure)
    for _ in range(_poisson(rng, p.incidents_per_month)):
        start = first + r() * span
        m.incident_start.append(start)
        m.incident_restored.append(start + p.restore_days * ln12[int(r() * 1024)])
    return m
