"""The worker's web endpoints: health and each collector's funnel."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from streams.runtime import Runtime


def register_views(app: faust.App, runtime: Runtime) -> None:
    """Mount ``/collectors/stats/`` and ``/collectors/healthz/`` on the worker's web server."""

    @app.page("/collectors/stats/")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            snapshot: dict[str, Any] = runtime.ledger.snapshot()
            snapshot["last_errors"] = dict(runtime.last_errors)
            snapshot["collectors_loaded"] = len(runtime.index)
            snapshot["pending"] = runtime.ledger.pending()
            snapshot["poster"] = {"requests": runtime.poster.requests, "retries": runtime.poster.retries}
            return self.json(snapshot)

    @app.page("/collectors/healthz/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})
