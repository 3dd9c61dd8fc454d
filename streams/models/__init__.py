"""Calling models for workflow ``model`` nodes: Clarifai's PostModelOutputs (REST, gRPC) and the Open
Inference Protocol v2 (REST), batched, limited, retried and cached (:mod:`streams.models.gateway`)."""
