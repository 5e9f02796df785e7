"""The function's Guest API client against frames shaped exactly as Genesys' own SDK fixtures show them
(tests/fixtures/genesys/sdk-frames.json): a scripted Guest API on a real loopback WebSocket answers each
action with the frames a test names, and the handler is invoked as Lambda would. The deployment lookup and
OAuth go to the emulator. Each test checks what the widget would get: a session, or a clear error."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Answer
from tests.integration.conftest import SESSION_JWT, frame, frames

FIXTURES = frames()
# A session JWT as Genesys might hand it out for all its documentation says: HMAC-signed, no exp claim.
HS256_NO_EXP = SESSION_JWT


def issued(answer: Answer) -> dict[str, Any]:
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.json
    assert body["token"] == HS256_NO_EXP  # handed out as Genesys answered it: opaque without a JWKS
    assert 880 <= body["expiresIn"] <= 900
    return body


def test_untagged_answers_open_a_session(invoke, scripted):
    body = issued(invoke({}))
    assert body["newSession"] is True
    assert scripted.actions() == ["configureSession", "getJwt"]


@pytest.mark.parametrize(
    "skipped",
    [
        ["other-tab-echo"],
        ["typing", "agent-text", "join-echo", "disconnect", "disconnect-read-only"],
        ["unknown-class", "session-cleared", "logout"],
        ["health-check-echo", "own-echo"],  # echoes carrying another request's tracingId
    ],
)
def test_frames_of_other_classes_before_the_answer_are_skipped(invoke, scripted, skipped):
    # The case: an open tab's echo of the guest's message (StructuredMessage, a response, no tracingId)
    # arriving before the SessionResponse answered 502.
    scripted.then("configureSession", *skipped, "session-new")
    scripted.then("getJwt", *skipped, "jwt")
    issued(invoke({}))
    assert scripted.actions() == ["configureSession", "getJwt"]


def test_a_minimal_session_response_resumes(invoke, scripted):
    scripted.then("configureSession", "session-resumed-minimal")
    assert issued(invoke({"guestId": "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"}))["newSession"] is False


def test_a_read_only_session_is_restarted_as_the_transport_sdk_does(invoke, scripted):
    guest_id = "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"
    scripted.then("configureSession", "session-read-only").then("configureSession", "session-new")
    scripted.then("closeSession", "session-closed")
    answer = invoke({"guestId": guest_id})
    body = issued(answer)
    assert (body["guestId"], body["newSession"]) == (guest_id, True)
    assert scripted.actions() == ["configureSession", "closeSession", "configureSession", "getJwt"]
    close, restart = scripted.received[1], scripted.received[2]
    assert close == {"action": "closeSession", "closeAllConnections": True}
    assert restart["startNew"] is True and "startNew" not in scripted.received[0]
    assert answer.events("guest_conversation_restarted")


def test_a_refused_close_session_still_restarts_with_start_new(invoke, scripted):
    # Genesys' Java SDK documents startNew alone: a closeSession Genesys does not take is no reason to fail.
    scripted.then("configureSession", "session-read-only").then("closeSession", "error-400")
    scripted.then("configureSession", "session-new")
    issued(invoke({"guestId": "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"}))
    assert scripted.actions() == ["configureSession", "closeSession", "configureSession", "getJwt"]


def test_a_session_kept_read_only_after_start_new_is_a_502(invoke, scripted):
    scripted.then("configureSession", "session-read-only").then("configureSession", "session-read-only")
    answer = invoke({"guestId": "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert "read-only" in answer.events("token_failed")[0]["detail"]


@pytest.mark.parametrize("gone", ["error-4006", "error-4007", "session-expired-event"])
@pytest.mark.parametrize("action", ["configureSession", "getJwt"])
def test_a_session_genesys_no_longer_has_is_replaced(invoke, scripted, gone, action):
    guest_id = "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"
    scripted.then(action, gone)
    answer = invoke({"guestId": guest_id})
    body = issued(answer)
    assert body["guestId"] != guest_id and body["newSession"] is True
    assert scripted.connections == 2  # the new session on a socket of its own
    assert answer.events("guest_session_replaced")


def test_an_untagged_4029_is_waited_out_and_retried(invoke, scripted):
    scripted.then("configureSession", "error-4029")
    answer = invoke({})
    issued(answer)
    assert scripted.actions() == ["configureSession", "configureSession", "getJwt"]
    assert [line["status"] for line in answer.events("genesys_call")] == [4029, 101]  # attempt 1, then 2


def test_an_untagged_5000_is_retried_then_answers_503(invoke, scripted):
    for _ in range(3):
        scripted.then("configureSession", "error-5000")
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    assert scripted.connections == 3


@pytest.mark.parametrize("refusal", ["error-403", "error-400"])
def test_an_untagged_refusal_answers_502(invoke, scripted, refusal):
    scripted.then("configureSession", refusal)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert refusal.removeprefix("error-") in answer.events("token_failed")[0]["detail"]


def test_connections_closed_by_another_socket_are_retried(invoke, scripted):
    # The transport SDK disconnects on a ConnectionClosedEvent; the service opens another socket.
    scripted.then("configureSession", "connection-closed")
    issued(invoke({}))
    assert scripted.connections == 2


def test_a_fractional_exp_is_read_as_whole_seconds(invoke, scripted):
    # JwtResponse's exp is a Long in the transport SDK and a Double in the Java SDK's model.
    exp = time.time() + 600.75

    def jwt_answer(request: dict[str, Any]) -> list[dict[str, Any]]:
        answer = frame("jwt", request)
        answer["body"]["exp"] = exp
        return [answer]

    scripted.scripts["getJwt"] = [jwt_answer]
    body = invoke({}).json
    assert body["expiresAt"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(exp)))


def test_every_fixture_frame_is_replayed_here():
    """Each frame of the fixture file reaches the function's client in at least one test of this module."""
    source = Path(__file__).read_text()
    unused = [name for name in FIXTURES if f'"{name}"' not in source]
    assert unused == []


def test_without_a_jwks_the_session_jwt_is_never_decoded(invoke, scripted, monkeypatch):
    # No pyjwt on the default path at all: importing it would fail here.
    monkeypatch.setitem(sys.modules, "jwt", None)
    issued(invoke({}))
