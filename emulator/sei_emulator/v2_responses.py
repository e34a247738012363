"""The V2 export endpoints' HTTP layer: parse, validate, call the job store, format.

==========  ==================================================  ===============================
method      path (``{type}``: efficiency, productivity, ...)    answer
==========  ==================================================  ===============================
POST        /v2/insights/{type}/exports                         202 a new job, 200 a reused one
GET         /v2/insights/{type}/exports                         the type's jobs, newest first
GET         /v2/insights/{type}/exports/{exportId}              the job's status (a poll)
GET         /v2/insights/{type}/exports/{exportId}/download     the file (200), 409 if not done
==========  ==================================================  ===============================

Sprint jobs are created at ``/sprint/exports``; their status and download are served at both
``/sprint/`` and ``/sprints/`` (the sprint page's poll path), and their status's download URL
uses the plural unless ``V2Settings.plural_sprint_url`` is off. Every request needs the
``projectIdentifier`` and ``orgIdentifier`` query parameters (400 naming the missing one).

The list's shape is undocumented; the emulator answers
``{"exports": [status, ...], "page", "limit", "total"}`` (``limit`` 1-100, default 20;
``page`` 0-based; ``status`` any case; ``teamId`` the jobs' ``scope.teamId``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sei_emulator.compression import accepts_gzip
from sei_emulator.responses import BytesBody, Response, json_response
from sei_emulator.v2_catalogue import (
    SEGMENTS,
    SPECS,
    CreateShape,
    ExportType,
    StatusCase,
    StatusShape,
)
from sei_emulator.v2_jobs import ExportJob, JobStatus, JobStore
from sei_emulator.v2_validation import parse_export_request
from sei_emulator.validation import ApiError

if TYPE_CHECKING:
    from sei_emulator.routes import Call

CREATED = "Export job created successfully"
REUSED = "Using existing export with identical parameters"
CREATED_BY = "sei-emulator"
IDENTIFIERS = ("projectIdentifier", "orgIdentifier")
LIST_LIMIT, MAX_LIST_LIMIT = 20, 100


def _store(call: Call) -> JobStore:
    assert call.jobs is not None
    if call.jobs.settings.require_identifiers:
        for name in IDENTIFIERS:
            if not call.query.get(name, "").strip():
                raise ApiError(400, f"Missing required query parameter: {name}", name)
    return call.jobs


def _type(call: Call) -> ExportType:
    return SEGMENTS[call.params["type"]]


def _status(store: JobStore, export_type: ExportType, status: JobStatus) -> str:
    case = store.settings.status_case or SPECS[export_type].status_case
    return status.value.lower() if case is StatusCase.LOWER else status.value


def create_export(call: Call) -> Response:
    """``POST /v2/insights/{type}/exports``."""
    store, export_type = _store(call), _type(call)
    request, body = parse_export_request(export_type, call.body, call.org)
    job, reused = store.create(request, body, call.query)
    if reused:
        return json_response(
            200, {"exportId": job.export_id, "createdAt": job.created_iso, "message": REUSED}
        )
    shape = store.settings.create_shape or SPECS[export_type].create_shape
    answer: dict[str, Any] = {"exportId": job.export_id}
    if shape is not CreateShape.NO_STATUS:
        answer["status"] = _status(store, export_type, JobStatus.QUEUED)
    answer.update(createdAt=job.created_iso, message=CREATED)
    if shape is CreateShape.METADATA:
        answer.update(createdBy=CREATED_BY, metadata=body)
    return json_response(202, answer)


def status_body(store: JobStore, job: ExportJob) -> dict[str, Any]:
    """Return a job's status as the settings (or its type's page) shape it."""
    spec = SPECS[job.type]
    body: dict[str, Any] = {
        "exportId": job.export_id,
        "status": _status(store, job.type, job.status),
        "createdAt": job.created_iso,
    }
    if job.status.terminal:
        body["completedAt"] = job.completed_iso
    if job.status is JobStatus.FAILED:
        body[job.fault.message_field] = job.fault.message
    if job.status is not JobStatus.COMPLETED:
        return body
    plural = job.type is ExportType.SPRINT and store.settings.plural_sprint_url
    url = f"/v2/insights/{spec.segment if plural else job.type.value}/exports/{job.export_id}"
    url += "/download"
    shape = store.settings.status_shape or spec.status_shape
    if shape is StatusShape.DOWNLOAD_URL:
        body["downloadUrl"] = url
        return body
    payload = store.payload(job)
    download: dict[str, Any] = {
        "url": url,
        "filename": payload.filename,
        "contentType": payload.content_type,
    }
    if shape is StatusShape.DOWNLOAD_SIZED:
        download["sizeBytes"] = len(payload.data)
        download["compression"] = "gzip" if payload.gzip_file else "none"
    body["download"] = download
    return body


def export_status(call: Call) -> Response:
    """``GET /v2/insights/{type}/exports/{exportId}``: a poll."""
    store = _store(call)
    job = store.find(_type(call), call.params["export_id"], polled=True)
    return json_response(200, status_body(store, job))


def download_export(call: Call) -> Response:
    """``GET /v2/insights/{type}/exports/{exportId}/download``: the file."""
    store = _store(call)
    job = store.find(_type(call), call.params["export_id"])
    if job.status is not JobStatus.COMPLETED:
        state = _status(store, job.type, job.status)
        raise ApiError(409, f"Export {job.export_id} is not completed (status {state})")
    payload = store.payload(job)
    encode = store.settings.content_encoding and accepts_gzip(call.accept_encoding)
    filename = payload.filename
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if encode:
        body, content_type = payload.gzipped, "text/csv; charset=utf-8"
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    elif payload.gzip_file:
        body, content_type = payload.gzipped, payload.content_type
    else:
        body, content_type = payload.export.data, "text/csv; charset=utf-8"
    fault = store.take_download(job)
    return Response(200, BytesBody(body), content_type, headers, body_fault=fault)


def list_exports(call: Call) -> Response:
    """``GET /v2/insights/{type}/exports?status=&teamId=&limit=&page=``."""
    store = _store(call)
    limit = _int_param(call, "limit", LIST_LIMIT, 1, MAX_LIST_LIMIT)
    page = _int_param(call, "page", 0, 0, None)
    status = None
    if call.query.get("status"):
        try:
            status = JobStatus(call.query["status"].strip().upper())
        except ValueError:
            allowed = ", ".join(s.value for s in JobStatus)
            raise ApiError(400, f"status must be one of {allowed}", "status") from None
    jobs = store.listing(_type(call), status, call.query.get("teamId") or None)
    shown = jobs[page * limit : (page + 1) * limit]
    return json_response(
        200,
        {
            "exports": [status_body(store, j) for j in shown],
            "page": page,
            "limit": limit,
            "total": len(jobs),
        },
    )


def _int_param(call: Call, name: str, default: int, low: int, high: int | None) -> int:
    raw = call.query.get(name, "").strip()
    if not raw:
        return default
    bounds = f"between {low} and {high}" if high is not None else f">= {low}"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer {bounds}, got {raw!r}", name) from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{name} must be {bounds}, got {value}", name)
    return value
