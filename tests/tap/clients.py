"""The official client (clarifai-grpc) over its two channels, and the inputs the tests send."""

from __future__ import annotations

import io
from typing import Any

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from PIL import Image, ImageDraw


def json_stub(base_url: str) -> Any:
    """A V2 stub over the client's JSON channel (REST)."""
    channel = ClarifaiChannel.get_json_channel(base_url=base_url)
    return service_pb2_grpc.V2Stub(channel)  # built right after its channel: the client keys on the last one


def grpc_stub(port: int) -> Any:
    """A V2 stub over the client's plain gRPC channel."""
    channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=port)
    return service_pb2_grpc.V2Stub(channel)


def metadata(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Key {key}"),)


def png(color: tuple[int, int, int], size: tuple[int, int] = (96, 64), *, stripes: bool = False) -> bytes:
    """A PNG of one colour (with white stripes: a detailed, high-contrast picture)."""
    image = Image.new("RGB", size, color)
    if stripes:
        draw = ImageDraw.Draw(image)
        for x in range(0, size[0], 6):
            draw.rectangle((x, 0, x + 2, size[1]), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def image_input(data: bytes, input_id: str = "") -> Any:
    return resources_pb2.Input(id=input_id, data=resources_pb2.Data(image=resources_pb2.Image(base64=data)))


def text_input(text: str, input_id: str = "") -> Any:
    return resources_pb2.Input(id=input_id, data=resources_pb2.Data(text=resources_pb2.Text(raw=text)))


def outputs_request(
    inputs: list[Any], *, model_id: str = "general", user_id: str = "", app_id: str = "", version_id: str = ""
) -> Any:
    """A PostModelOutputsRequest; which REST binding the client picks follows from the fields given."""
    user_app = resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id) if user_id else None
    return service_pb2.PostModelOutputsRequest(
        user_app_id=user_app, model_id=model_id, version_id=version_id, inputs=inputs
    )
