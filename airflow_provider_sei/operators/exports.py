"""Export any of the five V2 export types with one task: create the job, wait, download.

Sensor-free both ways: without deferral the task polls the job itself (sleeping
``poll_interval``, bounded by ``max_wait``); with ``deferrable=True`` it creates the job and
defers to :class:`~airflow_provider_sei.triggers.exports.SEIExportTrigger`, freeing its worker
slot while the job runs, then resumes to download.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, conf

from airflow_provider_sei.exceptions import (
    SEIError,
    SEIExportJobError,
    SEIInvalidRequestError,
    SEITimeoutError,
)
from airflow_provider_sei.hooks.retry import now
from airflow_provider_sei.models import ExportJob, ExportJobRequest, parse_export_type
from airflow_provider_sei.models._parse import is_nullish, parse_budget, parse_choice, parse_number
from airflow_provider_sei.models.exports import CANCELLED, FAILED
from airflow_provider_sei.operators._base import SEIExportBaseOperator, fail_fast
from airflow_provider_sei.operators.reports import COMMON_DOC
from airflow_provider_sei.output.transfer import CSVLimits, ExportResult, OutputOptions

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sei.hooks.sei import SEIHook
    from airflow_provider_sei.operators._dates import DateRange
    from airflow_provider_sei.output.writer import Target

COMPRESSIONS = ("none", "gzip")


class SEIExportOperator(SEIExportBaseOperator):
    __doc__ = """
    Export Harness SEI metrics with a V2 export job (efficiency, productivity, sprint, business
    alignment or issue time-in-status), the API Harness recommends for large exports.

    :param export_type: ``efficiency``, ``productivity``, ``sprint``, ``business_alignment`` or
        ``time_in_status`` (the API's own ``ba`` and ``ticket-data`` too). Not templated.
    :param team_id: the team to export. (templated)
    :param org_tree_name: the org tree to export (with ``team_id``: what the API makes of
        both). At least one of the two. (templated)
    :param date_start: the first day; default: see *Date range*. (templated)
    :param date_end: the last day, inclusive; default: see *Date range*. (templated)
    :param granularity: the period of the rows, any case: ``weekly``, ``monthly``,
        ``quarterly`` (all types), ``sprint`` (sprint), ``daily`` (time in status).
        (templated)
    :param metric_groups: metric groups of the type (e.g. ``lttc``, ``df``, ``cfr``, ``mttr``
        for efficiency); None or ``[]``: all. (templated)
    :param metrics: metric names of the type; None or ``[]``: all. (templated)
    :param aggregation: ``mean``, ``median``, ``p90`` or ``p95``. (templated)
    :param metric_level: productivity: ``developer`` or ``team``; sprint: ``team`` or
        ``sprint``. (templated)
    :param issue_statuses: time in status: the workflow statuses to measure. (templated)
    :param options: merged into the body's ``options`` (``computationMode``,
        ``terminalDateColumn``, ``aggregationLevel``, ...). (templated)
    :param compression: ``none`` (the CSV is written decompressed, ``.csv``) or ``gzip`` (the
        bytes are stored gzip-compressed, ``.csv.gz``: as downloaded when the server sent a
        ``.gz``, else compressed on the way). Same as ``output_format="csv.gz"``. (templated)
    :param poll_interval: seconds between two polls of the job. (templated)
    :param max_wait: seconds the job may take before the task fails. (templated)
    :param requests_per_minute: a budget every request of the task pays, the polls (in the
        task or in the triggerer) included; None for no limit. (templated)
    :param deferrable: wait in the triggerer, not on a worker. Default: the
        ``[operators] default_deferrable`` setting.

    The destination is checked (its store reachable, its connection known, ``overwrite``)
    before the job is created: a job is never started for a file that cannot be written.
    """ + COMMON_DOC.replace("SEI report", "SEI export").replace(
        '"filename", "date_start", "date_end",\n    "output_format"}',
        '"filename", "date_start", "date_end",\n    "output_format", "export_id", '
        '"export_type", "reused", "compression"}',
    )

    template_fields: Sequence[str] = (
        "team_id",
        "org_tree_name",
        "granularity",
        "metric_groups",
        "metrics",
        "aggregation",
        "metric_level",
        "issue_statuses",
        "options",
        "compression",
        "poll_interval",
        "max_wait",
        "requests_per_minute",
        *SEIExportBaseOperator.common_template_fields,
    )
    render_first = (
        *SEIExportBaseOperator.render_first,
        "team_id",
        "org_tree_name",
        "granularity",
        "compression",
    )
    _kind = "export"

    def __init__(
        self,
        *,
        export_type: str,
        destination: Any,
        team_id: str | int | None = None,
        org_tree_name: str | None = None,
        granularity: str = "weekly",
        metric_groups: list[str] | str | None = None,
        metrics: list[str] | str | None = None,
        aggregation: str | None = None,
        metric_level: str | None = None,
        issue_statuses: list[str] | str | None = None,
        options: dict[str, Any] | str | None = None,
        compression: str = "none",
        poll_interval: float | str = 30,
        max_wait: float | str = 3600,
        requests_per_minute: float | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        output_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(destination=destination, output_format=output_format or "", **kwargs)
        self.export_type = parse_export_type(export_type).value
        self.team_id = team_id
        self.org_tree_name = org_tree_name
        self.granularity = granularity
        self.metric_groups = metric_groups
        self.metrics = metrics
        self.aggregation = aggregation
        self.metric_level = metric_level
        self.issue_statuses = issue_statuses
        self.options = options
        self.compression = compression
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.requests_per_minute = requests_per_minute
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> SEIHook:
        """The hook, built once per task run, with the task's request budget."""
        from airflow_provider_sei.hooks.sei import SEIHook

        return SEIHook(
            harness_sei_conn_id=self.harness_sei_conn_id,
            requests_per_minute=parse_budget("requests_per_minute", self.requests_per_minute),
        )

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        with fail_fast():
            self.output_format = self._output_format()

    def namespace(self, context: Context) -> dict[str, Any]:
        self.output_format = self._output_format()
        return super().namespace(context) | {
            "export_type": self.export_type,
            "team_id": "" if is_nullish(self.team_id) else str(self.team_id),
            "org_tree_name": "" if is_nullish(self.org_tree_name) else str(self.org_tree_name),
            "granularity": str(self.granularity).lower(),
        }

    def lineage_source(self, context: Context) -> str:
        sei = context["sei"]  # type: ignore[typeddict-item]
        scope = f"team/{sei['team_id']}" if sei["team_id"] else f"org-tree/{sei['org_tree_name']}"
        return f"exports/{self.export_type}/{scope}"

    # -- the job ---------------------------------------------------------------------------------

    def export(
        self, context: Context, dates: DateRange, output: OutputOptions
    ) -> tuple[ExportResult, dict[str, Any]]:
        request = self.build_request(dates)
        poll_interval = parse_number("poll_interval", self.poll_interval, minimum=0.01)
        max_wait = parse_number("max_wait", self.max_wait, minimum=0.01)
        parse_budget("requests_per_minute", self.requests_per_minute)
        limits = self.csv_limits()
        target = self.hook.prepare_destination(
            self.destination_arg(),
            dest_conn_id=self.dest_conn_id,
            write_options=self.dest_storage_options,
            overwrite=output.overwrite,
        )
        job: ExportJob | None = getattr(self, "_job", None)  # resumed after the trigger
        if job is None:
            started = now()
            job = self.hook.create_export(request)
            if job.status in (FAILED, CANCELLED):
                raise SEIExportJobError(job.export_id, job.status, job.message)
            if not job.finished:
                if self.deferrable:
                    self._defer(job, poll_interval, max_wait - (now() - started))
                job = self.hook.wait_for_export(
                    job, poll_interval=poll_interval, max_wait=max_wait, started=started
                )
        return self.download(job, target, output, limits)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: download a completed job, or fail with the reason."""
        job = ExportJob.from_dict(event["job"])
        status, message = event.get("status"), event.get("message") or ""
        if status not in ("success", "failed", "timeout"):
            text = f"Polling SEI export job {job.export_id} failed: {message}"
            if event.get("retryable"):
                raise SEIError(text)  # a task retry finds the job again (reused)
            raise AirflowFailException(text)
        with fail_fast():
            if status == "failed":
                raise SEIExportJobError(job.export_id, job.status or "FAILED", message)
            if status == "timeout":
                raise SEITimeoutError(f"SEI export job {job.export_id}: {message}")
        self._job = job
        return self.execute(context)

    def build_request(self, dates: DateRange) -> ExportJobRequest:
        return ExportJobRequest.build(
            export_type=self.export_type,
            date_start=dates.start,
            date_end=dates.end,
            granularity=self.granularity,
            team_id=self.team_id,
            org_tree_name=self.org_tree_name,
            metric_groups=self.metric_groups,
            metrics=self.metrics,
            aggregation=self.aggregation,
            metric_level=self.metric_level,
            issue_statuses=self.issue_statuses,
            options=self.options,
            compression="gzip" if self.output_format == "csv.gz" else None,
        )

    def download(
        self, job: ExportJob, target: Target, output: OutputOptions, limits: CSVLimits
    ) -> tuple[ExportResult, dict[str, Any]]:
        """Stream the completed job's CSV into the checked destination."""
        result = self.hook.download_export(
            job,
            target,
            output=output,
            limits=limits,
            progress_interval=self.progress_interval,
        )
        return result, {
            "export_id": job.export_id,
            "export_type": self.export_type,
            "reused": job.reused,
            "compression": "gzip" if result.output_format == "csv.gz" else "none",
        }

    def _defer(self, job: ExportJob, poll_interval: float, max_wait: float) -> None:
        """Hand the polling to the triggerer: the job may run ``max_wait`` more seconds."""
        from airflow_provider_sei.triggers.exports import SEIExportTrigger

        self.defer(
            trigger=SEIExportTrigger(
                job=job.to_dict(),
                harness_sei_conn_id=self.harness_sei_conn_id,
                poll_interval=poll_interval,
                end_time=time.time() + max(max_wait, 0.0),
                requests_per_minute=parse_budget("requests_per_minute", self.requests_per_minute),
            ),
            method_name="execute_complete",
            # The trigger ends itself at end_time; this only catches a triggerer that died.
            timeout=timedelta(seconds=max(max_wait, 0.0) + 300),
        )

    def _output_format(self) -> str:
        compression = parse_choice("compression", self.compression, COMPRESSIONS, default="none")
        derived = "csv.gz" if compression == "gzip" else "csv"
        fmt = str(self.output_format or "").strip().lower()
        if not fmt or fmt == derived:
            return derived
        if compression == "gzip":
            raise SEIInvalidRequestError(
                "compression", self.compression, f"none with output_format={fmt!r}"
            )
        return fmt
