"""Build a V2 export's CSV from a validated request: header, rows, file name.

Every export starts with the business-alignment sample's columns, ``Granularity, Team,
Team_Hierarchy, Start_Date, End_Date``; developer rows (productivity, ``metricLevel:
developer``) add ``Developer`` and sprint rows (sprint and time in status at sprint level)
add ``Sprint_Name`` before ``Start_Date``, and their dates are the sprint's. Then the metric
columns, in catalogue order (time in status: ``Issue_Count`` and one column per asked status).

Rows go period by period (see :func:`.v2_calculations.periods`), then sprint by sprint at
sprint level, then team by team in pre-order (developers: each team's contributors in order).
A ``scope.teamId`` export has that team's rows (developer rows: its whole subtree's people);
an ``orgTreeName`` export has a row for every team of the tree. ``Team_Hierarchy`` is the
path of team names from the tree's root, joined by ``/`` (``Acme Engineering/Payments API``).
Values: see :mod:`.v2_calculations`. Same seed, same request: same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sei_emulator.org import Org, Team
from sei_emulator.reports import csv_line
from sei_emulator.v2_calculations import (
    Cell,
    Period,
    V2Tally,
    ba_cells,
    efficiency_cells,
    format_cell,
    periods,
    productivity_cell,
    sprint_cell,
    sprint_periods,
    sprint_tally,
    status_cell,
    tally_team,
)
from sei_emulator.v2_catalogue import PERIOD_COLUMNS, ExportType, status_column
from sei_emulator.v2_validation import ExportRequest


@dataclass(frozen=True)
class ExportFile:
    """A generated export: its file name (``.csv``), its CSV bytes and its data rows."""

    filename: str
    data: bytes
    rows: int


class _Tally(Protocol):
    def add(self, other: Any) -> None: ...


T = TypeVar("T", bound=_Tally)


def build_export(org: Org, req: ExportRequest) -> ExportFile:
    """Build the whole CSV of ``req`` over ``org``."""
    lines, count = [csv_line(header(req))], 0
    for row in _rows(org, req):
        lines.append(csv_line(row))
        count += 1
    name = f"{req.type.value}_export_{req.date_start}_{req.date_end}_{req.granularity.lower()}.csv"
    return ExportFile(name, b"".join(lines), count)


def header(req: ExportRequest) -> list[str]:
    """Return the CSV header of ``req``."""
    columns = list(PERIOD_COLUMNS)
    if req.level == "developer":
        columns.insert(3, "Developer")
    elif req.level == "sprint":
        columns.insert(3, "Sprint_Name")
    if req.type is ExportType.TICKET_DATA:
        return (
            columns
            + ["Issue_Count"]
            + [status_column(s, req.aggregation) for s in req.issue_statuses]
        )
    return columns + [title for m in req.metrics for title in m.titles(req.aggregation)]


def hierarchy(org: Org, team: Team) -> str:
    """Return the team's path of names from the root: ``Root/Department/Team``."""
    names = [team.name]
    while team.parent_ref_id is not None:
        team = org.teams[team.parent_ref_id]
        names.append(team.name)
    return "/".join(reversed(names))


def roll_up(org: Org, root: int, own: Callable[[Team], T]) -> dict[int, T]:
    """Every team of ``root``'s subtree → its subtree's tally (children added into parents)."""
    totals: dict[int, T] = {}
    for team in reversed(list(org.subtree(root))):
        total = own(team)
        for child in team.children:
            total.add(totals[child])
        totals[team.ref_id] = total
    return totals


def _rows(org: Org, req: ExportRequest) -> Iterator[list[str]]:
    subtree = list(org.subtree(req.root_ref_id))
    row_teams = subtree[:1] if req.team_id is not None else subtree
    for period in periods(req.date_start, req.date_end, req.granularity):
        windows = sprint_periods(period) if req.level == "sprint" else [period]
        for window in windows:
            prefix = _prefix(period, window, req.level == "sprint")
            if req.level == "developer":
                yield from _developer_rows(org, req, subtree, prefix, window)
                continue
            for team, cells in _team_cells(org, req, window, row_teams):
                yield [
                    prefix[0],
                    team.name,
                    hierarchy(org, team),
                    *prefix[1:],
                    *(format_cell(c) for c in cells),
                ]


def _prefix(period: Period, window: Period, sprint: bool) -> list[str]:
    """Return the Granularity label, [the sprint name,] the start and end dates."""
    dates = [window.start.isoformat(), window.end.isoformat()]
    return [period.label, window.label, *dates] if sprint else [period.label, *dates]


def _team_cells(
    org: Org, req: ExportRequest, window: Period, teams: list[Team]
) -> Iterator[tuple[Team, list[Cell]]]:
    if req.type is ExportType.SPRINT:
        points = req.computation_mode == "STORY_POINTS"
        sprints = roll_up(org, req.root_ref_id, lambda t: sprint_tally(org, t, window, points))
        for team in teams:
            yield team, [sprint_cell(m.name, sprints[team.ref_id]) for m in req.metrics]
        return
    release = req.terminal_date_column == "version_release_date"
    totals = roll_up(org, req.root_ref_id, lambda t: tally_team(org, t, window, release)[0])
    for team in teams:
        yield team, _cells(req, totals[team.ref_id], window, developer=False)


def _developer_rows(
    org: Org, req: ExportRequest, teams: list[Team], prefix: list[str], window: Period
) -> Iterator[list[str]]:
    for team in teams:
        path = hierarchy(org, team)
        _, people = tally_team(org, team, window)
        for person, tally in zip(team.contributors, people, strict=True):
            cells = _cells(req, tally, window, developer=True)
            yield [
                prefix[0],
                team.name,
                path,
                person.name,
                *prefix[1:],
                *(format_cell(c) for c in cells),
            ]


def _cells(req: ExportRequest, t: V2Tally, window: Period, developer: bool) -> list[Cell]:
    if req.type is ExportType.TICKET_DATA:
        return [t.issues] + [status_cell(s, t, req.aggregation) for s in req.issue_statuses]
    out: list[Cell] = []
    for m in req.metrics:
        if req.type is ExportType.EFFICIENCY:
            out += efficiency_cells(m.name, t, window, req.aggregation)
        elif req.type is ExportType.BA:
            out += ba_cells(m.name, t)
        else:
            out.append(productivity_cell(m.name, t, developer))
    return out
