"""The origin allowlist as an attacker probes it: exact match only, for token requests and preflights alike.

(``null``, a trailing slash, another scheme or port and a suffix match are in test_contract.py; these are the
other near misses, checked for both methods.)
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.genesys_emulator import GenesysEmulator
from tests.conftest import ORIGIN

NEAR_MISSES = [
    "null",
    ORIGIN + "/",
    "http://chat.example.com",
    ORIGIN + ":443",
    "https://chat.example.com.evil.net",
    "https://evil.chat.example.com",
    "https://chat.example.co",
    "https://xchat.example.com",
    "HTTPS://CHAT.EXAMPLE.COM",
    "https://chat.example.com@evil.net",
    " " + ORIGIN,
    ORIGIN + " ",
    f"{ORIGIN}, https://evil.net",
    "https://other.example.com/path",
    "*",
    "",
]


@pytest.mark.parametrize("origin", NEAR_MISSES, ids=repr)
@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_near_misses_of_an_allowed_origin_are_refused(
    invoke: Any, emulator: GenesysEmulator, origin: str, method: str
) -> None:
    answer = invoke({} if method == "POST" else None, method=method, origin=origin)
    assert (answer.status, answer.error_code) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["Vary"] == "Origin"  # so a cache never serves this answer to the real origin
    assert emulator.count("oauth") == emulator.count("guest-token") == 0


@pytest.mark.parametrize("allowed", [ORIGIN, "*"])
def test_the_origin_is_echoed_never_a_wildcard_and_credentials_are_never_allowed(
    invoke: Any, env: pytest.MonkeyPatch, allowed: str
) -> None:
    env.setenv("ALLOWED_ORIGINS", allowed)
    for answer in (invoke({}), invoke(method="OPTIONS"), invoke({"duration": "forever"})):
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert answer.headers["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in answer.headers


def test_each_listed_origin_is_allowed_on_its_own(invoke: Any) -> None:
    # conftest allows ORIGIN and https://other.example.com
    for origin in (ORIGIN, "https://other.example.com"):
        answer = invoke({}, origin=origin)
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == origin
