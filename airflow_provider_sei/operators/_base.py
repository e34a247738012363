"""What the export operators share: parameters, the ``sei`` template namespace, failing fast.

* **Parameters** every operator takes: where the file goes (``destination``,
  ``dest_conn_id``, ``dest_storage_options``), what it holds (``output_format``,
  ``add_columns``, ``if_empty``, ``overwrite``, ``max_bytes``) and the date range.
* **Resolved dates for templates.** The range is resolved *before* the other fields are
  rendered and exposed to them as ``{{ sei.date_start }}`` / ``{{ sei.date_end }}``
  (``yyyy-MM-dd``), with ``sei.granularity``, ``sei.suffix`` (``.csv``, ``.csv.gz``,
  ``.parquet``) and the operator's own names (``sei.collection_id``, ``sei.team_id``, ...), so
  one destination template works for scheduled, backfilled, manual and asset-triggered runs.
* **Failing fast.** :func:`fail_fast` turns what a retry cannot change -- an invalid
  parameter, an unknown connection, a store that cannot be written, a 4xx other than 408 and
  429, a response that is not a report -- into ``AirflowFailException``; the hook's retry
  policy (``is_retryable``) is the one judge.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)
from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_sei.exceptions import (
    SEIDestinationError,
    SEIError,
    SEIExportJobError,
    SEIInvalidRequestError,
)
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.lineage import LineageFacts
from airflow_provider_sei.models._parse import is_nullish, parse_bool, parse_choice, parse_int
from airflow_provider_sei.operators._dates import DateRange, resolve_date_range
from airflow_provider_sei.output.columns import parse_add_columns
from airflow_provider_sei.output.formats import file_suffix, parse_output_format
from airflow_provider_sei.output.transfer import ExportResult, OutputOptions
from airflow_provider_sei.output.writer import public_uri
from airflow_provider_sei.progress import DEFAULT_INTERVAL

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sei.hooks.sei import SEIHook

IF_EMPTY_CHOICES = ("write", "skip", "fail")
DEFAULT_CONN_ID = "harness_sei_default"
_POLICY = RetryPolicy()
#: Old parameter names still accepted (with a DeprecationWarning): old -> new.
RENAMED = {
    "sei_conn_id": "harness_sei_conn_id",
    "destination_conn_id": "dest_conn_id",
    "destination_storage_options": "dest_storage_options",
}


def take_renamed(kwargs: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Pop the deprecated spellings out of ``kwargs``; return the new names' values."""
    values = dict(defaults)
    for old, new in RENAMED.items():
        if old in kwargs:
            warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=3)
            value = kwargs.pop(old)
            if values.get(new) in (None, DEFAULT_CONN_ID):
                values[new] = value
    return values


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Re-raise what no retry can change as ``AirflowFailException`` (the message kept)."""
    try:
        yield
    except (AirflowFailException, AirflowSkipException):
        raise
    except (SEIInvalidRequestError, SEIDestinationError, SEIExportJobError) as err:
        raise AirflowFailException(str(err)) from err
    except SEIError as err:
        if _POLICY.is_retryable(err):
            raise
        raise AirflowFailException(str(err)) from err
    except Exception as err:
        if type(err).__name__ == "AirflowNotFoundException":  # an unknown connection
            raise AirflowFailException(
                f"{err}: create the connection, or fix the operator's conn id"
            ) from err
        raise


class SEIExportBaseOperator(BaseOperator):
    """Render, validate, export, write: the parameters and steps all export operators share.

    Subclasses set ``_kind`` and implement ``export`` (the hook call) and ``namespace``.
    """

    common_template_fields: tuple[str, ...] = (
        "date_start",
        "date_end",
        "destination",
        "dest_conn_id",
        "dest_storage_options",
        "if_empty",
        "overwrite",
        "output_format",
        "add_columns",
        "max_bytes",
    )
    #: Rendered before the ``sei`` namespace is built (and so usable inside it).
    render_first: tuple[str, ...] = ("date_start", "date_end", "output_format")
    ui_color = "#e6f0ff"
    _kind = "export"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath | Asset,
        date_start: str | date | None = None,
        date_end: str | date | None = None,
        dest_conn_id: str | None = None,
        dest_storage_options: dict[str, Any] | None = None,
        harness_sei_conn_id: str = DEFAULT_CONN_ID,
        if_empty: str = "write",
        overwrite: bool | str = True,
        output_format: str = "csv",
        add_columns: list[str] | str | None = None,
        max_bytes: int | str | None = None,
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
        #: An ObjectStoragePath destination, kept whole (with its storage options); the
        #: templated ``destination`` then shows its URI.
        self.destination_path: ObjectStoragePath | None = None
        if isinstance(destination, Asset):
            kwargs["outlets"] = [*_as_list(kwargs.get("outlets")), destination]
            destination = destination.uri
        elif isinstance(destination, ObjectStoragePath):
            self.destination_path = destination
            destination = public_uri(destination)
        super().__init__(**kwargs)
        self.destination = destination
        self.date_start = date_start
        self.date_end = date_end
        self.dest_conn_id = renamed["dest_conn_id"]
        self.dest_storage_options = renamed["dest_storage_options"]
        self.harness_sei_conn_id = renamed["harness_sei_conn_id"]
        self.if_empty = if_empty
        self.overwrite = overwrite
        self.output_format = output_format
        self.add_columns = add_columns
        self.max_bytes = max_bytes
        self.progress_interval = progress_interval

    @cached_property
    def hook(self) -> SEIHook:
        """The hook, built once per task run."""
        from airflow_provider_sei.hooks.sei import SEIHook

        return SEIHook(harness_sei_conn_id=self.harness_sei_conn_id)

    # -- rendering ------------------------------------------------------------------------------

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the date fields, expose the resolved range as ``sei``, render the rest."""
        jinja_env = jinja_env or self.get_template_env()
        first = [name for name in self.template_fields if name in self.render_first]
        rest = [name for name in self.template_fields if name not in self.render_first]
        with fail_fast():
            self._do_render_template_fields(self, first, context, jinja_env, set())
            context["sei"] = self.namespace(context)  # type: ignore[typeddict-unknown-key]
            self._do_render_template_fields(self, rest, context, jinja_env, set())

    def dates(self, context: Context) -> DateRange:
        """The report's inclusive range (resolved once; see ``_dates``)."""
        cached = getattr(self, "_dates", None)
        if cached is None:
            cached = self._dates = resolve_date_range(self.date_start, self.date_end, context)
        return cached

    def namespace(self, context: Context) -> dict[str, Any]:
        """What ``{{ sei.* }}`` holds; subclasses add their ids."""
        dates = self.dates(context)
        return {
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
            "suffix": file_suffix(self.output_format),
        }

    # -- executing ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():
            if "sei" not in context:  # execute() called without rendering (a test, a @task)
                context["sei"] = self.namespace(context)  # type: ignore[typeddict-unknown-key]
            dates = self.dates(context)
            output = self.output_options(context)
            result, extra = self.export(context, dates, output)
        if not result.written:
            message = f"The SEI {self._kind} has no data rows; if_empty={self.if_empty!r}"
            if self.if_empty == "skip":
                raise AirflowSkipException(f"{message}: the destination is left as it was")
            raise AirflowFailException(message)
        summary = {
            "uri": result.uri,
            "bytes": result.bytes,
            "rows": result.rows,
            "columns": result.columns,
            "filename": result.filename,
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
            "output_format": result.output_format,
            **extra,
        }
        self.log.info(
            "Wrote %s: %d bytes, %d rows, %d columns",
            summary["uri"] or "the file object",
            result.bytes,
            result.rows,
            len(result.columns),
        )
        attach_to_asset_events(self, context, summary)
        self.lineage_facts = LineageFacts(
            base_url=self.hook.base_url,
            source=self.lineage_source(context),
            outputs=[result.uri] if result.uri else [],
            columns=list(result.columns),
            rows=result.rows,
            bytes=result.bytes,
        )
        return summary

    def lineage_source(self, context: Context) -> str:
        """The input dataset's name: the export kind and the collection or team."""
        return self._kind

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the lineage of the finished export (``apache-airflow-providers-openlineage``).

        The SEI export is the input dataset, the written object the output, with a schema
        facet from the report's header and row count and byte size as statistics.
        """
        from airflow_provider_sei.lineage import operator_lineage

        return operator_lineage(getattr(self, "lineage_facts", None))

    def export(
        self, context: Context, dates: DateRange, output: OutputOptions
    ) -> tuple[ExportResult, dict[str, Any]]:
        """Run the export; return its result and the XCom keys the operator adds."""
        raise NotImplementedError

    def on_kill(self) -> None:
        if "hook" in self.__dict__:
            self.hook.cancel.set()

    def destination_arg(self) -> Any:
        """What the hook writes to: the ObjectStoragePath given, or the rendered URI."""
        return self.destination_path if self.destination_path is not None else self.destination

    def output_options(self, context: Context) -> OutputOptions:
        """Validate the output parameters (before any request) into ``OutputOptions``."""
        if_empty = parse_choice("if_empty", self.if_empty, IF_EMPTY_CHOICES)
        self.if_empty = if_empty
        names = parse_add_columns(self.add_columns)
        values = self.column_values(context)
        return OutputOptions(
            output_format=parse_output_format(self.output_format),
            columns={name: values[name] for name in names},
            overwrite=parse_bool("overwrite", self.overwrite),
            write_empty=if_empty == "write",
        )

    def column_values(self, context: Context) -> dict[str, str]:
        """The values of the metadata columns ``add_columns`` may name."""
        sei = context["sei"]  # type: ignore[typeddict-item]
        ti = context.get("ti")
        started = getattr(ti, "start_date", None) or datetime.now(timezone.utc)
        return {
            "date_start": sei["date_start"],
            "date_end": sei["date_end"],
            "granularity": str(sei.get("granularity") or ""),
            "collection_id": str(sei.get("collection_id") or ""),
            "team_id": str(sei.get("team_id") or sei.get("collection_id") or ""),
            "export_type": str(sei.get("export_type") or self._kind),
            "exported_at": started.astimezone(timezone.utc).isoformat(),
            "run_id": str(context.get("run_id") or ""),
        }

    def parsed_max_bytes(self) -> int | None:
        if is_nullish(self.max_bytes):
            return None
        return parse_int("max_bytes", self.max_bytes, minimum=1)


def attach_to_asset_events(op: BaseOperator, context: Context, summary: dict[str, Any]) -> None:
    """Give each outlet Asset's event the summary as its ``extra``."""
    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in _as_list(op.outlets):
        if isinstance(outlet, Asset):
            events[outlet].extra.update(summary)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]
