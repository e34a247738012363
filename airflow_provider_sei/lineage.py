"""OpenLineage for the export operators: the SEI export in, the written object out.

Imported lazily by the operators' ``get_openlineage_facets_on_complete``: the provider works
without ``apache-airflow-providers-openlineage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LineageFacts:
    """What an export did, recorded by the operator for its lineage.

    :param base_url: the SEI API's base URL (the input's namespace comes from it).
    :param source: the export kind and the collection or team (the input's name).
    :param outputs: URIs of the files written.
    :param columns: the report's header.
    :param rows: data rows written.
    :param bytes: bytes written.
    """

    base_url: str
    source: str
    outputs: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


def operator_lineage(facts: LineageFacts | None) -> Any:
    """The ``OperatorLineage`` of an export (empty before the export ran)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    if facts is None:
        return OperatorLineage()
    raise NotImplementedError
