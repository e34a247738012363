"""Build the two CSV reports from a validated request: header, rows, file name.

A team report has one row per team: the requested team and every descendant (pre-order), each
row rolling up its whole subtree. A contributor report has one row per collection: the
requested collection, then for every team of its subtree (pre-order) the team's manager (the
manager's whole subtree), ``"<manager> — Direct Reports"`` (the team's own contributors) and
each contributor. Both are computed in one post-order pass over the subtree that keeps only
small tallies (the duration samples only for a team report), so memory follows the org's size,
not the report's; the contributor rows are then formatted lazily, one by one.

CSV dialect: comma-separated, minimal quoting, ``\\n`` line ends, UTF-8 without BOM, numbers
with two decimals (see :func:`calculations.format_value`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sei_emulator.calculations import (
    Tally,
    format_value,
    has_tiers,
    metric_value,
    rating,
    tally_months,
)
from sei_emulator.catalogue import COLLECTION_NAME_COLUMN
from sei_emulator.org import Org, Team
from sei_emulator.validation import ContributorReportRequest, TeamReportRequest

DIRECT_REPORTS = "{manager} — Direct Reports"


@dataclass
class Report:
    """A report ready to send: ``rows`` is lazy and can be consumed once."""

    filename: str
    header: list[str]
    rows: Iterator[list[str]]
    empty: bool  # no activity at all in the range: the API answers 0 bytes
    streamed: bool = False  # rows are formatted while sending (the length is not known)


def csv_line(fields: list[str]) -> bytes:
    """One CSV record, encoded."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue().encode("utf-8")


def _own_tallies(org: Org, team: Team, req: TeamReportRequest | ContributorReportRequest):
    months = org.activity(team.ref_id, req.window.date_start, req.window.date_end)
    return tally_months(months, req.window, len(team.profile.contributors))


def _filename(kind: str, req: TeamReportRequest | ContributorReportRequest) -> str:
    w = req.window
    return f"{kind}_report_{req.report_id}_{w.date_start}_{w.date_end}_{w.granularity.value}.csv"


def team_report(org: Org, req: TeamReportRequest) -> Report:
    """Return the team report (rows computed eagerly: one per team, small)."""
    metrics = req.productivity + req.efficiency
    header = [COLLECTION_NAME_COLUMN] + [m.column(req.calculation_type) for m in metrics]
    teams = list(org.subtree(req.team_ref_id))
    totals: dict[int, Tally] = {}
    rows: dict[int, list[str]] = {}
    for team in reversed(teams):  # post-order: every child before its parent
        total, _ = _own_tallies(org, team, req)
        for child in team.children:
            total.add(totals.pop(child))  # the child's samples are not needed any more
        totals[team.ref_id] = total
        values = [metric_value(m, total, req.window, req.calculation_type) for m in metrics]
        rows[team.ref_id] = [team.name] + [format_value(v) for v in values]
    empty = totals[req.team_ref_id].empty
    return Report(_filename("team", req), header, iter([rows[t.ref_id] for t in teams]), empty)


def contributor_report(org: Org, req: ContributorReportRequest) -> Report:
    """Return the contributor report (rows formatted lazily from the tallies)."""
    header = [COLLECTION_NAME_COLUMN]
    for m in req.metrics:
        header.append(m.column())
        if req.include_ratings and has_tiers(m):
            header.append(f"{m.display_name} Rating")
    teams = list(org.subtree(req.team_ref_id))
    subtree: dict[int, Tally] = {}
    own: dict[int, tuple[Tally, list[Tally]]] = {}
    for team in reversed(teams):
        team_tally, people = _own_tallies(org, team, req)
        team_tally.lead_times, team_tally.restore_times = [], []  # not contributor metrics
        own[team.ref_id] = (team_tally, people)
        total = Tally()
        total.add(team_tally)
        for child in team.children:
            total.add(subtree[child])
        subtree[team.ref_id] = total

    def row(name: str, tally: Tally) -> list[str]:
        cells = [name]
        for m in req.metrics:
            cells.append(format_value(metric_value(m, tally, req.window)))
            if req.include_ratings and has_tiers(m):
                cells.append(rating(m, tally, req.window))
        return cells

    def rows() -> Iterator[list[str]]:
        root = org.teams[req.team_ref_id]
        yield row(root.name, subtree[root.ref_id])
        for team in teams:
            manager = team.managers[0].name
            team_tally, people = own[team.ref_id]
            yield row(manager, subtree[team.ref_id])
            yield row(DIRECT_REPORTS.format(manager=manager), team_tally)
            for person, tally in zip(team.contributors, people, strict=True):
                yield row(person.name, tally)

    empty = subtree[req.team_ref_id].empty
    return Report(_filename("contributor", req), header, rows(), empty, streamed=True)
