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
* **Copies.** Airflow copies tasks (``copy.deepcopy`` for ``partial_subset``, ``copy.copy``
  before running one, pickling): ``__init__`` only stores arguments, and the hook -- a
  session, a cancel event, a rate limiter -- is never copied; each copy builds its own.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from airflow_provider_sei.models._parse import (
    is_nullish,
    one_of,
    parse_bool,
    parse_choice,
    parse_int,
    parse_list,
)
from airflow_provider_sei.operators._dates import DateRange, resolve_date_range
from airflow_provider_sei.output.columns import parse_add_columns
from airflow_provider_sei.output.formats import file_suffix, parse_output_format
from airflow_provider_sei.output.transfer import CSVLimits, ExportResult, OutputOptions
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


#: Where the resolved date range is kept for the rest of a task run (render, then execute).
_DATES_KEY = "sei_date_range"


def take_renamed(kwargs: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Pop the deprecated spellings out of ``kwargs``; return the new names' values."""
    values = dict(defaults)
    for old, new in RENAMED.items():
        if old in kwargs:
            warnings.warn(
                f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=_caller_level()
            )
            value = kwargs.pop(old)
            if values.get(new) in (None, DEFAULT_CONN_ID):
                values[new] = value
    return values


def _caller_level() -> int:
    """Return the ``stacklevel`` of the first frame outside this provider and Airflow: the DAG file.

    Operators' ``__init__`` run under Airflow's wrappers, one per class of the hierarchy, so
    a fixed level would point into Airflow (where warnings are ignored by default).
    """
    frame = sys._getframe(2)  # the caller of take_renamed: level 2 of its warnings
    level = 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("airflow_provider_sei.", "airflow.")
    ):
        frame = frame.f_back
        level += 1
    return level


def parse_names(field: str, value: Any, what: str) -> list[Any]:
    """Parse a templated list of names (``add_columns``, ...) as every other list is."""
    return [] if is_nullish(value) else parse_list(field, value, what=what)


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


class Namespace(dict):  # type: ignore[type-arg]
    """``{{ sei.* }}``: a name it does not hold fails the task naming it (no blank path part)."""

    def __missing__(self, key: str) -> Any:
        raise SEIInvalidRequestError("sei", key, one_of(sorted(self)))


class SEIOperatorMixin:
    """What every SEI operator shares with Airflow: the ``sei`` namespace, copies, ``on_kill``.

    Put it before ``BaseOperator`` in the bases. It reads the operator's ``date_start``,
    ``date_end`` and ``output_format``; operators add their own names to ``namespace``.
    """

    #: Rendered before the ``sei`` namespace is built (and so usable inside it).
    render_first: tuple[str, ...] = ("date_start", "date_end", "output_format")
    #: Not deep-copied (a session, locks, an event); dropped from copies altogether.
    shallow_copy_attrs: Sequence[str] = ("hook",)
    date_start: Any = None
    date_end: Any = None
    output_format: Any = "csv"

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        """Render the date fields, expose the resolved range as ``sei``, render the rest.

        Overridden here rather than in ``render_template_fields``: a mapped task's
        ``MappedOperator`` renders its unmapped task by calling this method directly.
        """
        render = super()._do_render_template_fields  # type: ignore[misc]
        if parent is not self:  # a nested templated object
            render(parent, template_fields, context, jinja_env, seen_oids)
            return
        fields = list(template_fields)
        with fail_fast():
            render(
                self, [f for f in fields if f in self.render_first], context, jinja_env, seen_oids
            )
            context["sei"] = Namespace(self.namespace(context))  # type: ignore[typeddict-unknown-key]
            render(
                self,
                [f for f in fields if f not in self.render_first],
                context,
                jinja_env,
                seen_oids,
            )

    def dates(self, context: Context) -> DateRange:
        """Return the inclusive range of the run (resolved once per run; see ``_dates``)."""
        cached = context.get(_DATES_KEY)
        if not isinstance(cached, DateRange):
            cached = resolve_date_range(self.date_start, self.date_end, context)
            context[_DATES_KEY] = cached  # type: ignore[literal-required]
        return cached

    def namespace(self, context: Context) -> dict[str, Any]:
        """Return what ``{{ sei.* }}`` holds: the range and the format's suffix; subclasses add
        theirs."""
        dates = self.dates(context)
        return {
            "date_start": dates.start.isoformat(),
            "date_end": dates.end.isoformat(),
            "suffix": file_suffix(self.output_format),
        }

    def on_kill(self) -> None:
        """Stop the hook's waits (rate limiter, polling) when the task is killed."""
        hook = self.__dict__.get("hook")
        if hook is not None:
            hook.cancel.set()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        result = super().__deepcopy__(memo)  # type: ignore[misc]
        result.__dict__.pop("hook", None)
        return result

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        state.pop("hook", None)
        return state


class SEIExportBaseOperator(SEIOperatorMixin, BaseOperator):
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
        "max_header_bytes",
        "max_row_bytes",
    )
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
        max_header_bytes: int | str | None = None,
        max_row_bytes: int | str | None = None,
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
        self.max_header_bytes = max_header_bytes
        self.max_row_bytes = max_row_bytes
        self.progress_interval = progress_interval

    @cached_property
    def hook(self) -> SEIHook:
        """The hook, built once per task run."""
        from airflow_provider_sei.hooks.sei import SEIHook

        return SEIHook(harness_sei_conn_id=self.harness_sei_conn_id)

    # -- executing ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():
            if "sei" not in context:  # execute() called without rendering (a test, a @task)
                context["sei"] = Namespace(self.namespace(context))  # type: ignore[typeddict-unknown-key]
            dates = self.dates(context)
            self.lineage_input = self.lineage_source(context)
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
            output_format=result.output_format,
            added_columns=list(output.columns),
        )
        return summary

    def lineage_source(self, context: Context) -> str:
        """Return the input dataset's name: the export kind and the collection or team."""
        return self._kind

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the lineage of the finished export (``apache-airflow-providers-openlineage``).

        The SEI export is the input dataset, the written object the output, with a schema
        facet from the report's header and row count and byte size as statistics.
        """
        from airflow_provider_sei.lineage import operator_lineage

        return operator_lineage(getattr(self, "lineage_facts", None))

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """Return the input of a failed export only: nothing was written.

        Without it the OpenLineage provider would name the task's outlets (an ``Asset``
        destination) as outputs of a run that never wrote them.
        """
        from airflow_provider_sei.lineage import operator_lineage

        source = getattr(self, "lineage_input", None)
        try:
            base_url = self.hook.base_url if source else ""
        except Exception:  # the connection itself was the problem
            base_url = ""
        facts = LineageFacts(base_url=base_url, source=source) if base_url and source else None
        return operator_lineage(facts)

    def export(
        self, context: Context, dates: DateRange, output: OutputOptions
    ) -> tuple[ExportResult, dict[str, Any]]:
        """Run the export; return its result and the XCom keys the operator adds."""
        raise NotImplementedError

    def destination_arg(self) -> Any:
        """Return what the hook writes to: the ObjectStoragePath given, or the rendered URI."""
        return self.destination_path if self.destination_path is not None else self.destination

    def output_options(self, context: Context) -> OutputOptions:
        """Validate the output parameters (before any request) into ``OutputOptions``."""
        if_empty = parse_choice("if_empty", self.if_empty, IF_EMPTY_CHOICES)
        self.if_empty = if_empty
        names = parse_add_columns(parse_names("add_columns", self.add_columns, "column names"))
        values = self.column_values(context)
        return OutputOptions(
            output_format=parse_output_format(self.output_format),
            columns={name: values[name] for name in names},
            overwrite=parse_bool("overwrite", self.overwrite),
            write_empty=if_empty == "write",
        )

    def column_values(self, context: Context) -> dict[str, str]:
        """Return the values of the metadata columns ``add_columns`` may name."""
        sei = context["sei"]  # type: ignore[typeddict-item]
        return {
            "date_start": sei["date_start"],
            "date_end": sei["date_end"],
            "granularity": str(sei.get("granularity") or ""),
            "collection_id": str(sei.get("collection_id") or ""),
            "team_id": str(sei.get("team_id") or sei.get("collection_id") or ""),
            "export_type": str(sei.get("export_type") or self._kind),
            "exported_at": exported_at(context),
            "run_id": str(context.get("run_id") or ""),
        }

    def csv_limits(self) -> CSVLimits:
        """Validate ``max_bytes``, ``max_header_bytes`` and ``max_row_bytes`` (None: default)."""

        def cap(name: str) -> int | None:
            value = getattr(self, name)
            return None if is_nullish(value) else parse_int(name, value, minimum=1)

        return CSVLimits(cap("max_bytes"), cap("max_header_bytes"), cap("max_row_bytes"))


def exported_at(context: Context) -> str:
    """Return the ``exported_at`` column's value: the task's start (else now), ISO 8601 in UTC."""
    started = getattr(context.get("ti"), "start_date", None) or datetime.now(timezone.utc)
    return started.astimezone(timezone.utc).isoformat()


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
