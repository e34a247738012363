"""Names that moved between the Airflow versions we support (3.1 to 3.3)."""

from __future__ import annotations

try:  # Airflow >= 3.2 (Task SDK 1.2+)
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.1: the Task SDK does not export them yet
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )

__all__ = ["AirflowException", "AirflowFailException", "AirflowSkipException"]
