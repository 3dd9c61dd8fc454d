"""PostInputs, ListInputs, GetInput and MyScopes with Clarifai's official client, as a user's code calls them.

Runs in the test process (the pinned release) and as a script (``python inputs_client.py ARGS_JSON``) in a
process whose path holds another release: it imports nothing but the client, and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from clarifai_grpc import __version__
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import json_format, struct_pb2


def _stub(channel: str, url: str, host: str, port: int) -> Any:
    if channel == "json":
        return service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=url))
    return service_pb2_grpc.V2Stub(ClarifaiChannel.get_insecure_grpc_channel(base=host, port=port))


def exercise(args: dict[str, Any]) -> dict[str, Any]:
    """The calls, over ``args["channel"]``; returns the codes and fields the test checks."""
    stub = _stub(args["channel"], args["url"], args["host"], args["port"])
    post_key = (("authorization", f"Key {args['post_key']}"),)
    list_key = (("authorization", f"Key {args['list_key']}"),)
    app = resources_pb2.UserAppIDSet(user_id=args["user_id"], app_id=args["app_id"])
    prefix = args["prefix"]
    metadata = struct_pb2.Struct()
    metadata.update({"camera": "north-gate"})
    inputs = [
        resources_pb2.Input(
            id=f"{prefix}-image",
            data=resources_pb2.Data(image=resources_pb2.Image(url="https://img.example/1.jpg"), metadata=metadata),
        ),
        resources_pb2.Input(id=f"{prefix}-text", data=resources_pb2.Data(text=resources_pb2.Text(raw="a dog"))),
    ]
    posted = stub.PostInputs(service_pb2.PostInputsRequest(user_app_id=app, inputs=inputs), metadata=post_key)
    again = stub.PostInputs(service_pb2.PostInputsRequest(user_app_id=app, inputs=inputs[:1]), metadata=post_key)
    wrong_key = stub.PostInputs(
        service_pb2.PostInputsRequest(user_app_id=app, inputs=inputs[:1]),
        metadata=(("authorization", "Key never-issued-key-0001"),),
    )
    listed = stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=app, page=1, per_page=100), metadata=list_key)
    got = stub.GetInput(service_pb2.GetInputRequest(user_app_id=app, input_id=f"{prefix}-image"), metadata=list_key)
    missing = stub.GetInput(service_pb2.GetInputRequest(user_app_id=app, input_id="nope"), metadata=list_key)
    scopes_app = stub.MyScopes(service_pb2.MyScopesRequest(user_app_id=app), metadata=post_key)
    scopes_own = stub.MyScopes(service_pb2.MyScopesRequest(), metadata=post_key)
    # No user_app_id: Clarifai's bindings without the app (/v2/inputs), the app being the key's.
    keyed = resources_pb2.Input(id=f"{prefix}-keyed", data=resources_pb2.Data(text=resources_pb2.Text(raw="a cat")))
    posted_keyed = stub.PostInputs(service_pb2.PostInputsRequest(inputs=[keyed]), metadata=post_key)
    listed_keyed = stub.ListInputs(service_pb2.ListInputsRequest(per_page=100), metadata=list_key)
    got_keyed = stub.GetInput(service_pb2.GetInputRequest(input_id=f"{prefix}-keyed"), metadata=list_key)
    return {
        "version": __version__,
        "has_collector_calls": hasattr(service_pb2, "PostCollectorsRequest"),
        "posted": [posted.status.code, [item.status.code for item in posted.inputs]],
        "again": [again.status.code, [item.status.code for item in again.inputs]],
        "wrong_key": wrong_key.status.code,
        "listed": [listed.status.code, [item.id for item in listed.inputs]],
        "got": [got.status.code, json_format.MessageToDict(got.input.data, preserving_proto_field_name=True)],
        "missing": missing.status.code,
        "scopes": [
            [reply.status.code, list(reply.scopes), reply.app.user_id, reply.app.id, list(reply.endpoints)]
            for reply in (scopes_app, scopes_own)
        ],
        "keyed": [
            posted_keyed.status.code,
            [item.id for item in listed_keyed.inputs],
            [got_keyed.status.code, got_keyed.input.data.text.raw],
        ],
        "success": status_code_pb2.SUCCESS,
    }


if __name__ == "__main__":
    print(json.dumps(exercise(json.loads(sys.argv[1]))))
