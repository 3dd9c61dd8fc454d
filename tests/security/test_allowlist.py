"""Which base URLs an allow-list lets collectors name."""

from __future__ import annotations

import pytest

from streams.core.allowlist import AllowedDestinations, AllowListError

ALLOWED = AllowedDestinations(
    ["http://dest.example:8080", "https://api.example.com/v1/"], option="--allowed-destination"
)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://dest.example:8080",
        "http://DEST.example:8080/",
        "https://api.example.com/v1",
        "https://api.example.com:443/v1/x",
    ],
)
def test_allowed(base_url: str) -> None:
    assert ALLOWED.problem(base_url) is None


@pytest.mark.parametrize(
    "base_url",
    [
        "http://dest.example:8081",
        "https://dest.example:8080",
        "http://dest.example:8080@evil.example",
        "http://user@dest.example:8080",
        "https://api.example.com/v10",
        "https://api.example.com",
        "http://169.254.169.254/latest",
        "ftp://dest.example:8080",
        "http://dest.example:99999",
    ],
)
def test_refused_with_the_option_to_set(base_url: str) -> None:
    problem = ALLOWED.problem(base_url)
    assert problem is not None and "--allowed-destination" in problem and base_url in problem


def test_an_entry_that_is_no_url_is_refused() -> None:
    with pytest.raises(AllowListError, match="not an http"):
        AllowedDestinations.parse("http://ok:1,file:///etc", option="X")
