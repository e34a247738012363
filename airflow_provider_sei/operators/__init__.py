"""Operators of the Harness SEI provider.

* :class:`SEIExportOperator` (``operators.exports``): a V2 export job, polled or deferred;
* :class:`SEITeamReportOperator`, :class:`SEIContributorReportOperator` (``operators.reports``):
  the legacy reports endpoint;
* :class:`SEIMultiTeamReportOperator` (``operators.fanout``): many teams of the legacy endpoint.

Imported lazily: ``import airflow_provider_sei.operators`` loads none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "SEIExportOperator": "exports",
    "SEITeamReportOperator": "reports",
    "SEIContributorReportOperator": "reports",
    "SEIMultiTeamReportOperator": "fanout",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
