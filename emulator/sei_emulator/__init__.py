"""A local, faithful Harness SEI server for tests, demos and benchmarks.

Stdlib only; it imports neither Airflow nor the provider. It serves, over one deterministic
synthetic org:

- the legacy reports endpoint, ``POST /v2/insights/teams/reports?format=csv``, and the
  org-tree endpoints (``GET /v2/org-trees``, ``/v2/org-trees/{id}``, ``.../teams``);
- the asynchronous V2 export jobs, ``/v2/insights/{type}/exports`` for the five types
  ``efficiency``, ``productivity``, ``sprint``, ``ba`` and ``ticket-data``: create (202, or 200
  for an identical request within 30 minutes), poll ``.../exports/{exportId}`` (``QUEUED`` →
  ``PROCESSING`` → ``COMPLETED`` after ``V2Settings.complete_after_polls`` polls or
  ``complete_after_seconds``), download ``.../exports/{exportId}/download`` (plain CSV, a
  ``.csv.gz`` file, or ``Content-Encoding: gzip``), list ``GET .../exports``. The sprint
  page's plural poll path ``/v2/insights/sprints/exports/...`` is served too.

>>> from sei_emulator import SEIEmulator, Faults, Fault, JobFault, V2Settings
>>> with SEIEmulator(port=0, seed=42, teams=12) as emu:  # doctest: +SKIP
...     url = emu.base_url + "/v2/insights/teams/reports?format=csv"
...     emu.set_faults(Faults(jobs=[JobFault.fail("boom")]))  # the next new job fails
...     emu.set_v2(V2Settings(complete_after_polls=0, status_case="lower"))
...     # ... create and poll jobs over HTTP, then inspect them:
...     [(j.export_id, j.status, j.polls) for j in emu.jobs.values()]
...     [(r.method, r.path, r.status, r.fault) for r in emu.requests]

The default API key is ``sei-emulator-key`` (header ``x-api-key`` or
``authorization: ApiKey sei-emulator-key``; V2 also ``SEI_API_KEY``). V2 requests need the
``projectIdentifier`` and ``orgIdentifier`` query parameters. The default org (``teams=12``)
has team ref ids 1 (the root; ``collectionId "1"``), 123, 456, 789 (the API page's examples)
and 1001-1008; its one org tree is named after the root team (``emu.org.root.name``).
Run it standalone with ``python -m sei_emulator --help``.
"""

from __future__ import annotations

from sei_emulator.emulator import DEFAULT_API_KEY, SEIEmulator
from sei_emulator.faults import Fault, Faults, JobFault
from sei_emulator.server import RecordedRequest
from sei_emulator.v2_jobs import ExportJob, JobStatus
from sei_emulator.v2_settings import V2Settings

__all__ = [
    "DEFAULT_API_KEY",
    "ExportJob",
    "Fault",
    "Faults",
    "JobFault",
    "JobStatus",
    "RecordedRequest",
    "SEIEmulator",
    "V2Settings",
]
