"""Genesys' rate limits, as the emulator enforces them when asked: per access token on the API, per OAuth client
on token creation. A container whose access token is over its limit answers 429 with Retry-After while the
wait would outlive the request, and issues tokens again once Genesys' window has passed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import urllib3
from guest_token.genesys import retries

from devtools import genesys_emulator
from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator, RateLimits
from tests.conftest import StillClock


@pytest.fixture
def limited(emulator: GenesysEmulator) -> Iterator[GenesysEmulator]:
    yield emulator
    emulator.set_rate_limits(RateLimits())


@pytest.fixture
def window_clock(monkeypatch: pytest.MonkeyPatch) -> StillClock:
    """The emulator's clock, which its rate limits' windows run on: it moves when the test says (or the service
    waits, see below), so a window ends when the test means it to, however long the requests in it took."""
    return StillClock().install(monkeypatch, genesys_emulator)


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


def test_the_emulator_limits_token_creation_per_client_until_the_window_ends(limited, window_clock):
    limited.set_rate_limits(RateLimits(per_client=2, window_seconds=1.0))
    assert [access_token(limited).status for _ in range(3)] == [200, 200, 429]
    window_clock.sleep(0.5)
    refused = access_token(limited)
    assert refused.headers["Retry-After"] == "1"  # half a second, in whole seconds
    assert refused.json()["code"] == "too.many.requests.retry.after"
    assert limited.rate_limited == 2
    window_clock.sleep(0.5)
    assert access_token(limited).status == 200


def test_a_container_over_its_tokens_limit_answers_429_with_retry_after_and_recovers(invoke, limited, window_clock):
    window = 60.0  # Genesys': a minute
    limited.set_rate_limits(RateLimits(per_access_token=2, window_seconds=window))
    assert [invoke({}).status for _ in range(2)] == [200, 200]

    # Genesys asks for a wait longer than the request has left: the widget is told to come back later.
    window_clock.sleep(window - 20)
    refused = invoke({})
    assert (refused.status, refused.error_code) == (429, "rate_limited")
    assert int(refused.headers["Retry-After"]) == 20
    assert refused.events("genesys_retry_abandoned")
    assert limited.count("oauth") == 1  # the limit is the token's: fetching another would not lift it

    window_clock.sleep(20)
    recovered = invoke({})
    assert recovered.status == 200
    assert limited.count("oauth") == 1


def test_with_time_to_wait_a_request_waits_out_the_window_and_succeeds(invoke, limited, window_clock, monkeypatch):
    # The service's wait between attempts moves the emulator's clock instead of the real one: the window is over
    # when the wait Genesys asked for is, and not sooner, however long the requests take.
    window_clock.install(monkeypatch, retries)
    limited.set_rate_limits(RateLimits(per_access_token=1, window_seconds=1.0))
    assert invoke({}).status == 200
    before = window_clock.now
    answer = invoke({})
    assert answer.status == 200
    assert answer.attempts()["guest-token"] == [1, 2]  # a 429, then the wait Genesys asked for
    assert window_clock.now - before == pytest.approx(1.0)  # no more than that
