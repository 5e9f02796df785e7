"""Genesys' rate limits, as the emulator enforces them when asked: per access token on the API, per OAuth client
on token creation. A container whose access token is over its limit answers 429 with Retry-After while the
wait would outlive the request, and issues tokens again once Genesys' window has passed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import urllib3

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator, RateLimits


@pytest.fixture
def limited(emulator: GenesysEmulator) -> Iterator[GenesysEmulator]:
    yield emulator
    emulator.set_rate_limits(RateLimits())


def access_token(emulator: GenesysEmulator) -> urllib3.BaseHTTPResponse:
    return urllib3.request(
        "POST",
        f"{emulator.base_url}/oauth/token",
        body="grant_type=client_credentials",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **urllib3.make_headers(basic_auth=f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}"),
        },
    )


def test_the_emulator_limits_token_creation_per_client_until_the_window_ends(limited):
    limited.set_rate_limits(RateLimits(per_client=2, window_seconds=1.0))
    assert [access_token(limited).status for _ in range(3)] == [200, 200, 429]
    refused = access_token(limited)
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"] == "too.many.requests.retry.after"
    assert limited.rate_limited == 2
    time.sleep(1.05)
    assert access_token(limited).status == 200


def test_a_container_over_its_tokens_limit_answers_429_with_retry_after_and_recovers(invoke, limited):
    window = 3.0
    limited.set_rate_limits(RateLimits(per_access_token=2, window_seconds=window))
    started = time.monotonic()
    assert [invoke({}, timeout_seconds=2).status for _ in range(2)] == [200, 200]

    # Genesys asks for a wait longer than the request has left: the widget is told to come back later.
    refused = invoke({}, timeout_seconds=2)
    assert (refused.status, refused.error_code) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= window
    assert refused.events("genesys_retry_abandoned")
    assert limited.count("oauth") == 1  # the limit is the token's: fetching another would not lift it

    time.sleep(max(0.0, started + window - time.monotonic()) + 0.1)
    recovered = invoke({}, timeout_seconds=2)
    assert recovered.status == 200
    assert limited.count("oauth") == 1


def test_with_time_to_wait_a_request_waits_out_the_window_and_succeeds(invoke, limited):
    limited.set_rate_limits(RateLimits(per_access_token=1, window_seconds=1.0))
    assert invoke({}).status == 200
    answer = invoke({})
    assert answer.status == 200
    assert answer.attempts()["guest-token"] == [1, 2]  # a 429, then the wait Genesys asked for
