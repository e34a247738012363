"""Parse and validate a V2 export job's request body (``POST /v2/insights/{type}/exports``).

Every refusal is an :class:`~sei_emulator.validation.ApiError` naming the field
(``dateRange.start``, ``options.granularity``...); every 400 comes before any 404. The
emulator's reading of the pages where they leave room or disagree (accept every documented
form):

- ``scope`` needs ``teamId`` (a JSON string) or ``orgTreeName``; both together are accepted
  (the productivity example sends both) and then mean that one team. ``orgTreeName`` alone is
  the whole tree: a row for every team. A ``teamId`` or tree name the org lacks is a 404.
  ``scope.orgIdentifier`` / ``scope.projectIdentifier`` are accepted and ignored;
- ``dateRange.start`` and ``.end`` are required, strictly ``yyyy-MM-dd``, ``start <= end``;
- ``options.granularity`` is required and checked against the type's page, in any case;
  ``options.aggregation`` defaults to ``mean``; ``options.metricLevel`` (or the older
  ``options.aggregationLevel``) defaults to ``team``; ``options.format`` must be ``csv``;
  ``options.compression`` is ``gzip`` or ``none``; ``options.computationMode`` defaults to
  ``STORY_POINTS``; ``options.terminalDateColumn`` to ``issue_resolved_at``. Values are
  case-insensitive; unknown fields are ignored; ``null`` counts as absent;
- ``metricGroups`` and ``metrics`` (or ``metric``, the sprint example's spelling) are
  case-insensitive lists; their metrics add up; both empty or missing means every metric of
  the level. A group brings its metrics that exist at the level; a metric named outright at a
  level where it does not exist is a 400. Columns follow the catalogue's order;
- ``issueStatuses`` (time in status) defaults to the whole workflow; a status outside it is
  accepted (its column has no data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sei_emulator.org import Org
from sei_emulator.v2_catalogue import (
    AGGREGATIONS,
    COMPRESSIONS,
    COMPUTATION_MODES,
    FORMATS,
    SPECS,
    TERMINAL_DATE_COLUMNS,
    WORKFLOW_STATUSES,
    ExportType,
    ExportTypeSpec,
    V2Metric,
)
from sei_emulator.validation import ApiError, json_object

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ExportRequest:
    """A validated V2 export request.

    :param team_id: ``scope.teamId`` as sent (None: the whole tree).
    :param root_ref_id: the team whose subtree the export covers.
    :param level: ``team``, ``developer`` or ``sprint``; None for types without levels.
    :param compression: ``gzip`` when the request asked for it, else None.
    """

    type: ExportType
    team_id: str | None
    root_ref_id: int
    date_start: date
    date_end: date
    granularity: str
    aggregation: str
    level: str | None
    metrics: tuple[V2Metric, ...]
    issue_statuses: tuple[str, ...]
    computation_mode: str
    terminal_date_column: str
    compression: str | None


def parse_export_request(
    export_type: ExportType, raw: bytes, org: Org
) -> tuple[ExportRequest, dict[str, Any]]:
    """Validate a create body against ``org``: the request and the parsed JSON body."""
    body = json_object(raw)
    spec = SPECS[export_type]
    scope = _object(body, "scope", "scope")
    team_id = _string(scope, "teamId", "scope.teamId")
    tree_name = _string(scope, "orgTreeName", "scope.orgTreeName")
    if team_id is None and tree_name is None:
        raise ApiError(400, "scope.teamId or scope.orgTreeName is required", "scope")
    dates = _object(body, "dateRange", "dateRange")
    start, end = _date(dates, "start"), _date(dates, "end")
    if start > end:
        raise ApiError(400, "dateRange.start must be on or before dateRange.end", "dateRange.start")
    options = _object(body, "options", "options")
    granularity = _choice(options, "granularity", spec.granularities, required=True).upper()
    aggregation = _choice(options, "aggregation", AGGREGATIONS).lower() or "mean"
    level = _level(options, spec)
    _choice(options, "format", FORMATS)
    compression = _compression(options)
    mode = _choice(options, "computationMode", COMPUTATION_MODES).upper() or "STORY_POINTS"
    terminal = _choice(options, "terminalDateColumn", TERMINAL_DATE_COLUMNS).lower()
    metrics = _metrics(body, spec, level)
    statuses = _statuses(body) if export_type is ExportType.TICKET_DATA else ()
    root = _root(org, team_id, tree_name)  # 404s come after every 400
    request = ExportRequest(
        export_type,
        team_id,
        root,
        start,
        end,
        granularity,
        aggregation,
        level,
        metrics,
        statuses,
        mode,
        terminal or "issue_resolved_at",
        compression,
    )
    return request, body


def _object(obj: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        raise ApiError(400, f"{field} is required", field)
    if not isinstance(value, dict):
        raise ApiError(400, f"{field} must be an object", field)
    return value


def _string(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ApiError(400, f"{field} must be a non-empty string, got {value!r}", field)
    return value


def _date(dates: dict[str, Any], key: str) -> date:
    field = f"dateRange.{key}"
    value = dates.get(key)
    if value is None:
        raise ApiError(400, f"{field} is required", field)
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ApiError(400, f"{field} must be a date in yyyy-MM-dd format, got {value!r}", field)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{field} is not a valid date: {value!r}", field) from None


def _choice(
    options: dict[str, Any], key: str, allowed: tuple[str, ...], required: bool = False
) -> str:
    """``options[key]`` if it is one of ``allowed`` (any case); "" when absent."""
    field = f"options.{key}"
    value = options.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"{field} is required", field)
        return ""
    if not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}:
        raise ApiError(400, f"{field} must be one of {', '.join(allowed)}, got {value!r}", field)
    return value


def _level(options: dict[str, Any], spec: ExportTypeSpec) -> str | None:
    if not spec.levels:
        return None
    key = "metricLevel" if options.get("metricLevel") is not None else "aggregationLevel"
    return _choice(options, key, spec.levels).lower() or spec.levels[0]


def _compression(options: dict[str, Any]) -> str | None:
    value = _choice(options, "compression", COMPRESSIONS).lower()
    return "gzip" if value == "gzip" else None


def _names(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise ApiError(400, f"{key} must be a list of names", key)
    return value


def _metrics(body: dict[str, Any], spec: ExportTypeSpec, level: str | None) -> tuple[V2Metric, ...]:
    if not spec.metrics:
        return ()
    groups, wanted = spec.groups, set[str]()
    for name in _names(body, "metricGroups"):
        members = groups.get(name.strip().lower())
        if members is None:
            known = ", ".join(sorted({m.group for m in spec.metrics}))
            raise ApiError(
                400,
                f"metricGroups: unknown group {name!r} for a "
                f"{spec.type.value} export (known: {known})",
                "metricGroups",
            )
        wanted.update(m.name for m in spec.metrics if m.name in members and m.at(level))
    for key in ("metrics", "metric"):
        for name in _names(body, key):
            metric = spec.metric(name)
            if metric is None:
                raise ApiError(400, f"{key}: unknown {spec.type.value} metric {name!r}", key)
            if not metric.at(level):
                only = ", ".join(sorted(metric.levels))
                raise ApiError(
                    400,
                    f"{key}: {metric.name} is not available at metricLevel {level} (only {only})",
                    key,
                )
            wanted.add(metric.name)
    asked = any(_names(body, k) for k in ("metricGroups", "metrics", "metric"))
    chosen = tuple(m for m in spec.metrics if m.at(level) and (not asked or m.name in wanted))
    if not chosen:
        raise ApiError(
            400,
            f"metricGroups: none of the request's metrics exists at metricLevel {level}",
            "metricGroups",
        )
    return chosen


def _statuses(body: dict[str, Any]) -> tuple[str, ...]:
    names = _names(body, "issueStatuses")
    if any(not n.strip() for n in names):
        raise ApiError(400, "issueStatuses must not contain empty names", "issueStatuses")
    canonical = {s.lower(): s for s in WORKFLOW_STATUSES}
    out = [canonical.get(n.strip().lower(), n.strip()) for n in names] or list(WORKFLOW_STATUSES)
    return tuple(dict.fromkeys(out))


def _root(org: Org, team_id: str | None, tree_name: str | None) -> int:
    """Return the subtree's root; checked last, so that every 400 comes before a 404."""
    if tree_name is not None:
        tree = next((t for t in org.trees if t.name.lower() == tree_name.strip().lower()), None)
        if tree is None:
            raise ApiError(404, f"Org tree not found: {tree_name!r}", "scope.orgTreeName")
        root = tree.root_team_ref_id
    if team_id is None:
        return root
    ref = int(team_id) if team_id.strip().isdigit() else None
    if ref is None or org.team(ref) is None:
        raise ApiError(404, f"Team not found: teamId {team_id!r}", "scope.teamId")
    return ref
