"""Shared test types of the destination tests."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("sqlite", "postgresql")  # what a test of the store runs on: each in turn


@dataclass(frozen=True)
class Keys:
    """Clear keys seeded into the store, by purpose."""

    post: str  # alice/photos: PostInputs + ListInputs
    post_only: str  # alice/photos: PostInputs
    list_only: str  # alice/photos: ListInputs
    user_wide: str  # alice, every app: All
    bob: str  # bob/other: All
    revoked: str  # alice/photos: All, revoked
