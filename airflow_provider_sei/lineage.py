"""OpenLineage for the export operators: the SEI export in, the written object out.

With ``apache-airflow-providers-openlineage`` installed, the provider's ``DefaultExtractor``
calls each operator's ``get_openlineage_facets_on_complete``, which returns
:func:`operator_lineage` of the :class:`LineageFacts` the operator recorded after writing.
Everything OpenLineage is imported inside :func:`operator_lineage`: the provider works
without the OpenLineage provider, and importing this module never imports it.

**Input dataset: the SEI export the rows came from.**

* namespace: the origin of the connection's base URL, ``scheme://host[:port]`` (host in
  lower case, the scheme's default port left out): ``https://app.harness.io``.
* name: the base URL's path, then what was exported:

  - ``reports/team/{collection_id}``, ``reports/contributor/{collection_id}`` (legacy
    reports), e.g. ``gateway/sei/api/reports/team/123``;
  - ``exports/{export_type}/team/{team_id}`` or ``exports/{export_type}/org-tree/{name}``
    (V2 export jobs), e.g. ``gateway/sei/api/exports/efficiency/team/123``.

  The date range is not part of the name: each run is a new version of the same dataset,
  as each day's load is of a table. The multi-team operator has one input per team exported.

**Output dataset: the object written**, named as the OpenLineage naming spec names it
(https://openlineage.io/docs/spec/naming), as Airflow's own asset converters do:

* S3 (``s3``, ``s3a``, ``s3n``): namespace ``s3://{bucket}``, name the key
  (``s3://reports/sei/2024-01-01.csv`` -> ``s3://reports`` + ``sei/2024-01-01.csv``);
* GCS (``gs``, ``gcs``): namespace ``gs://{bucket}``, name the object's path;
* local file system: namespace ``file``, name the absolute path (``file:///data/x.csv`` ->
  ``file`` + ``/data/x.csv``); a URI naming a host (``file://host/data/x.csv``) gets
  ``file://{host}``, the spec's remote file system;
* any other store: namespace ``{scheme}://{authority}``, name the path.

A file-object destination has no name: no output dataset.

**Facets.**

* ``schema`` on the input: the report's header as the API sent it, each field of type
  ``string`` (a CSV holds text).
* ``schema`` on each output: the written file's columns -- the header, then the columns
  ``add_columns`` appended. Types: ``string`` for ``csv`` and ``csv.gz``; for ``parquet`` the
  Arrow type the column's name gives it (``double``, ``string``, ``date32[day]``,
  ``timestamp[us, tz=UTC]``: see :mod:`airflow_provider_sei.output.formats`). A typed column
  whose first rows held other values is written as strings, which this facet cannot know.
* ``outputStatistics`` on each output: ``rowCount`` (data rows, the header excluded) and
  ``size`` (bytes written, after compression or conversion).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Schemes whose first path segment is a bucket: namespace ``{scheme}://{bucket}``, name the key.
_BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CSV_TYPE = "string"


@dataclass(frozen=True)
class LineageFacts:
    """What an export did, recorded by the operator for its lineage.

    :param base_url: the SEI API's base URL (the input's namespace comes from it).
    :param source: the export kind and the collection or team (the input's name, after the
        base URL's path). Empty: no input of its own (the multi-team merged file, whose inputs
        are the teams' exports).
    :param outputs: URIs of the files written (none for a file object).
    :param columns: the report's header, as the API sent it.
    :param rows: data rows written.
    :param bytes: bytes written.
    :param output_format: ``csv``, ``csv.gz`` or ``parquet``.
    :param added_columns: the metadata columns appended to every row (``add_columns``).
    """

    base_url: str
    source: str
    outputs: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    output_format: str = "csv"
    added_columns: list[str] = field(default_factory=list)

    def written_columns(self) -> list[str]:
        """Return the columns of the written file: the header, then the appended columns."""
        names = [*self.columns, *(c for c in self.added_columns if c not in self.columns)]
        if self.output_format == "parquet":
            from airflow_provider_sei.output.formats import unique_names

            return unique_names(names)
        return names


def input_name(base_url: str, source: str) -> tuple[str, str]:
    """Return the input dataset's ``(namespace, name)``: the API's origin, its path + ``source``."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    netloc = (parts.hostname or "").lower()
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{parts.port}"
    path = parts.path.strip("/")
    return f"{scheme}://{netloc}", f"{path}/{source}" if path else source


def output_name(uri: str) -> tuple[str, str]:
    """Return the output dataset's ``(namespace, name)`` of a written file's URI.

    The URI is split by hand rather than by ``urlsplit``: a key may hold ``#`` or ``?``,
    which are part of an object's name, not a fragment or a query.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:  # a bare local path
        return "file", uri
    scheme = scheme.lower()
    if scheme in _BUCKET_SCHEMES:
        bucket, _, key = rest.partition("/")
        return f"{_BUCKET_SCHEMES[scheme]}://{bucket}", key
    authority, slash, path = rest.partition("/")
    if scheme in ("file", "local"):
        return ("file" if authority in ("", "localhost") else f"file://{authority}"), "/" + path
    return f"{scheme}://{authority}", slash + path


def column_type(name: str, output_format: str) -> str:
    """Return a written column's type: ``string`` in a CSV, its Arrow type in Parquet."""
    if output_format != "parquet":
        return _CSV_TYPE
    from airflow_provider_sei.output.formats import _arrow_type, column_kind

    return str(_arrow_type(column_kind(name)))


def operator_lineage(facts: LineageFacts | Iterable[LineageFacts] | None) -> Any:
    """Return the ``OperatorLineage`` of one export, or of many (the multi-team operator).

    Empty before an export wrote anything (``facts`` None). Inputs are listed once each, in
    order; every output carries its file's schema and statistics.
    """
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    if facts is None:
        return OperatorLineage()
    all_facts = [facts] if isinstance(facts, LineageFacts) else list(facts)

    def schema(names: list[str], output_format: str) -> dict[str, Any]:
        if not names:
            return {}
        fields = [
            SchemaDatasetFacetFields(name=n, type=column_type(n, output_format)) for n in names
        ]
        return {"schema": SchemaDatasetFacet(fields=fields)}

    inputs: dict[tuple[str, str], Any] = {}
    outputs: list[Any] = []
    for fact in all_facts:
        if fact.source:
            key = input_name(fact.base_url, fact.source)
            if key not in inputs:
                inputs[key] = InputDataset(*key, facets=schema(fact.columns, "csv"))
        for uri in fact.outputs:
            stats = OutputStatisticsOutputDatasetFacet(rowCount=fact.rows, size=fact.bytes)
            outputs.append(
                OutputDataset(
                    *output_name(uri),
                    facets=schema(fact.written_columns(), fact.output_format),
                    outputFacets={"outputStatistics": stats},
                )
            )
    return OperatorLineage(inputs=list(inputs.values()), outputs=outputs)
