"""The hook's async transport, for triggers: what :class:`~.transport.SEIAdapter` is to the sync
calls, over ``httpx``.

One :class:`AsyncTransport` per hook and event loop: its client (and so its connection) is
reused from poll to poll, and is built in a thread, since loading the CA bundle takes about
0.1 s that would block every trigger of the triggerer's loop. Each request pays the hook's
rate limiter (a slot beyond the call's deadline is refused, not waited for), reports 429s to
it, is bounded by the call's deadline with ``asyncio.wait_for`` (headers included), and reads
at most ``max_bytes`` of JSON. Errors are the hook's, built by :mod:`.errors`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from airflow_provider_sei import __version__
from airflow_provider_sei.exceptions import SEIAPIError, SEIResponseError, SEITimeoutError
from airflow_provider_sei.hooks.errors import status_error, unreachable_async
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.hooks.redact import Redactor
from airflow_provider_sei.hooks.settings import ConnectionSettings
from airflow_provider_sei.hooks.stream import EXCERPT_BYTES, excerpt
from airflow_provider_sei.hooks.transport import now


class AsyncTransport:
    """Sends the hook's async GETs: rate limit, deadline, bounded JSON, redacted errors.

    :param settings: the connection's settings (auth, scope, TLS, proxies).
    :param timeout: ``(connect, read)`` seconds.
    :param redact: removes the key from server text quoted in errors.
    :param limiter: the hook's requests-per-minute budget, or None.
    :param max_bytes: the largest JSON answer read.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        timeout: tuple[float, float],
        redact: Redactor,
        limiter: RateLimiter | None,
        max_bytes: int,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.redact = redact
        self.limiter = limiter
        self.max_bytes = max_bytes
        self.loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    async def get_json(self, url: str, until: float, max_elapsed: float) -> Any:
        """Return the JSON answer of one GET of ``url``, finished by ``until`` (a ``now()``).

        :param max_elapsed: the call's bound in seconds, for the timeout's message.
        """
        what = f"GET {url}"
        if self.limiter is not None:
            try:
                await asyncio.sleep(self.limiter.reserve(until - now())[1])
            except TimeoutError as exc:
                raise SEITimeoutError(
                    f"Waiting for the rate limiter would pass {what}'s time bound ({exc})"
                ) from None
        try:
            answer = await asyncio.wait_for(self._get(url), max(until - now(), 0.001))
        except asyncio.TimeoutError:
            raise SEITimeoutError(
                f"{what} exceeded its time bound (max_elapsed={max_elapsed:g} s)"
            ) from None
        except SEIAPIError as err:
            if self.limiter is not None and err.status_code == 429:
                self.limiter.on_throttled(err.retry_after)  # as the sync adapter does
            raise
        if self.limiter is not None:
            self.limiter.on_success()
        return answer

    async def aclose(self) -> None:
        """Close the client (a trigger calls it when it is done)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self.loop = asyncio.get_running_loop()
            self._client = await asyncio.to_thread(self._build)
        return self._client

    def _build(self) -> httpx.AsyncClient:
        settings = self.settings
        connect, read = self.timeout
        mounts = {
            f"{scheme}://": httpx.AsyncHTTPTransport(proxy=proxy, verify=settings.verify)
            for scheme, proxy in settings.proxies.items()
        }
        return httpx.AsyncClient(
            verify=settings.verify,
            timeout=httpx.Timeout(read, connect=connect),
            follow_redirects=False,
            trust_env=not settings.proxies,
            mounts=mounts or None,
        )

    async def _get(self, url: str) -> Any:
        settings = self.settings
        headers = {"Accept": "application/json", **settings.auth_headers(v2=True)}
        headers["User-Agent"] = f"airflow-provider-sei/{__version__}"
        client = await self._client_for_loop()
        try:
            async with client.stream(
                "GET", url, params=settings.scope_params(), headers=headers
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise SEIResponseError(
                            f"GET {url} answered more than {self.max_bytes} bytes"
                        )
                status, reason = response.status_code, response.reason_phrase
                answer_headers, final_url = response.headers, str(response.url)
        except httpx.HTTPError as exc:
            raise unreachable_async(
                exc, settings.host, self.timeout, settings.scheme_assumed
            ) from None
        head = bytes(data[:EXCERPT_BYTES])
        if not 200 <= status < 300:
            raise status_error(
                status, reason, answer_headers, final_url, head, self.redact, "exports"
            )
        try:
            return json.loads(data)
        except ValueError:
            quoted = excerpt(head, self.redact)
            raise SEIResponseError(f"GET {url} did not answer JSON: {quoted}") from None
