"""Reading MyScopes answers: the reference destination's, and Clarifai's shape (no user_id/app_id/key_id
extras; Clarifai's scope names and endpoint names)."""

from __future__ import annotations

from streams.services.management.auth import record_of


def test_clarifai_shape_grants_post_inputs_by_scope_name_or_endpoint() -> None:
    body = {
        "status": {"code": 10000, "description": "Ok"},
        "scopes": ["Inputs:Add", "Predict"],
        "app": {"id": "photos", "user_id": "alice", "name": "photos"},
        "endpoints": ["/clarifai.api.V2/PostModelOutputs"],
    }
    record = record_of(body, "0123456789abcdef", None)
    assert (record.user_id, record.app_id, record.key_id) == ("alice", "photos", "0123…")
    assert record.access_problem("alice", "photos", "PostInputs") is None
    assert record.access_problem("alice", "photos", "ListInputs") is not None
    by_endpoint = record_of({**body, "scopes": [], "endpoints": ["/clarifai.api.V2/PostInputs"]}, "k" * 16, None)
    assert by_endpoint.access_problem("alice", "photos", "PostInputs") is None
    assert record_of({**body, "scopes": ["All"]}, "k" * 16, None).access_problem("alice", "videos", "PostInputs")


def test_reference_destination_extras_win() -> None:
    body = {
        "scopes": ["All"],
        "app": {"id": "photos", "user_id": "alice"},
        "user_id": "alice",
        "app_id": None,
        "key_id": "key-1",
    }
    record = record_of(body, "0123456789abcdef", "alice")
    assert (record.app_id, record.key_id) == (None, "key-1")  # a user-wide key covers every app of alice
    assert record.access_problem("alice", "videos", "PostInputs") is None
