"""The function's Guest API client against frames shaped exactly as Genesys' own SDK fixtures show them
(tests/fixtures/genesys/sdk-frames.json): a scripted Guest API on a real loopback WebSocket answers each
action with the frames a test names, and the handler is invoked as Lambda would. The deployment lookup and
OAuth go to the emulator. Each test checks what the widget would get: a session, or a clear error."""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID, GenesysEmulator
from tests.conftest import Answer

FIXTURES = json.loads((Path(__file__).parents[1] / "fixtures" / "genesys" / "sdk-frames.json").read_text())["frames"]
# A session JWT as Genesys might hand it out for all its documentation says: HMAC-signed, no exp claim.
HS256_NO_EXP = jwt.encode({"sub": "guest"}, "a shared secret of 32 bytes or more!", algorithm="HS256")

# Genesys' usual answer to each action, when a test scripts none.
DEFAULTS = {"configureSession": ["session-new"], "getJwt": ["jwt"], "closeSession": ["session-closed"]}


def frame(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Fixture ``name`` as an answer to ``request``: "<request>" becomes its tracingId; the JWT expires later."""
    shaped: dict[str, Any] = copy.deepcopy(FIXTURES[name]["frame"])
    if shaped.get("tracingId") == "<request>":
        shaped["tracingId"] = request.get("tracingId")
    if shaped["class"] == "JwtResponse":
        shaped["body"] = {"jwt": HS256_NO_EXP, "exp": int(time.time()) + 900}
    if shaped["class"] == "TooManyRequestsErrorMessage":
        shaped["body"]["retryAfter"] = 1  # the fixture's 3 s, shortened: the wait itself is tested elsewhere
    return shaped


@dataclass
class ScriptedGuestApi:
    """A Guest API peer that answers each action from a queue of scripts (one per request of that action),
    falling back to Genesys' usual answer; records what the client sent (no tokens)."""

    scripts: dict[str, list[list[str] | Callable[[dict[str, Any]], list[dict[str, Any]]]]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, action: str, *frames: str) -> ScriptedGuestApi:
        self.scripts.setdefault(action, []).append(list(frames))
        return self

    def handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
        try:
            for raw in connection:
                request = json.loads(raw)
                action = request.get("action")
                with self._lock:
                    self.received.append({k: v for k, v in request.items() if k not in ("token", "tracingId")})
                    queue = self.scripts.get(action)
                    script = queue.pop(0) if queue else DEFAULTS.get(action, [])
                frames = script(request) if callable(script) else [frame(name, request) for name in script]
                for answer in frames:
                    if answer.get("class") == "hang up":
                        connection.close()
                        return
                    connection.send(json.dumps(answer))
        except ConnectionClosed:
            pass

    def actions(self) -> list[str]:
        return [request["action"] for request in self.received]


@pytest.fixture
def guest_api() -> Iterator[ScriptedGuestApi]:
    peer = ScriptedGuestApi()
    server: Server = serve(peer.handle, "127.0.0.1", 0, ping_interval=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    peer.url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"  # type: ignore[attr-defined]
    yield peer
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def scripted(env: pytest.MonkeyPatch, emulator: GenesysEmulator, guest_api: ScriptedGuestApi) -> ScriptedGuestApi:
    env.setenv("GUEST_TOKEN_SOURCE", "webmessaging")
    env.setenv("GENESYS_DEPLOYMENT_ID", DEMO_DEPLOYMENT_ID)
    env.setenv("GENESYS_WEBMESSAGING_BASE_URL", guest_api.url)  # type: ignore[attr-defined]
    return guest_api


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
