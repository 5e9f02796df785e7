"""The OAuth token cache, retries and token verification, against the Genesys emulator over sockets."""

from __future__ import annotations

import base64
import time

import pytest
from guest_token import oauth

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import StillClock

# ---- OAuth access-token cache ---------------------------------------------------------------------------


def test_one_oauth_call_serves_many_warm_invocations(invoke, emulator):
    for _ in range(25):
        assert invoke({}).status == 200
    assert emulator.count("oauth") == 1
    assert emulator.count("guest-token") == 25


def test_oauth_sends_client_credentials_as_genesys_expects(invoke, emulator):
    invoke({})
    [request] = [r for r in emulator.requests if r.route == "oauth"]
    headers = {name.lower(): value for name, value in request.headers.items()}
    expected = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    assert headers["authorization"] == f"Basic {expected}"
    assert request.body == b"grant_type=client_credentials"
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_the_access_token_is_refreshed_before_it_expires(invoke, emulator, monkeypatch):
    # expires_in is read from Genesys' answer, never assumed: 20 s means refresh after 10 s (half, < 60 s). The
    # cache's clock is the test's, so how long the requests take does not count (the token stays valid at
    # Genesys, whose clock is the real one, for 20 s).
    clock = StillClock().install(monkeypatch, oauth)
    emulator.set_access_token_ttl(20)
    invoke({})
    invoke({})
    assert emulator.count("oauth") == 1
    clock.sleep(9.9)
    assert invoke({}).status == 200
    assert emulator.count("oauth") == 1
    clock.sleep(0.2)
    assert invoke({}).status == 200
    assert emulator.count("oauth") == 2


def test_a_revoked_access_token_is_replaced_once(invoke, emulator):
    invoke({})
    emulator.revoke_access_tokens()
    answer = invoke({})
    assert answer.status == 200
    assert emulator.count("oauth") == 2
    assert emulator.count("guest-token") == 3  # the first request, the 401, the retry
    assert answer.events("oauth_token_rejected")


def test_an_api_that_keeps_answering_401_is_an_upstream_error_after_one_refresh(invoke, emulator):
    emulator.add_fault("guest-token", status=401, times=None)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert emulator.count("oauth") == 2
    assert emulator.count("guest-token") == 2


def test_rotated_credentials_are_read_again_once(invoke, emulator, secrets_manager):
    invoke({})  # the old credentials are now cached in this container
    emulator.set_client(DEMO_CLIENT_ID, "rotated-secret")
    secrets_manager.put_secret_value(
        SecretId="genesys-guest-token/test",
        SecretString='{"clientId": "demo-client-id", "clientSecret": "rotated-secret"}',
    )
    emulator.revoke_access_tokens()
    answer = invoke({})
    assert answer.status == 200
    assert "rotated-secret" not in str(answer.logs)
    assert answer.events("oauth_credentials_reloaded")


def test_bad_credentials_in_the_secret_are_unavailable_with_a_log_naming_the_secret(invoke, emulator):
    emulator.set_client(DEMO_CLIENT_ID, "a-secret-nobody-told-us")
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    [failed] = answer.events("token_failed")
    assert "genesys-guest-token/test" in failed["detail"]
    assert "invalid_client" in failed["detail"]
    assert emulator.count("oauth") == 1  # the secret had not changed, so no second attempt


# ---- retries ---------------------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_out_and_retried(invoke, emulator):
    emulator.add_fault("guest-token", status=429, retry_after=1)
    started = time.monotonic()
    answer = invoke({})
    assert answer.status == 200
    assert emulator.count("guest-token") == 2
    assert time.monotonic() - started >= 1  # it did honour Retry-After


def test_a_429_asking_for_longer_than_the_time_left_is_passed_on_at_once(invoke, emulator):
    emulator.add_fault("guest-token", status=429, retry_after=30)
    answer = invoke({}, timeout_seconds=5)
    assert (answer.status, answer.error_code) == (429, "rate_limited")
    assert answer.headers["Retry-After"] == "30"
    assert emulator.count("guest-token") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_retried(invoke, emulator, status):
    emulator.add_fault("guest-token", status=status)
    assert invoke({}).status == 200
    assert emulator.count("guest-token") == 2


def test_oauth_5xx_is_retried_too(invoke, emulator):
    emulator.add_fault("oauth", status=503, times=2)
    assert invoke({}).status == 200
    assert emulator.count("oauth") == 3


def test_a_client_error_from_genesys_is_not_retried(invoke, emulator):
    emulator.add_fault("guest-token", status=400)
    assert invoke({}).status == 502
    assert emulator.count("guest-token") == 1


def test_each_attempt_is_logged_with_the_genesys_correlation_id(invoke, emulator):
    emulator.add_fault("guest-token", status=500)
    answer = invoke({})
    calls = [call for call in answer.events("genesys_call") if call["call"] == "guest-token"]
    assert [call["status"] for call in calls] == [500, 200]
    assert all(call["genesysCorrelationId"] for call in calls)


# ---- verification ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"expired": True}, "expired"),
        ({"sub": "6b3a2c1d-0000-4000-8000-000000000000"}, "sub"),
        ({"scopes": ["webmessaging:guest:send"]}, "lacks requested scopes"),
        ({"alg_none": True}, "'none'"),
        ({"body": "not-jwt"}, "not a JWT"),
        ({"body": "no-token"}, "without a token"),
        ({"body": "not-json"}, "without a token"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else value,
)
def test_tokens_that_fail_verification_are_never_handed_out(invoke, emulator, fault, reason):
    emulator.add_fault("guest-token", **fault)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert "token" not in answer.json
    [failed] = answer.events("token_failed")
    assert reason in failed["detail"]


@pytest.mark.parametrize("fault", [{"bad_signature": True}, {"unknown_kid": True}, {"alg_none": True}])
def test_signatures_are_checked_against_the_jwks_when_configured(invoke, emulator, env, fault):
    env.setenv("GENESYS_JWKS_URL", emulator.jwks_url)
    assert invoke({}).status == 200
    emulator.add_fault("guest-token", **fault)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")


def test_without_a_jwks_a_forged_signature_passes_claims_only_and_says_so_once(invoke, emulator):
    emulator.add_fault("guest-token", bad_signature=True)
    first = invoke({})
    assert first.status == 200
    assert len(first.events("token_signature_unchecked")) == 1
    assert not invoke({}).events("token_signature_unchecked")
