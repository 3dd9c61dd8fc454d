"""The destinations a deployment posts to: a collector naming any other ``base_url`` is refused.

An entry is a URL; a base URL is allowed when its scheme, host and port are an entry's and its path lies under
the entry's path. User info in a base URL (``http://allowed@elsewhere``) is refused outright.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class AllowListError(ValueError):
    """An allow-list entry that is not an http(s) URL."""


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    path: str

    def covers(self, other: _Origin) -> bool:
        same = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        return same and (other.path == self.path or other.path.startswith(self.path + "/") or not self.path)


def _origin(url: str) -> _Origin | None:
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.query or parts.fragment:
        return None
    return _Origin(parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme], parts.path.rstrip("/"))


class AllowedDestinations:
    """The destinations collectors may name; ``option`` is how a user adds one (shown in refusals)."""

    def __init__(self, urls: Iterable[str], *, option: str) -> None:
        self.urls = tuple(dict.fromkeys(url.strip().rstrip("/") for url in urls if url.strip()))
        self.option = option
        origins = []
        for url in self.urls:
            origin = _origin(url)
            if origin is None:
                raise AllowListError(f"{option}: {url!r} is not an http(s) URL such as http://host:8080")
            origins.append(origin)
        self._origins = tuple(origins)

    @classmethod
    def parse(cls, value: str, *, option: str) -> AllowedDestinations:
        """From a comma-separated list."""
        return cls(value.split(","), option=option)

    def problem(self, base_url: str) -> str | None:
        """Why a collector may not post to ``base_url``, or None when it may."""
        origin = _origin(base_url)
        if origin is not None and any(allowed.covers(origin) for allowed in self._origins):
            return None
        listed = ", ".join(self.urls) or "none"
        return f"destination {base_url} is not an allowed destination (allowed: {listed}); add it with {self.option}"
