"""The worker's web endpoints: health, the ledger of the partitions it holds, and its collectors."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from streams.runtime import Runtime


def register_views(app: faust.App, runtime: Runtime) -> None:
    """Mount ``/collectors/stats/``, ``/collectors/list/`` and ``/collectors/healthz/``."""

    @app.page("/collectors/stats/")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            totals = runtime.totals({(tp.topic, tp.partition) for tp in app.assignor.assigned_actives()})
            snapshot: dict[str, Any] = totals.snapshot()
            snapshot["pending"] = totals.pending()
            snapshot["ready"] = runtime.ready.is_set()
            snapshot["last_errors"] = dict(runtime.last_errors)
            snapshot["config_errors"] = dict(runtime.config_errors)
            snapshot["collectors_loaded"] = len(runtime.index)
            snapshot["poster"] = {
                "requests": runtime.poster.requests,
                "retries": runtime.poster.retries,
                **runtime.posting,
            }
            return self.json(snapshot)

    @app.page("/collectors/list/")
    class Collectors(View):
        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    "collectors": [
                        {
                            "id": c.id,
                            "status": c.spec.status,
                            "last_error": c.last_error or runtime.last_errors.get(c.id),
                        }
                        for c in runtime.index
                    ]
                }
            )

    @app.page("/collectors/healthz/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "ready": runtime.ready.is_set()})
