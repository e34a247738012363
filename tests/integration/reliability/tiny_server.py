"""A tiny server on 127.0.0.1 answering the reports endpoint with exactly the status, headers
and bytes a test gives it: for what the emulator cannot send (a CSV whose rows disagree with its
header, odd Content-Types, an error body that drips in byte by byte). It is a
``tests/hostile.py`` server whose every reply is the test's ``reply``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hostile
from hostile import HostileServer, Request

from .helpers import REPORTS_PATH, SECRET_KEY


@dataclass
class Reply:
    """What the server sends.

    :param length: the announced Content-Length, when it should differ from the body's.
    :param drip_s: a pause before every byte of the body but the first.
    """

    body: bytes
    content_type: str | None = "text/csv; charset=utf-8"
    length: int | None = None
    status: int = 200
    drip_s: float = 0.0

    def acts(self) -> list[hostile.Act]:
        """Build the acts: a report attachment's headers; a close when the length lies."""
        headers: dict[str, Any] = {}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        headers["Content-Disposition"] = 'attachment; filename="report.csv"'
        if self.length is not None and self.length != len(self.body):
            headers["Connection"] = "close"
        drip = (1, self.drip_s) if self.drip_s else None
        return hostile.response(self.status, headers, self.body, content_length=self.length,
                                drip_body=drip)  # fmt: skip


class TinyServer(HostileServer):
    """Answers ``reply`` to POSTs of the reports endpoint with the suite's key, else 401.

    ``hits`` counts the requests since the last ``reset()``.
    """

    def __init__(self) -> None:
        super().__init__(default=self._answer)
        self.reply = Reply(b"")

    def _answer(self, request: Request) -> list[hostile.Act]:
        if request.path != REPORTS_PATH or request.headers.get("x-api-key") != SECRET_KEY:
            return hostile.json_error(401, "Invalid API key")
        return self.reply.acts()
