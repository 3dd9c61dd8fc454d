"""Shared test helpers of the management API tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Keys:
    """Clear keys seeded into the destination, by purpose."""

    owner: str  # alice, every app: All
    photos_owner: str  # alice/photos only: ListInputs (may manage photos' collectors, not post)
    post: str  # alice/photos: PostInputs
    list_only: str  # alice/photos: ListInputs
    videos_post: str  # alice/videos: PostInputs
    bob: str  # bob/other: All
    revoked: str  # alice, every app: All, revoked


@dataclass
class Api:
    """Calls on the running management API as one caller."""

    http: aiohttp.ClientSession
    url: str
    destination: str
    key: str | None

    async def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = "", app: str = "alice/photos"
    ) -> tuple[int, dict[str, Any]]:
        """``path`` is relative to the app (e.g. ``collectors/x``), or absolute when it starts with /."""
        user_id, app_id = app.split("/")
        url = self.url + (path if path.startswith("/") else f"/v2/users/{user_id}/apps/{app_id}/{path}")
        used = self.key if key == "" else key
        headers = {} if used is None else {"Authorization": f"Key {used}"}
        async with self.http.request(method, url, json=body, headers=headers) as response:
            return response.status, await response.json()
