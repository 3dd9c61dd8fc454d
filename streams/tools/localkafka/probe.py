"""A dependency-free Kafka Metadata request: proves a broker is serving, not just listening."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_METADATA = 3
_VERSION = 4  # non-flexible, understood by brokers from 0.11 through 4.x
_CORRELATION_ID = 7
_CLIENT_ID = b"collectors-localkafka"


@dataclass(frozen=True, slots=True)
class BrokerNode:
    """One broker as listed in a Metadata response."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """The parts of a Metadata v4 response the readiness check needs."""

    brokers: tuple[BrokerNode, ...]
    cluster_id: str | None
    controller_id: int


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        size = self.take(">h")
        if size < 0:
            return None
        text = self.data[self.pos : self.pos + size].decode()
        self.pos += size
        return text


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


def fetch_metadata(host: str, port: int, timeout: float = 2.0) -> ClusterMetadata:
    """Send Metadata v4 (no topics) and parse the broker list; raises OSError or ValueError."""
    header = struct.pack(">hhih", _METADATA, _VERSION, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    body = struct.pack(">ib", 0, 0)  # empty topic array, allow_auto_topic_creation=false
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        reader = _Reader(_recv_exact(sock, size))
    try:
        if reader.take(">i") != _CORRELATION_ID:
            raise ValueError("Metadata response carries the wrong correlation id")
        reader.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(reader.take(">i")):
            node_id = reader.take(">i")
            node_host = reader.string() or ""
            node_port = reader.take(">i")
            reader.string()  # rack
            brokers.append(BrokerNode(node_id, node_host, node_port))
        cluster_id = reader.string()
        controller_id = reader.take(">i")
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed Metadata response: {exc}") from exc
    return ClusterMetadata(tuple(brokers), cluster_id, controller_id)
