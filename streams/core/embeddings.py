"""Cosine distances between embeddings, and a bounded memory of embeddings kept in operator state.

Memory layout in ``Candidate.state`` (a Faust table in the worker): ``<prefix>|meta`` holds
``{"dim": D, "count": C, "next": I}``, ``<prefix>|<chunk>`` holds up to :data:`CHUNK` vectors as base64 of
little-endian float32 (unit length), so keeping one embedding rewrites one chunk, not the whole memory, and
``<prefix>|<chunk>|ids`` the ids of the inputs they came from, row for row (a redelivered input is known).
Decoded chunks are cached by the identity of the stored value: a value recovered or written elsewhere is
decoded again.
"""

from __future__ import annotations

import base64
from collections.abc import MutableMapping, Sequence
from typing import Any

import numpy as np

CHUNK = 256
Vector = np.ndarray


def unit(vector: Sequence[float]) -> Vector | None:
    """``vector`` as float32 of unit length; None when it is empty, zero or not finite."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        return None
    norm = float(np.linalg.norm(array))
    return None if norm == 0.0 else array / norm


def nearest_distance(vector: Vector, matrix: Vector) -> float:
    """The cosine distance (1 - cosine similarity, in [0, 2]) from a unit ``vector`` to the nearest row of a
    matrix of unit rows; 2.0 when there is none."""
    if matrix.shape[0] == 0:
        return 2.0
    return float(1.0 - np.max(matrix @ vector))


class EmbeddingMemory:
    """The last ``size`` embeddings kept under a state prefix, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._decoded: dict[str, tuple[Any, Vector]] = {}

    def _meta(self, state: MutableMapping[str, Any], prefix: str) -> dict[str, int]:
        meta = state.get(f"{prefix}|meta")
        return dict(meta) if isinstance(meta, dict) else {"dim": 0, "count": 0, "next": 0}

    def _chunk(self, state: MutableMapping[str, Any], key: str, dim: int) -> Vector:
        stored = state.get(key)
        cached = self._decoded.get(key)
        if cached is not None and cached[0] is stored:
            return cached[1]
        if isinstance(stored, str) and dim:
            matrix = np.frombuffer(base64.b64decode(stored), dtype="<f4").reshape(-1, dim)
        else:
            matrix = np.zeros((0, dim), dtype=np.float32)
        self._decoded[key] = (stored, matrix)
        return matrix

    def nearest(self, state: MutableMapping[str, Any], prefix: str, vector: Vector) -> float:
        """The cosine distance from ``vector`` to the nearest remembered embedding (2.0 when none is, or they
        have another dimension: a changed model starts afresh)."""
        meta = self._meta(state, prefix)
        if meta["dim"] != vector.size or not meta["count"]:
            return 2.0
        chunks = (meta["count"] + CHUNK - 1) // CHUNK
        return min(nearest_distance(vector, self._chunk(state, f"{prefix}|{i}", meta["dim"])) for i in range(chunks))

    def remembers(self, state: MutableMapping[str, Any], prefix: str, ident: str) -> bool:
        """Whether the embedding of input ``ident`` is remembered."""
        meta = self._meta(state, prefix)
        for chunk in range((meta["count"] + CHUNK - 1) // CHUNK):
            ids = state.get(f"{prefix}|{chunk}|ids")
            if isinstance(ids, list) and ident in ids:
                return True
        return False

    def remember(self, state: MutableMapping[str, Any], prefix: str, vector: Vector, ident: str) -> None:
        """Keep ``vector``, the embedding of input ``ident``, forgetting the oldest beyond ``size``."""
        meta = self._meta(state, prefix)
        if meta["dim"] != vector.size:
            meta = {"dim": int(vector.size), "count": 0, "next": 0}
        slot = meta["next"]
        chunk, row = divmod(slot, CHUNK)
        key = f"{prefix}|{chunk}"
        kept = meta["count"] > chunk * CHUNK
        stored_ids = state.get(f"{key}|ids") if kept else None
        ids = list(stored_ids) if isinstance(stored_ids, list) else []
        ids = [*ids[:row], ident, *ids[row + 1 :]] if row < len(ids) else [*ids, *[""] * (row - len(ids)), ident]
        state[f"{key}|ids"] = ids
        rows = self._chunk(state, key, meta["dim"]) if kept else np.zeros((0, vector.size))
        matrix = np.array(rows, dtype=np.float32)
        if row < matrix.shape[0]:
            matrix[row] = vector
        else:
            matrix = np.vstack([matrix[:row], vector[None, :]]).astype(np.float32)
        value = base64.b64encode(matrix.astype("<f4").tobytes()).decode()
        state[key] = value
        self._decoded[key] = (state.get(key), matrix)
        meta["count"] = min(self.size, meta["count"] + 1)
        meta["next"] = (slot + 1) % self.size
        state[f"{prefix}|meta"] = meta
