"""Export the team report of many teams -- a whole org tree -- paced, in parallel, in one task."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_sei._compat import AirflowException, AirflowFailException
from airflow_provider_sei.csvstats import CSVStats
from airflow_provider_sei.exceptions import SEIAPIError, SEIInvalidRequestError
from airflow_provider_sei.models import TeamReportRequest, parse_bool, parse_team_ref_id
from airflow_provider_sei.operators._dates import resolve_date_range
from airflow_provider_sei.operators._writer import AtomicWriter, build_path, public_uri
from airflow_provider_sei.operators.reports import team_request
from airflow_provider_sei.output.merge import merge_csv
from airflow_provider_sei.progress import DEFAULT_INTERVAL, FanoutProgress

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_sei.hooks.sei import SEIHook

#: Below Harness's 400 external API calls per minute per key, leaving room for other clients.
DEFAULT_REQUESTS_PER_MINUTE = 300
DEFAULT_MAX_CONCURRENCY = 8
#: Statuses that no other team will escape: stop sending at once instead of failing N times.
_FATAL_STATUSES = frozenset({401, 403})
_FAILURES_LISTED = 20


@dataclass(frozen=True)
class Team:
    ref_id: int
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.ref_id} ({self.name})" if self.name else str(self.ref_id)


@dataclass(frozen=True)
class _Job:
    team: Team
    request: TeamReportRequest
    filename: str | None  # the per-team file's name, None without a destination folder
    index: int  # the team's place in the list: the merge keeps this order


@dataclass
class _Run:
    """What the worker threads share."""

    hook: SEIHook
    folder: ObjectStoragePath | None
    progress: FanoutProgress
    spool: Path | None = None  # where each team's copy waits for the merge


@dataclass
class Outcome:
    """What happened to one team's export."""

    team: Team
    bytes: int = 0
    rows: int = 0
    uri: str | None = None
    spool: Path | None = None
    error: BaseException | None = None


class SEIMultiTeamReportOperator(BaseOperator):
    """
    Export the team report of many teams: every team of an org tree, or a list of team ids.

    Each team is exported with its own request (Harness advises team-level calls: exporting
    a large org from the root can time out), by up to ``max_concurrency`` threads that share
    one connection pool and one requests-per-minute budget, into one file per team and/or
    one merged CSV. A team's export holds the team and all its child teams, so the merge
    drops repeated rows; its header is the union of the reports' columns.

    .. seealso:: ``docs/large-orgs.md``: in-task concurrency vs dynamic task mapping, pools.

    :param org_tree_id: export every team of this org tree (``GET /v2/org-trees/{id}/teams``).
        (templated)
    :param team_ref_ids: or export these teams (ref ids; the collection id is the same, as
        the API advises). Exactly one of ``org_tree_id`` and ``team_ref_ids``. (templated)
    :param destination: a folder URI (``s3://bucket/sei/{{ ds }}/``, ``file:///...``) for one
        file per team, named by ``filename_pattern``. (templated)
    :param merged_destination: a file URI for one merged CSV of all teams. At least one of
        ``destination`` and ``merged_destination``. (templated)
    :param destination_conn_id: the connection of both destinations' store. (templated)
    :param date_start: first day; default as for ``SEITeamReportOperator``. (templated)
    :param date_end: last day, inclusive; default as for ``SEITeamReportOperator``. (templated)
    :param granularity: ``daily``, ``weekly`` or ``monthly``. (templated)
    :param productivity_metrics: as for ``SEITeamReportOperator``. (templated)
    :param efficiency_metrics: as for ``SEITeamReportOperator``. (templated)
    :param calculation_type: ``MEAN``, ``MEDIAN``, ``P90`` or ``P95``. (templated)
    :param filename_pattern: a ``str.format`` pattern for the per-team files; fields
        ``team_ref_id``, ``date_start``, ``date_end``, ``granularity``. (templated)
    :param max_concurrency: exports in flight at once (threads; also the connection pool's
        size). (templated)
    :param requests_per_minute: the budget shared by the threads, retries and the org-tree
        listing included; requests go out evenly spaced, and a 429 halves the pace until
        requests succeed again. Harness allows about 400 per minute per API key: the default,
        300, leaves room for other users of the key. ``None`` or 0: no limit. (templated)
    :param max_failed_teams: how many teams may fail (after the hook's retries) with the task
        still succeeding; the merged CSV then holds the others. Default 0: any failure fails
        the task -- after every team has run, so the log lists them all, and per-team files
        of the teams that succeeded are written. 401 and 403 stop the task at once.
        (templated)
    :param dedupe: drop repeated rows from the merged CSV. (templated)
    :param sei_conn_id: the Harness SEI connection.
    :param progress_interval: seconds between progress lines (teams done / total, failures,
        bytes, rows, rates).

    **Return value** (XCom), small whatever the org's size: ``teams``, ``succeeded``,
    ``failed`` (ref ids), ``destination`` (the folder), ``files``, ``merged_uri``, ``bytes``
    and ``rows`` (per-team reports, summed), ``merged_rows``, ``merged_bytes``,
    ``duplicates_dropped``, ``columns``, ``throttled`` (429s seen), ``date_start``,
    ``date_end``.
    """

    template_fields: Sequence[str] = (
        "org_tree_id",
        "team_ref_ids",
        "destination",
        "merged_destination",
        "destination_conn_id",
        "date_start",
        "date_end",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
        "filename_pattern",
        "max_concurrency",
        "requests_per_minute",
        "max_failed_teams",
        "dedupe",
    )
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        org_tree_id: int | str | None = None,
        team_ref_ids: Sequence[int | str] | str | None = None,
        destination: str | None = None,
        merged_destination: str | None = None,
        destination_conn_id: str | None = None,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        granularity: str = "weekly",
        productivity_metrics: list[str] | None = None,
        efficiency_metrics: list[str] | None = None,
        calculation_type: str = "MEAN",
        filename_pattern: str = "team-{team_ref_id}.csv",
        max_concurrency: int | str = DEFAULT_MAX_CONCURRENCY,
        requests_per_minute: float | str | None = DEFAULT_REQUESTS_PER_MINUTE,
        max_failed_teams: int | str = 0,
        dedupe: bool | str = True,
        sei_conn_id: str = "sei_default",
        progress_interval: float = DEFAULT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (org_tree_id is None) == (team_ref_ids is None):
            raise ValueError("Give exactly one of org_tree_id and team_ref_ids")
        if destination is None and merged_destination is None:
            raise ValueError("Give destination (a folder), merged_destination (a file), or both")
        self.org_tree_id = org_tree_id
        self.team_ref_ids = team_ref_ids
        self.destination = destination
        self.merged_destination = merged_destination
        self.destination_conn_id = destination_conn_id
        self.date_start = date_start
        self.date_end = date_end
        self.granularity = granularity
        self.productivity_metrics = productivity_metrics
        self.efficiency_metrics = efficiency_metrics
        self.calculation_type = calculation_type
        self.filename_pattern = filename_pattern
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.max_failed_teams = max_failed_teams
        self.dedupe = dedupe
        self.sei_conn_id = sei_conn_id
        self.progress_interval = progress_interval
        self._cancel = threading.Event()

    # -- the task ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_sei.hooks.sei import SEIHook
        from airflow_provider_sei.ratelimit import RateLimiter, throttle_session

        concurrency = _positive_int("max_concurrency", self.max_concurrency)
        budget = _budget(self.requests_per_minute)
        max_failed = _non_negative_int("max_failed_teams", self.max_failed_teams)
        dedupe = parse_bool("dedupe", self.dedupe)
        dates = resolve_date_range(self.date_start, self.date_end, context)
        folder = _folder(self.destination, self.destination_conn_id)
        merged = _file(self.merged_destination, self.destination_conn_id)

        hook = SEIHook(sei_conn_id=self.sei_conn_id, pool_maxsize=concurrency)
        limiter = RateLimiter(budget) if budget else None
        throttle_session(hook.get_conn(), hook.base_url, limiter, cancel=self._cancel)
        teams = self._teams(hook)
        requests = {team: self._request(team, dates.start, dates.end) for team in teams}
        self.log.info(
            "Exporting the SEI team report of %d teams for %s .. %s (from %s): %d at a time, "
            "%s; per-team files to %s; merged CSV to %s",
            len(teams),
            dates.start,
            dates.end,
            dates.source,
            concurrency,
            f"at most {budget:g} requests/min" if budget else "no rate limit",
            public_uri(folder) if folder is not None else "-",
            public_uri(merged) if merged is not None else "-",
        )

        run = _Run(
            hook, folder, FanoutProgress(self.log, len(teams), interval=self.progress_interval)
        )
        jobs = [
            _Job(team, requests[team], self._filename(requests[team]) if folder else None, i)
            for i, team in enumerate(teams)
        ]
        _check_unique([job.filename for job in jobs if job.filename])
        with tempfile.TemporaryDirectory(prefix="sei-fanout-") as spool_dir:
            run.spool = Path(spool_dir) if merged is not None else None
            with ThreadPoolExecutor(concurrency, thread_name_prefix="sei-team") as pool:
                outcomes = list(pool.map(lambda job: self._export_team(run, job), jobs))
            run.progress.finish()
            failed = [o for o in outcomes if o.error is not None]
            if len(failed) > max_failed or self._cancel.is_set():
                message = _failure_message(failed, len(teams), max_failed)
                if any(_is_fatal(o.error) for o in failed):  # a retry would fail the same way
                    raise AirflowFailException(message)
                raise AirflowException(message)
            summary = self._summary(teams, outcomes, folder, dates.start, dates.end, limiter)
            if merged is not None:
                summary.update(self._merge(outcomes, merged, dedupe))
        self.log.info("Done: %s", {k: v for k, v in summary.items() if k != "columns"})
        return summary

    def on_kill(self) -> None:
        self._cancel.set()

    # -- the parts -----------------------------------------------------------------------------

    def _teams(self, hook: SEIHook) -> list[Team]:
        if self.team_ref_ids is not None:
            ids = self.team_ref_ids
            if isinstance(ids, str):  # a rendered template: "1, 2, 3"
                ids = [part for part in ids.replace("[", "").replace("]", "").split(",")]
            teams = [Team(parse_team_ref_id("team_ref_ids", _strip(i))) for i in ids]
        else:
            listed = hook.list_org_tree_teams(self.org_tree_id)  # type: ignore[arg-type]
            teams = [
                Team(parse_team_ref_id("refId", item.get("refId")), item.get("name"))
                for item in listed
            ]
        teams = list(dict.fromkeys(teams))  # the same team twice is exported once
        if not teams:
            source = f"org tree {self.org_tree_id}" if self.team_ref_ids is None else "team_ref_ids"
            raise AirflowFailException(f"No teams to export: {source} is empty")
        return teams

    def _request(self, team: Team, start: date, end: date) -> TeamReportRequest:
        return team_request(
            self,
            collection_id=str(team.ref_id),
            team_ref_id=team.ref_id,
            date_start=start,
            date_end=end,
        )

    def _export_team(self, run: _Run, job: _Job) -> Outcome:
        """One team, in a worker thread: never raises, the outcome carries the error."""
        outcome = self._export_one(run, job)
        if outcome.error is None:
            run.progress.team_done(str(job.team), outcome.bytes, outcome.rows)
        else:
            run.progress.team_failed(str(job.team), outcome.error)
        return outcome

    def _export_one(self, run: _Run, job: _Job) -> Outcome:
        outcome = Outcome(job.team)
        if self._cancel.is_set():
            outcome.error = InterruptedError("not started: the task is stopping")
            return outcome
        stats = CSVStats()
        writer = AtomicWriter(run.folder, stats) if run.folder is not None else None
        spool_file = run.spool / f"{job.index:06d}.csv" if run.spool is not None else None
        try:
            result = run.hook.export_report(job.request, lambda: _tee(writer, stats, spool_file))
            stats.finish()
            if writer is not None and run.folder is not None and job.filename:
                target = run.folder / job.filename
                writer.commit(target)
                outcome.uri = public_uri(target)
            outcome.bytes, outcome.rows, outcome.spool = result.bytes, stats.rows, spool_file
        except Exception as error:
            if writer is not None:
                writer.discard()
            outcome.error = error
            if _is_fatal(error):
                self._cancel.set()
            elif isinstance(error, InterruptedError):
                outcome.error = InterruptedError("cancelled while waiting for the rate limiter")
        return outcome

    def _filename(self, request: TeamReportRequest) -> str:
        try:
            name = self.filename_pattern.format(
                team_ref_id=request.team_ref_id,
                date_start=request.date_start.isoformat(),
                date_end=request.date_end.isoformat(),
                granularity=request.granularity.value,
            )
        except (KeyError, IndexError, ValueError) as err:
            raise SEIInvalidRequestError(
                "filename_pattern",
                self.filename_pattern,
                "a str.format pattern using team_ref_id, date_start, date_end, granularity",
            ) from err
        if "/" in name or name in ("", ".", ".."):
            raise SEIInvalidRequestError("filename_pattern", name, "a file name without '/'")
        return name

    def _summary(
        self,
        teams: list[Team],
        outcomes: list[Outcome],
        folder: ObjectStoragePath | None,
        start: date,
        end: date,
        limiter: Any,
    ) -> dict[str, Any]:
        ok = [o for o in outcomes if o.error is None]
        return {
            "teams": len(teams),
            "succeeded": len(ok),
            "failed": [o.team.ref_id for o in outcomes if o.error is not None],
            "destination": public_uri(folder) if folder is not None else None,
            "files": sum(1 for o in ok if o.uri),
            "bytes": sum(o.bytes for o in ok),
            "rows": sum(o.rows for o in ok),
            "throttled": limiter.throttled if limiter is not None else 0,
            "date_start": start.isoformat(),
            "date_end": end.isoformat(),
        }

    def _merge(
        self, outcomes: list[Outcome], merged: ObjectStoragePath, dedupe: bool
    ) -> dict[str, Any]:
        sources = [o.spool for o in outcomes if o.error is None and o.spool is not None]
        writer = AtomicWriter(merged.parent, CSVStats())
        try:
            with writer.open_sink() as sink:
                result = merge_csv(sources, sink, dedupe=dedupe)  # type: ignore[arg-type]
            writer.stats.finish()
            writer.commit(merged)
        except BaseException:
            writer.discard()
            raise
        self.log.info(
            "Merged %d reports into %s: %d rows (%d repeated rows dropped), %d columns",
            result.sources,
            public_uri(merged),
            result.rows,
            result.duplicates,
            len(result.columns),
        )
        return {
            "merged_uri": public_uri(merged),
            "merged_rows": result.rows,
            "merged_bytes": writer.stats.bytes,
            "duplicates_dropped": result.duplicates,
            "columns": result.columns,
        }


class _Tee:
    """Writes each chunk to every sink; feeds ``stats`` when no sink already does."""

    __slots__ = ("_sinks", "_stats")

    def __init__(self, sinks: list[Any], stats: CSVStats | None) -> None:
        self._sinks = sinks
        self._stats = stats

    def write(self, chunk: bytes) -> int:
        if self._stats is not None:
            self._stats.feed(chunk)
        for sink in self._sinks:
            sink.write(chunk)
        return len(chunk)


@contextmanager
def _tee(writer: AtomicWriter | None, stats: CSVStats, spool_file: Path | None) -> Iterator[_Tee]:
    """One attempt's sink: the team's temporary file and/or its spool copy for the merge."""
    with ExitStack() as stack:
        sinks: list[Any] = []
        if writer is not None:
            sinks.append(stack.enter_context(writer.open_sink()))  # feeds (and resets) stats
        else:
            stats.reset()
        if spool_file is not None:
            sinks.append(stack.enter_context(open(spool_file, "wb")))
        yield _Tee(sinks, None if writer is not None else stats)


def _folder(uri: Any, conn_id: str | None) -> ObjectStoragePath | None:
    if uri is None:
        return None
    return _path("destination", uri, conn_id)


def _file(uri: Any, conn_id: str | None) -> ObjectStoragePath | None:
    if uri is None:
        return None
    if isinstance(uri, str) and uri.strip().endswith("/"):
        raise SEIInvalidRequestError("merged_destination", uri, "a file URI, not a folder")
    return _path("merged_destination", uri, conn_id)


def _path(field: str, uri: Any, conn_id: str | None) -> ObjectStoragePath:
    if not isinstance(uri, str) or not uri.strip():
        raise SEIInvalidRequestError(field, uri, "a URI such as s3://bucket/sei/ or file:///dir/")
    try:
        return build_path(uri.strip(), conn_id)
    except Exception as err:  # unknown scheme, missing provider, malformed URI
        raise SEIInvalidRequestError(
            field, uri, f"a URI ObjectStoragePath supports ({err})"
        ) from err


def _strip(value: Any) -> Any:
    return value.strip().strip("'\"") if isinstance(value, str) else value


def _positive_int(field: str, value: Any) -> int:
    number = parse_team_ref_id(field, value)
    if number < 1:
        raise SEIInvalidRequestError(field, value, "an integer of at least 1")
    return number


def _non_negative_int(field: str, value: Any) -> int:
    return parse_team_ref_id(field, value)


def _budget(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "0")):
        return None
    try:
        budget = float(value)
    except (TypeError, ValueError):
        budget = -1.0
    if budget < 0:
        raise SEIInvalidRequestError(
            "requests_per_minute", value, "a positive number, or None / 0 for no limit"
        )
    return budget or None


def _is_fatal(error: BaseException | None) -> bool:
    return isinstance(error, SEIAPIError) and error.status_code in _FATAL_STATUSES


def _check_unique(filenames: list[str]) -> None:
    seen: set[str] = set()
    for name in filenames:
        if name in seen:
            raise SEIInvalidRequestError(
                "filename_pattern",
                name,
                "a pattern giving each team its own file name: include {team_ref_id}",
            )
        seen.add(name)


def _failure_message(failed: list[Outcome], total: int, max_failed: int) -> str:
    lines = [
        f"{len(failed)} of {total} team exports failed (max_failed_teams={max_failed}):",
        *(f"  team {o.team}: {o.error}" for o in failed[:_FAILURES_LISTED]),
    ]
    if len(failed) > _FAILURES_LISTED:
        lines.append(f"  ... and {len(failed) - _FAILURES_LISTED} more")
    return "\n".join(lines)
