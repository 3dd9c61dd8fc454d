"""``model``: call a model on the original input; the nodes after it judge the model's output.

Two protocols: Clarifai's PostModelOutputs (``protocol: clarifai``, over ``transport: rest`` or ``grpc``) and
the Open Inference Protocol v2 (``protocol: open_inference``, REST: KServe, Triton, MLServer, Seldon), the
input sent as a BYTES tensor and the class probabilities mapped to concepts by ``labels`` (or the labels of
the model's metadata, ``parameters.labels``). The node replaces the candidate's concepts by the model's
(its regions are dropped) and sets its embedding (for ``novelty_above``, ``similar_to``); it stops nothing
unless the model fails and ``on_error`` is ``drop``:

* ``wait`` (default): the input waits until the model answers (retried with backoff for as long as it takes;
  the queue waits in Kafka meanwhile); an input the model refuses for good goes to the dead-letter topic;
* ``keep``: after ``attempts`` tries the input passes, unjudged by the model (the nodes after it see the
  concepts from before it, and no embedding), counted as ``model_kept:<node>``;
* ``drop``: after ``attempts`` tries the input stops here (``post_out:<node>`` in the funnel).

Offline (``collectors simulate --offline``) the node does not call the model: the input passes unjudged,
counted as ``model_skipped:<node>``.

Example node::

    {operator: model, protocol: clarifai, url: "https://api.clarifai.com", user_id: clarifai, app_id: main,
     model_id: general-image-embedding, key_env: CLARIFAI_PAT}
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.core.models import ModelFailed, ModelSpec, input_of
from streams.core.operators._inputs import input_data
from streams.core.operators.base import AsyncDecision, Candidate, Operator

CLARIFAI_BATCH_LIMIT = 128
KEPT_PREFIX = "model_kept:"
SKIPPED_PREFIX = "model_skipped:"


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: Literal["clarifai", "open_inference"]
    transport: Literal["rest", "grpc"] = "rest"
    url: str = Field(min_length=1, description="REST base URL, or gRPC target host:port (https://host for TLS).")
    model_id: str = Field(min_length=1, description="Clarifai's model id, or the model's name (Open Inference).")
    version_id: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    key: SecretStr | None = None
    key_env: str | None = None
    labels: list[str] | None = Field(default=None, min_length=1)
    probabilities_output: str | None = None
    embedding_output: str | None = None
    batch_size: int = Field(default=CLARIFAI_BATCH_LIMIT, ge=1, le=1024)
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)
    attempts: int = Field(default=4, ge=1, le=100)
    on_error: Literal["wait", "keep", "drop"] = "wait"
    use_as_labels: bool = False
    max_concepts: int = Field(default=200, ge=1)
    min_value: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> ModelParams:
        if self.protocol == "clarifai":
            if self.key is None and self.key_env is None:
                raise ValueError("a Clarifai model needs `key` or `key_env` (a variable holding the key)")
            if self.batch_size > CLARIFAI_BATCH_LIMIT:
                raise ValueError(f"`batch_size`: Clarifai takes at most {CLARIFAI_BATCH_LIMIT} inputs per call")
            if (self.user_id is None) != (self.app_id is None):
                raise ValueError("give both `user_id` and `app_id`, or neither (a key of the model's app)")
            if self.labels is not None:
                raise ValueError("`labels` is for Open Inference models; a Clarifai model answers concepts")
        else:
            if self.transport != "rest":
                raise ValueError("the Open Inference Protocol is served over `transport: rest`")
            if self.user_id is not None or self.app_id is not None:
                raise ValueError("`user_id` and `app_id` name a Clarifai model, not an Open Inference one")
        if self.transport == "rest" and not self.url.startswith(("http://", "https://")):
            raise ValueError("`url` must start with http:// or https:// over REST")
        if self.key is not None and self.key_env is not None:
            raise ValueError("give `key` or `key_env`, not both")
        return self

    def spec(self) -> ModelSpec:
        """The endpoint, with the key resolved (``ValueError`` when ``key_env`` is not set)."""
        key = self.key.get_secret_value() if self.key is not None else None
        if self.key_env is not None:
            key = os.environ.get(self.key_env)
            if not key:
                raise ValueError(f"environment variable {self.key_env!r} (`key_env`) is not set")
        return ModelSpec(
            protocol=self.protocol,
            transport=self.transport,
            url=self.url.rstrip("/"),
            model_id=self.model_id,
            version_id=self.version_id,
            user_id=self.user_id,
            app_id=self.app_id,
            key=key,
            labels=tuple(self.labels) if self.labels is not None else None,
            probabilities_output=self.probabilities_output,
            embedding_output=self.embedding_output,
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            attempts=self.attempts,
            wait=self.on_error == "wait",
            max_concepts=self.max_concepts,
            min_value=self.min_value,
        )


def build(params: ModelParams, label: str = "model") -> AsyncDecision:
    spec = params.spec()

    async def model(candidate: Candidate) -> bool:
        calls = candidate.models
        if calls is None:
            candidate.notes.append(SKIPPED_PREFIX + label)
            return True
        item = input_of(input_data(candidate))
        if item is None:  # nothing a model can read (no image, no text): a failure no wait can mend
            if params.on_error == "drop":
                return False
            candidate.notes.append(KEPT_PREFIX + label)
            return True
        try:
            answer = await calls.predict(spec, candidate.event_id, item)
        except ModelFailed:
            if params.on_error == "drop":
                return False
            candidate.notes.append(KEPT_PREFIX + label)
            return True
        candidate.concepts, candidate.regions = answer.concepts, []
        candidate.embedding, candidate.embedded_by = answer.embedding, spec
        if params.use_as_labels:
            candidate.labels = answer.concepts
        return True

    return model


OPERATOR = Operator(
    name="model", stages=("pre", "post"), params=ModelParams, build=build, is_async=True, calls_model=True
)
