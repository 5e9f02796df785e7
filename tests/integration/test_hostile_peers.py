"""Peers that trickle, overflow or echo: each request still ends within its budget in the documented shape,
and nothing the caller must keep secret reaches the logs (issue 15's review, second round)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from guest_token import budget, settings, token_events
from guest_token.genesys import guest_api, retries

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import SLOW_MACHINE_SECONDS

TRICKLED_HEADERS = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200  # and they never end (45 s)
PACE = 0.2


def within(seconds: float, started: float) -> None:
    """Ended within its ``seconds`` budget, give or take a slow machine: not after the trickle's 45 s."""
    elapsed = time.monotonic() - started
    assert elapsed < seconds + SLOW_MACHINE_SECONDS, f"{elapsed:.2f} s under a {seconds} s timeout"


@pytest.mark.parametrize("variable", ["GENESYS_OAUTH_BASE_URL", "GENESYS_API_BASE_URL", "SECRETS_MANAGER_ENDPOINT_URL"])
def test_headers_trickled_forever_end_at_the_deadline(invoke: Any, env: Any, hostile_http: Any, variable: str) -> None:
    env.setenv(variable, hostile_http(b"", TRICKLED_HEADERS, PACE))
    started = time.monotonic()
    answer = invoke({}, timeout_seconds=3)
    within(3, started)
    [failed] = answer.events("token_failed")
    if variable == "SECRETS_MANAGER_ENDPOINT_URL" and answer.status == 503:
        # With little time left the secret is read by a client whose reads time out after 0.6 s (credentials.QUICK):
        # a loaded machine can leave the trickle that long without a byte, and the read then ends, as unreachable.
        assert answer.error_code == "upstream_unavailable", failed
        assert failed["detail"].endswith(": ReadTimeoutError"), failed
    else:
        assert (answer.status, answer.error_code) == (504, "upstream_timeout"), failed


def test_a_trickling_event_bus_costs_the_event_not_the_token(
    invoke: Any, env: Any, event_bus: str, hostile_http: Any
) -> None:
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    invoke({})  # warm: the secret and the access token are cached, so the publish is what is slow
    env.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", hostile_http(b"", TRICKLED_HEADERS, PACE))
    token_events.reset()  # a client for the new endpoint
    # Time for the publish to start (it needs PUBLISH_BUDGET_SECONDS left), however slowly the token came.
    timeout = budget.MARGIN_SECONDS + token_events.PUBLISH_BUDGET_SECONDS + SLOW_MACHINE_SECONDS
    started = time.monotonic()
    answer = invoke({}, timeout_seconds=timeout)
    within(timeout, started)
    assert answer.status == 200
    # The deadline ends it; or, should a loaded machine leave the trickle a second without a byte, the read's
    # own timeout does, sooner.
    [failed] = answer.events("token_event_failed")
    assert "out of time" in failed["reason"] or "ReadTimeoutError" in failed["reason"], failed


@pytest.mark.parametrize("retry_after", ["9" * 5000, "Fri, 31 Dec 99999 23:59:59 GMT"])
def test_a_retry_after_no_genesys_sends_is_taken_as_absent(invoke: Any, emulator: Any, retry_after: str) -> None:
    emulator.add_fault("guest-token", status=503, retry_after=retry_after, times=None)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    assert int(answer.headers["Retry-After"]) in range(2, 31)


def test_an_access_token_living_beyond_reason_is_an_upstream_error(invoke: Any, env: Any, hostile_http: Any) -> None:
    body = json.dumps({"access_token": "x" * 20, "expires_in": 10**400}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    env.setenv("GENESYS_OAUTH_BASE_URL", hostile_http(head, body, 0))
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")


# Where Genesys might put the id: mid-sentence, in capitals, and across the 300 characters the log keeps of a
# message (cut after the redaction, or the id's first characters would stay at the end).
ECHOES = {
    "plain": "guestId {} is not allowed",
    "upper case": "GUESTID {} IS NOT ALLOWED",
    "across the cut": "x" * 290 + "{}",
}


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_a_guest_id_genesys_echoes_in_an_error_is_not_logged(
    invoke: Any, env: Any, hostile_http: Any, emulator: Any, echo: str
) -> None:
    guest = str(uuid.uuid4())
    invoke({})  # warm: the access token is cached, so only the guest-token call meets the echoing server
    message = echo.format(guest.upper() if echo.isupper() else guest)
    body = json.dumps({"code": "bad.request", "message": message, "status": 400}).encode()
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    env.setenv("GENESYS_API_BASE_URL", hostile_http(head, body, 0))
    settings.reset()  # a new deployment's settings; the access token stays cached
    answer = invoke({"guestId": guest})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    logged = json.dumps(answer.logs).lower()
    assert guest[:8] not in logged  # not even the start of it
    assert "[guest" in answer.events("token_failed")[0]["detail"]  # the stand-in (the cut may shorten it)


def test_a_refused_access_token_replays_the_call_once_not_three_times(invoke: Any, emulator: Any) -> None:
    invoke({})
    emulator.reset()
    for fault in ({"status": 503}, {"status": 503}, {"status": 401}, {"status": 503, "times": None}):
        emulator.add_fault("guest-token", **fault)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    assert emulator.count("guest-token") == 4  # three attempts, then one with the new access token
    assert emulator.count("oauth") == 1


def test_a_websocket_429_wait_is_capped_like_every_other() -> None:
    refused = guest_api._refused(429, None, retries.Attempt(1, 5.0))
    assert isinstance(refused, retries.Retryable)
    assert refused.wait is None and refused.error.retry_after == 1  # none given: the widget waits a second
    refused = guest_api._refused(429, 3600, retries.Attempt(1, 5.0))
    assert isinstance(refused, retries.Retryable)
    assert refused.wait == 3600 and refused.error.retry_after == 3600


@pytest.mark.parametrize("origin", ["https://" + "\x00" * 10_000, "https://" + "\U000e0000" * 10_000])
def test_unprintable_caller_values_are_logged_short(invoke: Any, origin: str) -> None:
    answer = invoke({}, origin=origin, headers={"Content-Type": "\U000e0000" * 10_000})
    assert answer.status == 403
    assert all(len(json.dumps(line)) < 1_500 for line in answer.logs)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/guest-tokens/", 200),
        ("/chat/guest-tokens/", 200),
        ("//guest-tokens", 200),
        ("/chat//guest-tokens", 200),
        ("/guest-tokens/x", 404),
        ("/tokens", 404),
    ],
)
def test_mounted_paths_answer_as_the_stage_url_does(invoke: Any, path: str, status: int) -> None:
    assert invoke({}, path=path).status == status


def test_a_body_counted_in_bytes_not_characters(invoke: Any) -> None:
    body = json.dumps({"guestId": "é" * 9_000}, ensure_ascii=False)  # 9,000 characters, 18,000 bytes in UTF-8
    assert len(body) < 16 * 1024 < len(body.encode())
    answer = invoke(raw=body)
    assert (answer.status, answer.error_code) == (413, "payload_too_large")


def test_a_correlation_id_of_any_length_is_logged_bounded(invoke: Any, env: Any, hostile_http: Any) -> None:
    invoke({})  # warm: the access token is cached, so only the guest-token call meets the hostile server
    body = json.dumps({"code": "bad.request", "message": "no", "status": 400}).encode()
    head = (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nININ-Correlation-Id: "
        + b"c" * 60_000
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    env.setenv("GENESYS_API_BASE_URL", hostile_http(head, body, 0))
    settings.reset()
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert max(len(json.dumps(line)) for line in answer.logs) < 4000
    assert answer.events("token_failed")[0]["genesysCorrelationId"].endswith("...(60000 chars)")


def _answer(status: str, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status.encode(), len(body))


def test_credentials_genesys_echoes_in_an_oauth_error_are_not_logged(invoke: Any, env: Any, hostile_http: Any) -> None:
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    message = f"client {DEMO_CLIENT_ID} secret {DEMO_CLIENT_SECRET.upper()} sent Authorization: Basic {basic}"
    body = json.dumps({"error": f"Basic {basic}", "message": message}).encode()
    env.setenv("GENESYS_OAUTH_BASE_URL", hostile_http(_answer("400 Bad Request", body), body, 0))
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    logged = json.dumps(answer.logs).lower()
    for secret in (DEMO_CLIENT_SECRET, basic, DEMO_CLIENT_ID):
        assert secret.lower() not in logged
    assert "[client secret]" in answer.events("token_failed")[0]["detail"]


def test_an_endless_error_code_is_bounded_in_the_log(invoke: Any, env: Any, hostile_http: Any, emulator: Any) -> None:
    invoke({})  # warm: the access token is cached, so only the deployment lookup meets the echoing server
    body = json.dumps({"code": "C" * 20_000, "message": "rejected"}).encode()
    env.setenv("GENESYS_API_BASE_URL", hostile_http(_answer("400 Bad Request", body), body, 0))
    settings.reset()
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    [failed] = answer.events("token_failed")
    assert len(failed["detail"]) < 600  # Genesys' code is bounded like its message
