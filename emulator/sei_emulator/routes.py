"""The emulator's endpoints: which paths exist, which methods they take, what they answer.

=========  ==================================  ==========================================
method     path                                answer
=========  ==================================  ==========================================
POST       /v2/insights/teams/reports          a team or contributor CSV (``?format=csv``)
GET        /v2/org-trees                       ``[{"id", "name", "rootTeamRefId"}]``
GET        /v2/org-trees/{id}                  ``{"id", "name", "rootTeamRefId"}``
GET        /v2/org-trees/{id}/teams            ``[{"refId", "name", "parentRefId"}]``
POST, GET  /v2/insights/{type}/exports         create a V2 export job; list jobs
GET        /v2/insights/{type}/exports/{id}    a job's status (``.../download``: its file)
=========  ==================================  ==========================================

The V2 export endpoints are :mod:`.v2_responses`'; they belong to the ``v2`` API (other
accepted key headers, the platform's error shape), the others to the ``legacy`` one.

Paths are matched without a trailing slash; an unknown path is a 404, a known path with
another method a 405. Authentication and faults are the HTTP layer's business (:mod:`.server`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sei_emulator import v2_responses
from sei_emulator.compression import GzipCache, accepts_gzip, content_encoded
from sei_emulator.org import Org, OrgTree
from sei_emulator.reports import contributor_report, team_report
from sei_emulator.responses import (
    Response,
    csv_response,
    error_response,
    json_response,
    platform_error_response,
)
from sei_emulator.v2_jobs import JobStore
from sei_emulator.validation import (
    ApiError,
    TeamReportRequest,
    check_format,
    parse_report_request,
)


@dataclass(frozen=True)
class Call:
    """One routed request, as an endpoint sees it.

    :param accept_encoding: the request's ``Accept-Encoding`` header.
    :param jobs: the V2 export jobs.
    :param gzip_reports: honour ``Accept-Encoding: gzip`` on the reports endpoint.
    :param gzip_cache: where compressed large reports are kept.
    """

    org: Org
    query: dict[str, str]
    body: bytes
    params: dict[str, str]
    report_bytes: int | None = None
    accept_encoding: str = ""
    jobs: JobStore | None = None
    gzip_reports: bool = False
    gzip_cache: GzipCache | None = None


Endpoint = Callable[[Call], Response]


def reports(call: Call) -> Response:
    """``POST /v2/insights/teams/reports?format=csv``: both export bodies."""
    check_format(call.query)
    request = parse_report_request(call.body, call.org)
    if isinstance(request, TeamReportRequest):
        report = team_report(call.org, request)
    else:
        report = contributor_report(call.org, request)
    response = csv_response(report, call.report_bytes)
    if not (call.gzip_reports and accepts_gzip(call.accept_encoding)):
        return response
    if call.report_bytes is None:
        return content_encoded(response)
    return content_encoded(response, call.gzip_cache, (call.body, call.report_bytes))


def _tree(call: Call) -> OrgTree:
    tree_id = call.params["tree_id"]
    tree = call.org.tree(int(tree_id)) if tree_id.isdigit() else None
    if tree is None:
        raise ApiError(404, f"Org tree not found: {tree_id}")
    return tree


def _tree_json(tree: OrgTree) -> dict[str, object]:
    return {"id": tree.id, "name": tree.name, "rootTeamRefId": tree.root_team_ref_id}


def org_trees(call: Call) -> Response:
    """``GET /v2/org-trees``."""
    return json_response(200, [_tree_json(t) for t in call.org.trees])


def org_tree(call: Call) -> Response:
    """``GET /v2/org-trees/{id}``."""
    return json_response(200, _tree_json(_tree(call)))


def org_tree_teams(call: Call) -> Response:
    """``GET /v2/org-trees/{id}/teams``: every team of the tree, pre-order."""
    teams = call.org.subtree(_tree(call).root_team_ref_id)
    return json_response(
        200, [{"refId": t.ref_id, "name": t.name, "parentRefId": t.parent_ref_id} for t in teams]
    )


_TYPES = "efficiency|productivity|sprint|ba|ticket-data"
_V2 = rf"/v2/insights/(?P<type>{_TYPES}|sprints)/exports"
LEGACY, V2 = "legacy", "v2"


class Route(NamedTuple):
    """A matched path: the methods it takes, its path parameters and its API (``legacy`` or
    ``v2``)."""

    methods: dict[str, Endpoint]
    params: dict[str, str]
    api: str


ROUTES: tuple[tuple[re.Pattern[str], dict[str, Endpoint], str], ...] = (
    (re.compile(r"/v2/insights/teams/reports"), {"POST": reports}, LEGACY),
    (re.compile(r"/v2/org-trees"), {"GET": org_trees}, LEGACY),
    (re.compile(r"/v2/org-trees/(?P<tree_id>[^/]+)"), {"GET": org_tree}, LEGACY),
    (re.compile(r"/v2/org-trees/(?P<tree_id>[^/]+)/teams"), {"GET": org_tree_teams}, LEGACY),
    # Jobs are created at the singular path only; the plural is the sprint page's poll path.
    (
        re.compile(rf"/v2/insights/(?P<type>{_TYPES})/exports"),
        {"POST": v2_responses.create_export, "GET": v2_responses.list_exports},
        V2,
    ),
    (re.compile(r"/v2/insights/(?P<type>sprints)/exports"), {"GET": v2_responses.list_exports}, V2),
    (re.compile(_V2 + r"/(?P<export_id>[^/]+)"), {"GET": v2_responses.export_status}, V2),
    (
        re.compile(_V2 + r"/(?P<export_id>[^/]+)/download"),
        {"GET": v2_responses.download_export},
        V2,
    ),
)


def match(path: str) -> Route | None:
    """Return the methods a path takes, its path parameters and API, or None for an unknown path."""
    path = path.rstrip("/") or "/"
    for pattern, methods, api in ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return Route(methods, found.groupdict(), api)
    return None


def error(
    api: str,
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Return an error in ``api``'s shape: the legacy ``{"status": "error", "message"}`` or the
    platform's (V2)."""
    if api == V2:
        return platform_error_response(status, message, field, headers)
    return error_response(status, message, headers)


def call_endpoint(endpoint: Endpoint, call: Call, api: str = LEGACY) -> Response:
    """Run ``endpoint``; an :class:`ApiError` becomes its JSON error response."""
    try:
        return endpoint(call)
    except ApiError as err:
        return error(api, err.status, err.message, err.field)
