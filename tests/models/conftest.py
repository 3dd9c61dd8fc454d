from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streams.models.gateway import ModelGateway
from streams.services.model.outputs import ModelService
from streams.services.model.service import RunningModel, running


@pytest.fixture
async def model_service() -> AsyncIterator[RunningModel]:
    """The reference model over REST and gRPC, on free ports."""
    async with running(ModelService(), grpc_port=0) as model:
        yield model


@pytest.fixture
async def gateway() -> AsyncIterator[ModelGateway]:
    models = ModelGateway()
    yield models
    await models.close()
