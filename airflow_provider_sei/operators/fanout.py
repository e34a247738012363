"""Export the team report of many teams -- a whole org tree -- paced, in parallel, in one task."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
)

from airflow_provider_sei.exceptions import SEIAPIError, SEIInvalidRequestError
from airflow_provider_sei.lineage import LineageFacts
from airflow_provider_sei.models import (
    TeamReportRequest,
    parse_bool,
    parse_granularity,
    parse_id,
    parse_list,
)
from airflow_provider_sei.models._parse import parse_budget, parse_int
from airflow_provider_sei.operators._base import (
    DEFAULT_CONN_ID,
    SEIOperatorMixin,
    exported_at,
    fail_fast,
    parse_names,
    take_renamed,
)
from airflow_provider_sei.operators._dates import DateRange
from airflow_provider_sei.operators.reports import team_request
from airflow_provider_sei.output.columns import parse_add_columns
from airflow_provider_sei.output.formats import file_suffix, open_encoder, parse_output_format
from airflow_provider_sei.output.merge import merge_csv
from airflow_provider_sei.output.transfer import OutputOptions, copy_csv
from airflow_provider_sei.output.writer import Target, public_uri
from airflow_provider_sei.progress import DEFAULT_INTERVAL, FanoutProgress

if TYPE_CHECKING:
    from airflow.sdk import Context

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


@dataclass
class Outcome:
    """What happened to one team's export."""

    team: Team
    bytes: int = 0
    rows: int = 0
    uri: str | None = None
    spool: str | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Plan:
    """What every team's export shares, decided before the first request."""

    dates: DateRange
    folder: Target | None
    merged: Target | None
    output: OutputOptions
    columns: tuple[str, ...]
    column_values: dict[str, str]
    spool: Path | None


class SEIMultiTeamReportOperator(SEIOperatorMixin, BaseOperator):
    """
    Export the team report of many teams: every team of an org tree, or a list of team ids.

    Each team is exported with its own request (Harness advises team-level calls: exporting
    a large org from the root can time out), by up to ``max_concurrency`` threads that share
    one hook -- one connection pool and one requests-per-minute budget -- into one file per
    team and/or one merged CSV. A team's export holds the team and all its child teams, so the
    merge drops repeated rows; its header is the union of the reports' columns.

    .. seealso:: ``docs/large-orgs.md``: in-task concurrency vs dynamic task mapping, pools,
        and the V2 org-tree exports Harness now recommends for large orgs.

    :param org_tree_id: export every team of this org tree (``GET /v2/org-trees/{id}/teams``).
        (templated)
    :param team_ref_ids: or export these teams (ref ids; the collection id is the same, as
        the API advises). Exactly one of ``org_tree_id`` and ``team_ref_ids``. (templated)
    :param destination: a folder URI (``s3://bucket/sei/{{ sei.date_start }}/``,
        ``file:///...``) for one file per team, named by ``filename_pattern``. Both
        destinations may use ``{{ sei.date_start }}``, ``{{ sei.date_end }}``,
        ``{{ sei.suffix }}`` and ``{{ sei.granularity }}``. (templated)
    :param merged_destination: a file URI for one merged report of all teams. At least one of
        ``destination`` and ``merged_destination``. (templated)
    :param dest_conn_id: the connection of both destinations' store. (templated)
    :param dest_storage_options: options of the files opened for writing (see
        ``SEITeamReportOperator``). (templated)
    :param date_start: first day; default as for ``SEITeamReportOperator``. (templated)
    :param date_end: last day, inclusive; default as for ``SEITeamReportOperator``. (templated)
    :param granularity: ``daily``, ``weekly`` or ``monthly``. (templated)
    :param productivity_metrics: as for ``SEITeamReportOperator``. (templated)
    :param efficiency_metrics: as for ``SEITeamReportOperator``. (templated)
    :param calculation_type: ``MEAN``, ``MEDIAN``, ``P90`` or ``P95``. (templated)
    :param output_format: ``csv``, ``csv.gz`` or ``parquet``, for every file. (templated)
    :param add_columns: metadata columns appended to every row (as for
        ``SEITeamReportOperator``); in the merged report ``team_id`` and ``collection_id``
        name the team whose export the row came from. (templated)
    :param filename_pattern: a ``str.format`` pattern for the per-team files; fields
        ``team_ref_id``, ``date_start``, ``date_end``, ``granularity``, ``suffix``. (templated)
    :param max_concurrency: exports in flight at once (threads; also the connection pool's
        size). (templated)
    :param requests_per_minute: the budget shared by the threads, retries and the org-tree
        listing included; requests go out evenly spaced, and a 429 halves the pace until
        requests succeed again. Harness allows about 400 per minute per API key: the default,
        300, leaves room for other users of the key. ``None`` or 0: no limit. (templated)
    :param max_failed_teams: how many teams may fail (after the hook's retries) with the task
        still succeeding; the merged report then holds the others. Default 0: any failure
        fails the task -- after every team has run, so the log lists them all, and per-team
        files of the teams that succeeded are written. 401 and 403 stop the task at once.
        (templated)
    :param dedupe: drop repeated rows from the merged report. (templated)
    :param harness_sei_conn_id: the Harness SEI connection.
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
        "dest_conn_id",
        "dest_storage_options",
        "date_start",
        "date_end",
        "granularity",
        "productivity_metrics",
        "efficiency_metrics",
        "calculation_type",
        "output_format",
        "add_columns",
        "filename_pattern",
        "max_concurrency",
        "requests_per_minute",
        "max_failed_teams",
        "dedupe",
    )
    render_first = (*SEIOperatorMixin.render_first, "granularity")
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        org_tree_id: int | str | None = None,
        team_ref_ids: Sequence[int | str] | str | None = None,
        destination: str | None = None,
        merged_destination: str | None = None,
        dest_conn_id: str | None = None,
        dest_storage_options: dict[str, Any] | None = None,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        granularity: str = "weekly",
        productivity_metrics: list[str] | None = None,
        efficiency_metrics: list[str] | None = None,
        calculation_type: str = "MEAN",
        output_format: str = "csv",
        add_columns: list[str] | str | None = None,
        filename_pattern: str = "team-{team_ref_id}{suffix}",
        max_concurrency: int | str = DEFAULT_MAX_CONCURRENCY,
        requests_per_minute: float | str | None = DEFAULT_REQUESTS_PER_MINUTE,
        max_failed_teams: int | str = 0,
        dedupe: bool | str = True,
        harness_sei_conn_id: str = DEFAULT_CONN_ID,
        progress_interval: float = DEFAULT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        renamed = take_renamed(
            kwargs,
            {
                "harness_sei_conn_id": harness_sei_conn_id,
                "dest_conn_id": dest_conn_id,
                "dest_storage_options": dest_storage_options,
            },
        )
        super().__init__(**kwargs)
        if (org_tree_id is None) == (team_ref_ids is None):
            raise ValueError("Give exactly one of org_tree_id and team_ref_ids")
        if destination is None and merged_destination is None:
            raise ValueError("Give destination (a folder), merged_destination (a file), or both")
        self.org_tree_id = org_tree_id
        self.team_ref_ids = team_ref_ids
        self.destination = destination
        self.merged_destination = merged_destination
        self.dest_conn_id = renamed["dest_conn_id"]
        self.dest_storage_options = renamed["dest_storage_options"]
        self.date_start = date_start
        self.date_end = date_end
        self.granularity = granularity
        self.productivity_metrics = productivity_metrics
        self.efficiency_metrics = efficiency_metrics
        self.calculation_type = calculation_type
        self.output_format = output_format
        self.add_columns = add_columns
        self.filename_pattern = filename_pattern
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.max_failed_teams = max_failed_teams
        self.dedupe = dedupe
        self.harness_sei_conn_id = renamed["harness_sei_conn_id"]
        self.progress_interval = progress_interval

    @cached_property
    def hook(self) -> SEIHook:
        """One hook for every thread: one pool of ``max_concurrency`` connections, one budget."""
        from airflow_provider_sei.hooks.sei import SEIHook

        return SEIHook(
            harness_sei_conn_id=self.harness_sei_conn_id,
            pool_maxsize=parse_int("max_concurrency", self.max_concurrency, minimum=1),
            requests_per_minute=parse_budget("requests_per_minute", self.requests_per_minute),
        )

    # -- the task ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():
            concurrency = parse_int("max_concurrency", self.max_concurrency, minimum=1)
            max_failed = parse_int("max_failed_teams", self.max_failed_teams, minimum=0)
            dedupe = parse_bool("dedupe", self.dedupe)
            parse_budget(
                "requests_per_minute", self.requests_per_minute
            )  # checked before the org tree is listed
            with tempfile.TemporaryDirectory(prefix="sei-fanout-") as spool_dir:
                plan = self._plan(context, Path(spool_dir))
                teams = self._teams()
                jobs = [self._job(team, plan) for team in teams]
                _check_unique([job.filename for job in jobs if job.filename])
                self._log_start(teams, plan, concurrency)
                progress = FanoutProgress(self.log, len(teams), interval=self.progress_interval)
                with ThreadPoolExecutor(concurrency, thread_name_prefix="sei-team") as pool:
                    outcomes = list(pool.map(lambda j: self._export_team(plan, progress, j), jobs))
                progress.finish()
                failed = [o for o in outcomes if o.error is not None]
                if len(failed) > max_failed or self.hook.cancel.is_set():
                    message = _failure_message(failed, len(teams), max_failed)
                    if any(_is_fatal(o.error) for o in failed):  # a retry would fail the same way
                        raise AirflowFailException(message)
                    raise AirflowException(message)
                summary = self._summary(teams, outcomes, plan)
                if plan.merged is not None:
                    summary.update(self._merge(outcomes, plan, dedupe))
                self.lineage_facts = self._lineage_facts(outcomes, plan, summary)
        self.log.info("Done: %s", {k: v for k, v in summary.items() if k != "columns"})
        return summary

    def namespace(self, context: Context) -> dict[str, Any]:
        """Return what ``{{ sei.* }}`` holds: the range, the format's suffix, the granularity."""
        return super().namespace(context) | {
            "granularity": parse_granularity("granularity", self.granularity).value,
            "export_type": "team",
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the lineage of the finished fan-out (``apache-airflow-providers-openlineage``).

        One input dataset per team exported, one output per file written (the per-team files
        and the merged report), each with its schema and statistics: see ``lineage``.
        """
        from airflow_provider_sei.lineage import operator_lineage

        return operator_lineage(getattr(self, "lineage_facts", None))

    def _lineage_facts(
        self, outcomes: list[Outcome], plan: _Plan, summary: dict[str, Any]
    ) -> list[LineageFacts]:
        """Return what lineage needs of the teams exported and the files written."""
        base_url, fmt = self.hook.base_url, plan.output.output_format
        facts = [
            LineageFacts(
                base_url=base_url,
                source=f"reports/team/{o.team.ref_id}",
                outputs=[o.uri] if o.uri else [],
                rows=o.rows,
                bytes=o.bytes,
                output_format=fmt,
                added_columns=list(plan.columns),
            )
            for o in outcomes
            if o.error is None
        ]
        if summary.get("merged_uri"):
            facts.append(
                LineageFacts(
                    base_url=base_url,
                    source="",  # the merged file's inputs are the teams' exports above
                    outputs=[summary["merged_uri"]],
                    columns=list(summary.get("columns") or []),
                    rows=summary.get("merged_rows", 0),
                    bytes=summary.get("merged_bytes", 0),
                    output_format=fmt,
                    added_columns=[],  # the merge's columns hold them already
                )
            )
        return facts

    # -- the parts -----------------------------------------------------------------------------

    def _plan(self, context: Context, spool: Path) -> _Plan:
        dates = self.dates(context)
        output_format = parse_output_format(self.output_format)
        columns = parse_add_columns(parse_names("add_columns", self.add_columns, "column names"))
        folder = self._target("destination", self.destination)
        merged = self._target("merged_destination", self.merged_destination)
        if merged is not None and merged.folder:
            raise SEIInvalidRequestError(
                "merged_destination", self.merged_destination, "a file URI, not a folder"
            )
        if folder is not None:  # before the org tree is listed: two teams, two names
            names = {self._filename(ref, dates, output_format) for ref in (1, 2)}
            if len(names) < 2:
                raise SEIInvalidRequestError(
                    "filename_pattern",
                    self.filename_pattern,
                    "a pattern giving each team its own file name: include {team_ref_id}",
                )
        for target in (folder, merged):
            if target is not None:
                target.preflight()
        values = {
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
            "granularity": parse_granularity("granularity", self.granularity).value,
            "export_type": "team",
            "exported_at": exported_at(context),
            "run_id": str(context.get("run_id") or ""),
        }
        return _Plan(
            dates=dates,
            folder=folder,
            merged=merged,
            output=OutputOptions(output_format=output_format),
            columns=columns,
            column_values=values,
            spool=spool if merged is not None else None,
        )

    def _target(self, field: str, uri: Any) -> Target | None:
        if uri is None:
            return None
        return Target.resolve(
            uri,
            conn_id=self.dest_conn_id,
            write_options=self.dest_storage_options,
            field_name=field,
        )

    def _teams(self) -> list[Team]:
        if self.team_ref_ids is not None:
            ids = parse_list("team_ref_ids", self.team_ref_ids, what="team ref ids")
            teams = [Team(parse_id("team_ref_ids", i)) for i in ids]
        else:
            tree = parse_id("org_tree_id", self.org_tree_id)
            listed = self.hook.list_org_tree_teams(tree)
            teams = [
                Team(parse_id("refId", item.get("refId")), item.get("name")) for item in listed
            ]
        teams = list(dict.fromkeys(teams))  # the same team twice is exported once
        if not teams:
            source = f"org tree {self.org_tree_id}" if self.team_ref_ids is None else "team_ref_ids"
            raise AirflowFailException(f"No teams to export: {source} is empty")
        return teams

    def _job(self, team: Team, plan: _Plan) -> _Job:
        request = team_request(
            self,
            collection_id=str(team.ref_id),
            team_ref_id=team.ref_id,
            date_start=plan.dates.start,
            date_end=plan.dates.end,
        )
        name = None
        if plan.folder is not None:
            name = self._filename(team.ref_id, plan.dates, plan.output.output_format)
        return _Job(team, request, name)

    def _columns(self, plan: _Plan, team: Team) -> dict[str, str]:
        values = {
            **plan.column_values,
            "team_id": str(team.ref_id),
            "collection_id": str(team.ref_id),
        }
        return {name: values[name] for name in plan.columns}

    def _export_team(self, plan: _Plan, progress: FanoutProgress, job: _Job) -> Outcome:
        """One team, in a worker thread: never raises, the outcome carries the error."""
        outcome = self._export_one(plan, job)
        if outcome.error is None:
            progress.team_done(str(job.team), outcome.bytes, outcome.rows)
        else:
            progress.team_failed(str(job.team), outcome.error)
        return outcome

    def _export_one(self, plan: _Plan, job: _Job) -> Outcome:
        team, request, name = job.team, job.request, job.filename
        outcome = Outcome(team)
        if self.hook.cancel.is_set():
            outcome.error = InterruptedError("not started: the task is stopping")
            return outcome
        output = OutputOptions(
            output_format=plan.output.output_format, columns=self._columns(plan, team)
        )
        try:
            if plan.spool is None:  # no merge: straight to the team's file
                assert plan.folder is not None
                assert name is not None
                result = self.hook.download_report(request, plan.folder.file(name), output=output)
                outcome.uri, outcome.bytes, outcome.rows = result.uri, result.bytes, result.rows
                return outcome
            spool = str(plan.spool / f"{team.ref_id}.csv")
            result = self.hook.download_report(request, spool)
            outcome.spool, outcome.rows, outcome.bytes = spool, result.rows, result.bytes
            if plan.folder is not None and name:
                target = plan.folder.file(name)
                outcome.bytes = copy_csv(spool, target, target.path, output)
                outcome.uri = target.describe()
        except Exception as error:
            outcome.error = error
            if _is_fatal(error):
                self.hook.cancel.set()
            elif isinstance(error, InterruptedError):
                outcome.error = InterruptedError("cancelled while waiting for the rate limiter")
        return outcome

    def _filename(self, team_ref_id: int, dates: DateRange, output_format: str) -> str:
        fields = {
            "team_ref_id": team_ref_id,
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
            "granularity": parse_granularity("granularity", self.granularity).value,
            "suffix": file_suffix(output_format),
        }
        try:
            name = str(self.filename_pattern).format(**fields)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as err:
            raise SEIInvalidRequestError(
                "filename_pattern",
                self.filename_pattern,
                "a str.format pattern using team_ref_id, date_start, date_end, granularity, suffix",
            ) from err
        if "/" in name or name in ("", ".", ".."):
            raise SEIInvalidRequestError("filename_pattern", name, "a file name without '/'")
        return name

    def _log_start(self, teams: list[Team], plan: _Plan, concurrency: int) -> None:
        budget = parse_budget("requests_per_minute", self.requests_per_minute)
        self.log.info(
            "Exporting the SEI team report of %d teams for %s .. %s (from %s): %d at a time, "
            "%s; per-team files to %s; merged report to %s",
            len(teams),
            plan.dates.start,
            plan.dates.end,
            plan.dates.source,
            concurrency,
            f"at most {budget:g} requests/min" if budget else "no rate limit",
            plan.folder.describe() if plan.folder is not None else "-",
            plan.merged.describe() if plan.merged is not None else "-",
        )

    def _summary(self, teams: list[Team], outcomes: list[Outcome], plan: _Plan) -> dict[str, Any]:
        ok = [o for o in outcomes if o.error is None]
        limiter = self.hook.rate_limiter
        return {
            "teams": len(teams),
            "succeeded": len(ok),
            "failed": [o.team.ref_id for o in outcomes if o.error is not None],
            "destination": plan.folder.describe() if plan.folder is not None else None,
            "files": sum(1 for o in ok if o.uri),
            "bytes": sum(o.bytes for o in ok),
            "rows": sum(o.rows for o in ok),
            "throttled": limiter.throttled if limiter is not None else 0,
            "date_start": plan.dates.start.isoformat(),
            "date_end": plan.dates.end.isoformat(),
        }

    def _merge(self, outcomes: list[Outcome], plan: _Plan, dedupe: bool) -> dict[str, Any]:
        assert plan.merged is not None
        assert plan.merged.path is not None
        ok = [o for o in outcomes if o.error is None and o.spool is not None]
        staged = plan.merged.open(plan.merged.path)
        try:
            # The metadata columns go in per source, in the order asked for: team_id and
            # collection_id name the team whose export each row came from.
            encoder = open_encoder(plan.output.output_format, staged)
            result = merge_csv(
                [o.spool for o in ok],
                encoder,  # type: ignore[arg-type]
                dedupe=dedupe,
                source_column=list(plan.columns) or None,
                labels=[list(self._columns(plan, o.team).values()) for o in ok]
                if plan.columns
                else None,
            )
            encoder.close()
            staged.commit()
        except BaseException:
            staged.abort()
            raise
        uri = public_uri(plan.merged.path)
        self.log.info(
            "Merged %d reports into %s: %d rows (%d repeated rows dropped), %d columns",
            result.sources,
            uri,
            result.rows,
            result.duplicates,
            len(result.columns),
        )
        return {
            "merged_uri": uri,
            "merged_rows": result.rows,
            "merged_bytes": staged.bytes,
            "duplicates_dropped": result.duplicates,
            "columns": result.columns,
        }


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
