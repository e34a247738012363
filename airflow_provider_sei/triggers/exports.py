"""Wait for a V2 export job in the triggerer, so no worker slot is held while the job runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sei.exceptions import SEIError
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.models.exports import CANCELLED, FAILED, ExportJob

if TYPE_CHECKING:
    from airflow_provider_sei.hooks.sei import SEIHook


class SEIExportTrigger(BaseTrigger):
    """Poll a V2 export job until it finished or ``end_time`` passed; yield one event.

    Polls through :meth:`SEIHook.aget_export`: the hook's connection settings, auth,
    redaction, retry policy, time bounds and rate limit, over ``httpx``.

    The event's payload: ``status`` (``success``, ``failed``, ``timeout`` or ``error``),
    ``job`` (the job as :meth:`ExportJob.to_dict` gives it), ``message`` (redacted) and
    ``retryable`` (for ``error``: whether a task retry may succeed).

    :param job: the job, as :meth:`ExportJob.to_dict` gives it.
    :param harness_sei_conn_id: the Harness SEI connection.
    :param poll_interval: seconds between two polls.
    :param end_time: a Unix time: the job may run until then (the operator's ``max_wait``).
    :param requests_per_minute: a budget the polls pay, or None.
    """

    def __init__(
        self,
        job: dict[str, Any],
        harness_sei_conn_id: str,
        poll_interval: float,
        end_time: float,
        requests_per_minute: float | None = None,
    ) -> None:
        super().__init__()
        self.job = job
        self.harness_sei_conn_id = harness_sei_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.requests_per_minute = requests_per_minute

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job": self.job,
                "harness_sei_conn_id": self.harness_sei_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "requests_per_minute": self.requests_per_minute,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_sei.hooks.sei import SEIHook

        hook = SEIHook(
            harness_sei_conn_id=self.harness_sei_conn_id,
            requests_per_minute=self.requests_per_minute,
        )
        try:
            event = await self._wait(hook, ExportJob.from_dict(self.job))
        finally:
            await hook.aclose()
        yield event

    async def _wait(self, hook: SEIHook, job: ExportJob) -> TriggerEvent:
        """Poll until the job finished or ``end_time`` passed; the one event to yield."""
        try:
            while True:
                job = await hook.aget_export(job)
                self.log.info("SEI export job %s: %s", job.export_id, job.status or "no status")
                if job.status in (FAILED, CANCELLED):
                    return self._event(hook, "failed", job, job.message)
                if job.finished:
                    return self._event(hook, "success", job)
                left = self.end_time - time.time()
                if left <= 0:
                    return self._event(
                        hook,
                        "timeout",
                        job,
                        "the job had not finished by max_wait "
                        f"(last status: {job.status or 'none'})",
                    )
                await asyncio.sleep(min(self.poll_interval, left))
        except Exception as err:  # an event, not a trigger crash: the task says what failed
            retryable = isinstance(err, SEIError) and RetryPolicy().is_retryable(err)
            return self._event(hook, "error", job, str(err), retryable=retryable)

    @staticmethod
    def _event(
        hook: SEIHook, status: str, job: ExportJob, message: str = "", *, retryable: bool = False
    ) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "job": job.to_dict(),
                "message": hook.redactor(message),
                "retryable": retryable,
            }
        )
