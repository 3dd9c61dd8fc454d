"""PostModelOutputs on the wire, shared by the reference model and the tap: its REST routes and the status
codes of its answers."""

from __future__ import annotations

import re

from streams.services.clarifai_grpc import METHODS, http_bindings

SUCCESS = 10000
MIXED_STATUS = 10010
FAILURE = 10020


def _route(template: str) -> str:
    """An HTTP binding's path as an aiohttp route: each path field named by its last part."""
    return re.sub(r"\{(?:[^}]*\.)?([^}.]+)\}", r"{\1}", template)


POST_MODEL_OUTPUTS_ROUTES = tuple(_route(path) for _, path, _ in http_bindings(METHODS["PostModelOutputs"]))
"""Every REST binding of PostModelOutputs in Clarifai's protos, as aiohttp routes (the deployment's id as
``{id}``)."""
