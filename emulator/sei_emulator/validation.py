"""Parse and validate the reports endpoint's two request bodies.

One endpoint takes both bodies: a body with ``productivityContributors`` or ``includeRatings``
is a ``ContributorExportRequestDTO``, anything else an ``ExportRequestDTO``; mixing contributor
fields with ``productivity`` / ``efficiency`` is a 400.

The emulator's reading of the page where it leaves room (its curl examples 1-3 omit
``collectionId`` and examples 2-3 omit ``granularity``, yet must work):

- a team is identified by ``teamRefId`` (a JSON integer) or ``collectionId`` (a JSON string):
  either suffices; with both, both must exist and ``teamRefId`` picks the subtree;
- a missing ``granularity`` means ``weekly``; granularity and ``calculationType`` are
  case-insensitive (the contributor example sends ``"WEEKLY"``);
- dates are strictly ``yyyy-MM-dd`` (``2024-1-5`` is a 400) and ``dateStart <= dateEnd``;
- types are strict (no ``"123"`` for ``teamRefId``, no number for ``collectionId``); unknown
  fields are ignored; ``null`` counts as absent;
- metric names are case-insensitive; a missing or empty ``metrics`` list means all of that
  category; a team body with neither ``productivity`` nor ``efficiency`` exports both;
- ``productivityContributors`` is required in a contributor body (the page marks it so).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sei_emulator.calculations import Window
from sei_emulator.catalogue import (
    CATALOGUE,
    CalculationType,
    Category,
    Granularity,
    Metric,
    get_metric,
)
from sei_emulator.org import Org

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CONTRIBUTOR_FIELDS = ("productivityContributors", "includeRatings")
TEAM_FIELDS = ("productivity", "efficiency")


class ApiError(Exception):
    """A request the API refuses: the HTTP status, the JSON body's message and, for a
    refused field or parameter, its name (e.g. ``dateRange.start``)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class TeamReportRequest:
    """A validated ``ExportRequestDTO``."""

    team_ref_id: int  # the subtree's root
    report_id: str  # as the client named it, for the file name
    window: Window
    productivity: tuple[Metric, ...]
    efficiency: tuple[Metric, ...]
    calculation_type: CalculationType


@dataclass(frozen=True)
class ContributorReportRequest:
    """A validated ``ContributorExportRequestDTO``."""

    team_ref_id: int
    report_id: str
    window: Window
    metrics: tuple[Metric, ...]
    include_ratings: bool


def check_format(query: dict[str, str]) -> None:
    """Only ``format=csv`` is supported (any case)."""
    if query.get("format", "").lower() != "csv":
        raise ApiError(400, "Unsupported format: only csv is supported (use ?format=csv)")


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object; raise a 400 :class:`ApiError` if not."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ApiError(400, f"Malformed JSON request body: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def parse_report_request(raw: bytes, org: Org) -> TeamReportRequest | ContributorReportRequest:
    """Validate a reports request body against ``org``; raise :class:`ApiError` if invalid."""
    body = {k: v for k, v in json_object(raw).items() if v is not None}
    contributor = any(k in body for k in CONTRIBUTOR_FIELDS)
    if contributor and any(k in body for k in TEAM_FIELDS):
        raise ApiError(
            400,
            "productivityContributors/includeRatings (a contributor export) cannot be combined "
            "with productivity/efficiency (a team export)",
        )
    window = Window(*_dates(body), _granularity(body))
    request = _contributor_request(body, window) if contributor else _team_request(body, window)
    _check_team(body, org)  # 404s come after every 400
    return request


def _contributor_request(body: dict[str, Any], window: Window) -> ContributorReportRequest:
    team_ref_id, report_id = _team(body)
    config = body.get("productivityContributors")
    if config is None:
        raise ApiError(400, "productivityContributors is required")
    ratings = body.get("includeRatings", False)
    if not isinstance(ratings, bool):
        raise ApiError(400, "includeRatings must be a boolean")
    metrics = _metrics(config, "productivityContributors", Category.CONTRIBUTOR)
    return ContributorReportRequest(team_ref_id, report_id, window, metrics, ratings)


def _team_request(body: dict[str, Any], window: Window) -> TeamReportRequest:
    team_ref_id, report_id = _team(body)
    productivity, efficiency = body.get("productivity"), body.get("efficiency")
    if productivity is None and efficiency is None:
        productivity = efficiency = {}
    calc = CalculationType.MEAN
    if isinstance(efficiency, dict) and efficiency.get("calculationType") is not None:
        calc = _calculation_type(efficiency["calculationType"])
    return TeamReportRequest(
        team_ref_id,
        report_id,
        window,
        _metrics(productivity, "productivity", Category.PRODUCTIVITY)
        if productivity is not None
        else (),
        _metrics(efficiency, "efficiency", Category.EFFICIENCY) if efficiency is not None else (),
        calc,
    )


def _team(body: dict[str, Any]) -> tuple[int, str]:
    """Return the subtree's root ref id and the id the client used (for the file name)."""
    ref_id, collection = body.get("teamRefId"), body.get("collectionId")
    if ref_id is None and collection is None:
        raise ApiError(400, "collectionId is required (or teamRefId)")
    if ref_id is not None and (not isinstance(ref_id, int) or isinstance(ref_id, bool)):
        raise ApiError(400, "teamRefId must be an integer")
    if collection is not None and not isinstance(collection, str):
        raise ApiError(400, "collectionId must be a string")
    if ref_id is not None:
        return ref_id, str(ref_id)
    assert isinstance(collection, str)
    return (int(collection) if collection.isdigit() else -1), collection


def _check_team(body: dict[str, Any], org: Org) -> None:
    collection, ref_id = body.get("collectionId"), body.get("teamRefId")
    if collection is not None and (not collection.isdigit() or not org.team(int(collection))):
        raise ApiError(404, f"Collection not found: collectionId {collection!r}")
    if ref_id is not None and org.team(ref_id) is None:
        raise ApiError(404, f"Team not found: teamRefId {ref_id}")


def _dates(body: dict[str, Any]) -> tuple[date, date]:
    parsed = []
    for name in ("dateStart", "dateEnd"):
        value = body.get(name)
        if value is None:
            raise ApiError(400, f"{name} is required")
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ApiError(400, f"{name} must be a date in yyyy-MM-dd format, got {value!r}")
        try:
            parsed.append(date.fromisoformat(value))
        except ValueError:
            raise ApiError(400, f"{name} is not a valid date: {value!r}") from None
    if parsed[0] > parsed[1]:
        raise ApiError(400, "dateStart must be on or before dateEnd")
    return parsed[0], parsed[1]


def _granularity(body: dict[str, Any]) -> Granularity:
    value = body.get("granularity", Granularity.WEEKLY.value)
    try:
        return Granularity(value.lower() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(g.value for g in Granularity)
        raise ApiError(400, f"granularity must be one of {allowed}, got {value!r}") from None


def _calculation_type(value: Any) -> CalculationType:
    try:
        return CalculationType(value.upper() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(c.value for c in CalculationType)
        raise ApiError(
            400, f"efficiency.calculationType must be one of {allowed}, got {value!r}"
        ) from None


def _metrics(config: Any, field: str, category: Category) -> tuple[Metric, ...]:
    if not isinstance(config, dict):
        raise ApiError(400, f"{field} must be an object")
    names = config.get("metrics", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, f"{field}.metrics must be a list of metric names")
    if not names:
        return CATALOGUE[category]
    wanted = set()
    for name in names:
        metric = get_metric(category, name)
        if metric is None:
            other = [c.value for c in Category if c is not category and get_metric(c, name)]
            where = f" (it is a {other[0]} metric)" if other else ""
            raise ApiError(400, f"Unknown {field} metric: {name!r}{where}")
        wanted.add(metric.name)
    return tuple(m for m in CATALOGUE[category] if m.name in wanted)
