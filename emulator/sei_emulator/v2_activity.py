"""Activity the V2 exports need beyond :mod:`.org`: PR and ticket details, and sprints.

Everything is a pure function of the seed, drawn from random streams of its own (so the
legacy reports keep their bytes): the events themselves (PRs, work items, deployments...) are
:mod:`.org`'s; this module only adds details to them.

**Team habits** (stream ``"{seed}:{ref}:v2-habits"``): the shares of a lead time spent in each
LTTC stage (planning, coding, review, build, deploy: weights U(1, 3), normalised), the
business-alignment mix (KTLO U(2, 5), New Capability U(3, 7), Security and Compliance U(0.5, 2),
Uncategorized U(0.5, 2.5)), the share of a sprint's delivered tickets that were committed at its
start U(0.6, 0.9), the miss rate U(0.05, 0.35) and the mid-sprint removal rate U(0.02, 0.15),
the rework share U(0.05, 0.25) and refactoring share U(0.02, 0.15) of changed lines, the time
split of work in progress (In Progress U(2, 5), In Review U(1, 3), QA U(0.5, 2)), and the
release cadence (7 or 14 days).

**Per month** (stream ``"{seed}:{ref}:{yyyy-mm}:v2"``): one draw set per pull request, then per
work item, in the order :mod:`.org` generated them.

- A PR's ``loc_removed = round(lines * U(0.1, 0.5))`` and ``loc_added = lines - loc_removed``;
  with ``r = U(0, 2 * rework share)``, ``f = U(0, 2 * refactoring share)``, ``q = U(0, 1)``:
  ``rework_recent = round(lines * r * q)`` (changes to code under 30 days old),
  ``rework_legacy = round(lines * r * (1 - q))``, ``refactored_recent = round(lines * f * q)``,
  ``refactored_legacy = round(lines * f * (1 - q))``. Its cycle time (creation to merge) is
  ``wait for the first comment (0 without comments) + 0.25 day per comment + lines / 400`` days.
- A ticket's story points are 1, 2, 3, 5 or 8 (weights 2, 3, 3, 2, 1); its business-alignment
  category is drawn from the team mix; it was committed at sprint start with the team's commit
  share (else it crept in). Its time in each workflow status, in days: ``To Do`` the team's
  median time to complete x U(0.2, 1.5); ``In Progress``, ``In Review``, ``QA`` split
  ``completed - started`` by the team's weights x U(0.5, 1.5), normalised; ``Done`` the wait
  for the version release, U(0, release cadence). Its ``version_release_date`` is
  ``completed + Done``.

**Sprints** follow one org-wide calendar of two-week sprints from Monday 2023-01-02: sprint
``n`` (1-based, ``"Sprint n"``) covers days ``14 (n - 1) .. 14 (n - 1) + 13``. A team's sprint
delivered the tickets it completed in those days (committed or creep, per ticket); from the
stream ``"{seed}:{ref}:sprint:{n}"`` it also missed ``Binomial(delivered committed + 1, miss
rate)`` committed and ``Binomial(delivered creep + 1, miss rate)`` creep tickets and had
``Binomial(delivered + 1, removal rate)`` tickets removed mid-sprint, each with drawn points.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import NamedTuple

from sei_emulator.org import ACTIVITY_END, MonthActivity, Org, Team
from sei_emulator.v2_catalogue import BA_CATEGORIES, WORKFLOW_STATUSES

POINTS = (1, 2, 3, 5, 8)
_POINT_WEIGHTS = (2, 3, 3, 2, 1)
SPRINT_EPOCH = date(2023, 1, 2)
SPRINT_DAYS = 14
_CACHE_MONTHS = 4096


@dataclass(frozen=True)
class TeamHabits:
    """A team's V2-only habits (see the module docstring)."""

    lttc_shares: tuple[float, ...]  # planning, coding, review, build, deploy; sum 1
    category_weights: tuple[float, ...]  # per BA_CATEGORIES
    commit_share: float
    miss_rate: float
    removal_rate: float
    rework_share: float
    refactor_share: float
    status_weights: tuple[float, float, float]  # In Progress, In Review, QA
    release_days: int


class PRDetail(NamedTuple):
    loc_added: int
    loc_removed: int
    rework_recent: int
    rework_legacy: int
    refactored_recent: int
    refactored_legacy: int
    cycle_days: float


class TicketDetail(NamedTuple):
    points: int
    category: int  # index into BA_CATEGORIES
    committed: bool
    status_days: tuple[float, ...]  # per WORKFLOW_STATUSES
    released: float  # version release time (ordinal days)


@lru_cache(maxsize=4096)
def habits(team: Team) -> TeamHabits:
    """Return the team's V2 habits (cached per team object)."""
    rng = random.Random(f"{team.seed}:{team.ref_id}:v2-habits")
    u = rng.uniform
    stages = [u(1, 3) for _ in range(5)]
    return TeamHabits(
        lttc_shares=tuple(s / sum(stages) for s in stages),
        category_weights=(u(2, 5), u(3, 7), u(0.5, 2), u(0.5, 2.5)),
        commit_share=u(0.6, 0.9),
        miss_rate=u(0.05, 0.35),
        removal_rate=u(0.02, 0.15),
        rework_share=u(0.05, 0.25),
        refactor_share=u(0.02, 0.15),
        status_weights=(u(2, 5), u(1, 3), u(0.5, 2)),
        release_days=rng.choice((7, 14)),
    )


_cache: OrderedDict[tuple[int, int, int], tuple[tuple[PRDetail, ...], tuple[TicketDetail, ...]]]
_cache = OrderedDict()
_cache_lock = threading.Lock()


def month_details(
    team: Team, month: MonthActivity
) -> tuple[tuple[PRDetail, ...], tuple[TicketDetail, ...]]:
    """Return the details of the month's PRs and work items, in :class:`MonthActivity` order."""
    key = (team.seed, team.ref_id, month.first_day)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    found = _generate(team, month)
    with _cache_lock:
        _cache[key] = found
        if len(_cache) > _CACHE_MONTHS:
            _cache.popitem(last=False)
    return found


def _generate(
    team: Team, m: MonthActivity
) -> tuple[tuple[PRDetail, ...], tuple[TicketDetail, ...]]:
    day = date.fromordinal(m.first_day)
    rng = random.Random(f"{team.seed}:{team.ref_id}:{day.year:04d}-{day.month:02d}:v2")
    h, u = habits(team), rng.uniform
    prs = []
    for lines, comments, created, first in zip(
        m.pr_lines, m.pr_comments, m.pr_created, m.pr_first_comment, strict=True
    ):
        removed = round(lines * u(0.1, 0.5))
        r, f, q = u(0, 2 * h.rework_share), u(0, 2 * h.refactor_share), rng.random()
        wait = 0.0 if first != first else first - created  # NaN: no comments
        prs.append(
            PRDetail(
                lines - removed,
                removed,
                round(lines * r * q),
                round(lines * r * (1 - q)),
                round(lines * f * q),
                round(lines * f * (1 - q)),
                wait + 0.25 * comments + lines / 400,
            )
        )
    tickets = []
    for started, completed in zip(m.item_started, m.item_completed, strict=True):
        points = rng.choices(POINTS, _POINT_WEIGHTS)[0]
        category = rng.choices(range(len(BA_CATEGORIES)), h.category_weights)[0]
        committed = rng.random() < h.commit_share
        todo = team.profile.complete_days * u(0.2, 1.5)
        split = [w * u(0.5, 1.5) for w in h.status_weights]
        work = [(completed - started) * s / sum(split) for s in split]
        done = u(0, h.release_days)
        days = (todo, *work, done)
        assert len(days) == len(WORKFLOW_STATUSES)
        tickets.append(TicketDetail(points, category, committed, days, completed + done))
    return tuple(prs), tuple(tickets)


@dataclass(frozen=True)
class Sprint:
    """One sprint of the org-wide calendar."""

    number: int  # 1-based

    @property
    def start(self) -> date:
        return SPRINT_EPOCH + timedelta(days=SPRINT_DAYS * (self.number - 1))

    @property
    def end(self) -> date:
        return self.start + timedelta(days=SPRINT_DAYS - 1)

    @property
    def name(self) -> str:
        return f"Sprint {self.number}"


def sprints_ending_in(first: date, last: date) -> list[Sprint]:
    """Return the sprints whose last day is in ``first .. last``; sprints exist from the epoch to
    the end of the synthetic activity (:data:`~sei_emulator.org.ACTIVITY_END`)."""
    n = max(1, -(-((first - SPRINT_EPOCH).days + 1) // SPRINT_DAYS))  # the first ending >= first
    out = []
    while Sprint(n).end <= min(last, ACTIVITY_END):
        out.append(Sprint(n))
        n += 1
    return out


@dataclass(frozen=True)
class SprintWork:
    """One team's own work in one sprint, in story points or tickets (see the module doc)."""

    delivered_commit: int
    delivered_creep: int
    missed_commit: int
    missed_creep: int
    removed: int
    removed_tickets: int


def sprint_work(org: Org, team: Team, sprint: Sprint, story_points: bool) -> SprintWork:
    """Return the team's own work in ``sprint`` (tickets completed in it, missed, removed)."""
    lo, hi = sprint.start.toordinal(), sprint.end.toordinal() + 1
    commit = creep = n_commit = n_creep = 0
    for month in org.activity(team.ref_id, sprint.start, sprint.end):
        _, tickets = month_details(team, month)
        for completed, t in zip(month.item_completed, tickets, strict=True):
            if lo <= completed < hi:
                unit = t.points if story_points else 1
                if t.committed:
                    commit, n_commit = commit + unit, n_commit + 1
                else:
                    creep, n_creep = creep + unit, n_creep + 1
    rng = random.Random(f"{team.seed}:{team.ref_id}:sprint:{sprint.number}")
    h = habits(team)

    def drawn(n: int, rate: float) -> tuple[int, int]:
        """Work and tickets of the ``Binomial(n, rate)`` tickets drawn (points drawn per hit)."""
        hits = [rng.choices(POINTS, _POINT_WEIGHTS)[0] for _ in range(n) if rng.random() < rate]
        return (sum(hits) if story_points else len(hits)), len(hits)

    missed_commit, _ = drawn(n_commit + 1, h.miss_rate)
    missed_creep, _ = drawn(n_creep + 1, h.miss_rate)
    removed, removed_tickets = drawn(n_commit + n_creep + 1, h.removal_rate)
    return SprintWork(commit, creep, missed_commit, missed_creep, removed, removed_tickets)
