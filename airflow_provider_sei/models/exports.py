"""The V2 export job's request body (``POST /v2/insights/{type}/exports``) as a typed model.

``ExportJobRequest.build()`` takes loose input (templates render everything to strings) and
either returns a canonical request or raises ``SEIInvalidRequestError`` naming the field, the
value and what the export type allows. Where Harness's pages disagree, it accepts every
documented form and sends the type's own spelling (``WEEKLY`` for efficiency, ``weekly`` for
productivity; ``ba`` and ``ticket-data`` as names of their types).
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.metrics import (
    EXPORT_TYPES,
    ExportType,
    ExportTypeSpec,
    export_type,
)
from airflow_provider_sei.models._parse import (
    is_nullish,
    one_of,
    parse_choice,
    parse_date,
    parse_list,
)

_EXPORT_TYPE_NAMES = ", ".join([t.value for t in ExportType] + ["ba", "ticket-data"])


def parse_export_type(value: Any) -> ExportType:
    """Parse an ``ExportType`` from its name or its API segment, in any case."""
    if isinstance(value, ExportType):
        return value
    kind = export_type(value) if isinstance(value, str) else None
    if kind is None:
        raise SEIInvalidRequestError("export_type", value, f"one of {_EXPORT_TYPE_NAMES}")
    return kind


@dataclass(frozen=True)
class ExportJobRequest:
    """One V2 export job's request.

    Use ``build()`` for loose input. ``metric_groups`` and ``metrics`` empty mean all.
    """

    export_type: ExportType
    date_start: date
    date_end: date
    granularity: str
    team_id: str | None = None
    org_tree_name: str | None = None
    metric_groups: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    aggregation: str | None = None
    metric_level: str | None = None
    issue_statuses: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    compression: str | None = None

    @property
    def spec(self) -> ExportTypeSpec:
        return EXPORT_TYPES[self.export_type]

    @property
    def segment(self) -> str:
        """The type's path segment: ``/v2/insights/{segment}/exports``."""
        return self.spec.segment

    @classmethod
    def build(
        cls,
        *,
        export_type: Any,
        date_start: Any,
        date_end: Any,
        granularity: Any,
        team_id: Any = None,
        org_tree_name: Any = None,
        metric_groups: Any = None,
        metrics: Any = None,
        aggregation: Any = None,
        metric_level: Any = None,
        issue_statuses: Any = None,
        options: Any = None,
        compression: Any = None,
    ) -> ExportJobRequest:
        """Validate loose input against what ``export_type``'s page documents."""
        kind = parse_export_type(export_type)
        spec = EXPORT_TYPES[kind]
        team = _text("team_id", team_id)
        tree = _text("org_tree_name", org_tree_name)
        if team is None and tree is None:
            raise SEIInvalidRequestError(
                "team_id/org_tree_name", None, "a team_id, an org_tree_name, or both"
            )
        start, end = parse_date("date_start", date_start), parse_date("date_end", date_end)
        if start > end:
            raise SEIInvalidRequestError(
                "date_start", start.isoformat(), f"a date on or before date_end ({end})"
            )
        level = _option("metric_level", metric_level, spec.metric_levels, kind)
        return cls(
            export_type=kind,
            date_start=start,
            date_end=end,
            granularity=parse_choice("granularity", granularity, spec.granularities),
            team_id=team,
            org_tree_name=tree,
            metric_groups=_groups(spec, metric_groups),
            metrics=_metrics(spec, metrics, level),
            aggregation=_option("aggregation", aggregation, spec.aggregations, kind),
            metric_level=level,
            issue_statuses=_statuses(kind, issue_statuses),
            options=_options(spec, options),
            compression=None
            if is_nullish(compression)
            else parse_choice("compression", compression, ("gzip",)),
        )

    def to_json(self, *, org_identifier: str, project_identifier: str) -> dict[str, Any]:
        """Return the request body, as the V2 pages spell it."""
        scope: dict[str, Any] = {}
        if self.team_id is not None:
            scope["teamId"] = self.team_id
        if self.org_tree_name is not None:
            scope["orgTreeName"] = self.org_tree_name
        scope |= {"orgIdentifier": org_identifier, "projectIdentifier": project_identifier}
        options: dict[str, Any] = {"granularity": self.granularity, "format": "csv"}
        if self.aggregation is not None:
            options["aggregation"] = self.aggregation
        if self.metric_level is not None:
            options["metricLevel"] = self.metric_level
        if self.compression is not None:
            options["compression"] = self.compression
        options |= dict(self.options)
        body: dict[str, Any] = {
            "scope": scope,
            "dateRange": {"start": self.date_start.isoformat(), "end": self.date_end.isoformat()},
            "options": options,
        }
        if self.metric_groups:
            body["metricGroups"] = list(self.metric_groups)
        if self.metrics:
            body["metrics"] = list(self.metrics)
        if self.issue_statuses:
            body["issueStatuses"] = list(self.issue_statuses)
        return body


def _text(name: str, value: Any) -> str | None:
    if is_nullish(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise SEIInvalidRequestError(name, value, "a string")
    return value.strip()


def _groups(spec: ExportTypeSpec, value: Any) -> tuple[str, ...]:
    known = {g.lower(): g for g in spec.metric_groups} | {
        alias.lower(): group for alias, group in spec.group_aliases.items()
    }
    groups = []
    for item in parse_list("metric_groups", value, what="metric groups"):
        group = known.get(item.strip().lower()) if isinstance(item, str) else None
        if group is None:
            allowed = (
                one_of(spec.metric_groups)
                if spec.metric_groups
                else "none (this type has no metric groups)"
            )
            raise SEIInvalidRequestError("metric_groups", item, allowed)
        groups.append(group)
    return tuple(dict.fromkeys(groups))


def _metrics(spec: ExportTypeSpec, value: Any, level: str | None) -> tuple[str, ...]:
    known = spec.metrics()
    if level is not None:  # what the pages document at that level; else the server decides
        known = tuple(m for m in known if level in spec.level_only.get(m, (level,)))
    names = []
    for item in parse_list("metrics", value, what="metric names"):
        name = item.strip().upper() if isinstance(item, str) else None
        if name not in known:
            allowed = one_of(known) if known else "none: this type has no metric names"
            if level is not None and name in spec.level_only:
                allowed = f"metrics that exist at metric_level {level!r}: {allowed}"
            raise SEIInvalidRequestError("metrics", item, allowed)
        names.append(name)
    return tuple(dict.fromkeys(names))


def _option(name: str, value: Any, allowed: tuple[str, ...], kind: ExportType) -> str | None:
    if is_nullish(value):
        return None
    if not allowed:
        hint = ""
        if name == "metric_level" and "aggregationLevel" in EXPORT_TYPES[kind].options:
            hint = "; set options={'aggregationLevel': ...} instead"
        raise SEIInvalidRequestError(
            name, value, f"nothing: {kind.value} exports take no {name}{hint}"
        )
    return parse_choice(name, value, allowed)


def _statuses(kind: ExportType, value: Any) -> tuple[str, ...]:
    statuses = parse_list("issue_statuses", value, what="workflow statuses")
    if statuses and kind is not ExportType.TIME_IN_STATUS:
        raise SEIInvalidRequestError(
            "issue_statuses", value, "nothing: only time_in_status exports take issue_statuses"
        )
    if not all(isinstance(s, str) and s.strip() for s in statuses):
        raise SEIInvalidRequestError(
            "issue_statuses", value, 'workflow status names, e.g. "In Progress"'
        )
    return tuple(s.strip() for s in statuses)


#: ``options`` keys set by the request's own fields: merged, they would bypass validation.
OWN_OPTIONS = ("granularity", "aggregation", "metricLevel", "compression", "format")


def _options(spec: ExportTypeSpec, value: Any) -> dict[str, Any]:
    """Parse the extra ``options``: documented keys checked (any case, sent as the page spells
    them), the operator's own keys refused, any other key sent as given."""
    if is_nullish(value):
        return {}
    if isinstance(value, str):  # a dict Jinja rendered to a string
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(value.strip())
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SEIInvalidRequestError(
            "options", value, 'a dict such as {"computationMode": "STORY_POINTS"}'
        )
    options = {}
    own = {key.lower() for key in OWN_OPTIONS}
    documented = {key.lower(): key for key in spec.options}
    for key, item in value.items():
        if key.strip().lower() in own:
            raise SEIInvalidRequestError(
                "options",
                key,
                f"keys other than {', '.join(OWN_OPTIONS)} (the parameters granularity, "
                "aggregation, metric_level and compression set them; the format is csv)",
            )
        name = documented.get(key.strip().lower())
        if name is not None:
            options[name] = parse_choice(f"options.{name}", item, spec.options[name])
            continue
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError):
            raise SEIInvalidRequestError(
                f"options.{key}", item, "a JSON value: a string, number, bool, list or dict"
            ) from None
        options[key] = item
    return options


#: Job statuses, upper case (the productivity page spells them in lower case).
QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED = (
    "QUEUED",
    "PROCESSING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
_REUSED = "using existing export"


@dataclass(frozen=True)
class ExportJob:
    """A V2 export job, as the create and status calls describe it (both documented shapes).

    :param export_id: the job's id.
    :param export_type: the type it exports.
    :param status: upper case; None when the answer had none (a reused job's create answer).
    :param reused: the create call returned an identical job of the last 30 minutes.
    :param download_url: where the CSV is, as the server gave it (usually a path relative to
        the base URL); None until the job completed.
    :param filename: the download's file name, when the status names one.
    :param compression: ``gzip`` when the status says the download is compressed.
    :param size_bytes: the download's size, when the status says it.
    :param message: the server's message (a failed job's reason), redacted by the hook.
    """

    export_id: str
    export_type: ExportType
    status: str | None = None
    reused: bool = False
    created_at: str | None = None
    completed_at: str | None = None
    download_url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    compression: str | None = None
    size_bytes: int | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_json(cls, body: Any, export_type: ExportType, *, reused: bool = False) -> ExportJob:
        """Read a create or status answer: ``downloadUrl`` or ``download{url, filename, ...}``.

        Raises ``ValueError`` when it has no ``exportId``.
        """
        export_id = body.get("exportId") if isinstance(body, Mapping) else None
        if isinstance(export_id, int) and not isinstance(export_id, bool):
            export_id = str(export_id)
        if not _str(export_id):
            raise ValueError("the answer has no exportId")
        download = body.get("download") if isinstance(body.get("download"), Mapping) else {}
        status = _str(body.get("status"))
        message = _str(body.get("message")) or _str(body.get("error")) or ""
        size = download.get("sizeBytes")
        return cls(
            export_id=str(export_id).strip(),
            export_type=export_type,
            status=status.strip().upper() if status else None,
            reused=reused or message.lower().startswith(_REUSED),
            created_at=_str(body.get("createdAt")),
            completed_at=_str(body.get("completedAt")),
            download_url=_str(download.get("url")) or _str(body.get("downloadUrl")),
            filename=_str(download.get("filename")),
            content_type=_str(download.get("contentType")),
            compression=_str(download.get("compression")),
            size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
            message=message,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values only: what a trigger event or an XCom can carry."""
        return {
            "export_id": self.export_id,
            "export_type": self.export_type.value,
            "status": self.status,
            "reused": self.reused,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "download_url": self.download_url,
            "filename": self.filename,
            "content_type": self.content_type,
            "compression": self.compression,
            "size_bytes": self.size_bytes,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportJob:
        """Rebuild the job :meth:`to_dict` gave (keys it does not know, from another version,
        ignored)."""
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["export_type"] = ExportType(values["export_type"])
        return cls(**values)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
