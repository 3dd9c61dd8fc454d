"""The reference model's gRPC service: Clarifai's ``V2/PostModelOutputs``, answered as the REST route answers.

Every other V2 call answers NOT_IMPLEMENTED (:class:`streams.services.clarifai_grpc.V2Base`).
"""

from __future__ import annotations

from typing import Any

import grpc
from clarifai_grpc.grpc.api import service_pb2
from google.protobuf.message import Message

from streams.services.clarifai_grpc import METHODS, V2Base, answer, code_of, from_json, request_key, to_json
from streams.services.model.outputs import Fetch, ModelService, post_model_outputs


class ModelServicer(V2Base):
    """PostModelOutputs of the reference model."""

    def __init__(self, service: ModelService, fetch: Fetch) -> None:
        self._service = service
        self._fetch = fetch

    async def PostModelOutputs(self, request: Any, context: grpc.aio.ServicerContext) -> Message:
        """The same answer as the REST route's for the same request."""
        if request_key(context) is None:
            return answer(
                METHODS["PostModelOutputs"],
                code_of("CONN_KEY_INVALID"),
                "API key not found",
                "send the metadata 'authorization: Key <key>'",
            )
        path = {
            "user_id": request.user_app_id.user_id,
            "app_id": request.user_app_id.app_id,
            "model_id": request.model_id,
            "version_id": request.version_id,
            "id": request.runner_selector.deployment.id,
        }
        _, document = await post_model_outputs(to_json(request), path, self._service, self._fetch)
        return from_json(service_pb2.MultiOutputResponse, document)
