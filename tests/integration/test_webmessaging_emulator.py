"""The Genesys emulator speaks the Web Messaging Guest API (WebSocket) and the web deployments REST call.

Guests talk to it over real loopback sockets with websockets' client, as a browser or SDK talks to Genesys.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import urllib3
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidMessage, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from devtools.genesys_emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DEPLOYMENT_ID,
    DEPLOYMENT_PATH_PREFIX,
    GUEST_TOKEN_PATH,
    MESSAGES_PATH,
    OAUTH_PATH,
    GenesysEmulator,
)
from tests.conftest import SLOW_MACHINE_SECONDS

Http = urllib3.PoolManager
REPO_ROOT = Path(__file__).resolve().parents[2]
# Every answer on a healthy socket arrives within milliseconds; this only bounds a broken test, and is no time
# a busy machine could take for an answer.
WAIT = 30.0


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(genesys: GenesysEmulator) -> None:
    genesys.reset()
    # The agent's replies would interleave with the answers most tests read in order; its own tests turn it on.
    genesys._webmessaging.agent_reply_seconds = None


def text_of(frame: dict[str, Any]) -> tuple[str, str | None]:
    """A structured message's direction and text, or an event's ("Event", its first event type)."""
    body = frame["body"]
    if body["type"] == "Event":
        return "Event", body["events"][0]["eventType"] + ":" + body["events"][0][
            body["events"][0]["eventType"].lower()
        ]["type"]
    return body["direction"], body["text"]


def test_the_agent_types_then_replies_on_every_socket_of_the_session(http: Http, genesys: GenesysEmulator) -> None:
    genesys._webmessaging.agent_reply_seconds = 0.4
    with guest(genesys) as ws, guest(genesys) as other_tab:
        configure(ws, "chatting")
        configure(other_tab, "chatting")
        started = time.monotonic()
        tracing_id = send(ws, "onMessage", token="chatting", message={"type": "Text", "text": "hello"})
        stored = receive(ws)
        typing, reply = receive(ws), receive(ws)
        replied_after = time.monotonic() - started
        in_other_tab = [receive(other_tab), receive(other_tab)]
        guest_jwt = get_jwt(ws, "chatting")["body"]["jwt"]

    assert stored["tracingId"] == tracing_id and text_of(stored) == ("Inbound", "hello")
    assert text_of(typing) == ("Event", "Typing:On") and "tracingId" not in typing
    assert text_of(reply) == ("Outbound", "Thanks! You wrote: hello") and "tracingId" not in reply
    assert replied_after >= 0.4
    assert [text_of(frame) for frame in in_other_tab] == [text_of(typing), text_of(reply)]
    entities = history(http, genesys, guest_jwt).json()["entities"]
    assert [entity.get("text") for entity in entities] == ["Thanks! You wrote: hello", "hello"]
    assert entities[0]["id"] == reply["body"]["id"]


def test_no_reply_reaches_a_session_that_expired_while_the_agent_typed(genesys: GenesysEmulator) -> None:
    genesys._webmessaging.agent_reply_seconds = 0.4
    with guest(genesys) as ws:
        configure(ws, "leaving")
        send(ws, "onMessage", token="leaving", message={"type": "Text", "text": "bye"})
        receive(ws)
        genesys.expire_session("leaving")
        expired = receive(ws)
        typing = receive(ws)
        with pytest.raises(TimeoutError):
            receive(ws, timeout=0.6)

    assert expired == {"type": "response", "class": "SessionExpiredEvent", "code": 200, "body": {}}  # as the SDK's
    assert text_of(typing) == ("Event", "Typing:On")


@pytest.mark.parametrize("read_only", [True, False])
def test_ending_the_conversation_tells_the_guest(http: Http, genesys: GenesysEmulator, read_only: bool) -> None:
    with guest(genesys) as ws, guest(genesys) as stranger:
        configure(ws, "ended")
        configure(stranger, "someone-else")
        guest_jwt = get_jwt(ws, "ended")["body"]["jwt"]
        genesys.end_conversation("ended", read_only=read_only)
        disconnect = receive(ws)
        with pytest.raises(TimeoutError):
            receive(stranger, timeout=0.3)
        send(ws, "onMessage", token="ended", message={"type": "Text", "text": "still there?"})
        after = receive(ws)

    # As the transport SDK's fixtures: readOnly "true" in the message's metadata, or no readOnly at all.
    assert disconnect["type"] == "message" and disconnect["class"] == "StructuredMessage"
    assert "tracingId" not in disconnect
    assert text_of(disconnect) == ("Event", "Presence:Disconnect")
    assert disconnect["body"]["direction"] == "Outbound" and disconnect["body"]["channel"]["time"]
    assert disconnect["body"].get("metadata", {}).get("readOnly") == ("true" if read_only else None)
    assert genesys.session_state("ended") == ("read-only" if read_only else "active")
    if read_only:
        assert_guest_error(after, 4000)
    else:
        assert text_of(after) == ("Inbound", "still there?")
    entities = history(http, genesys, guest_jwt).json()["entities"]
    assert ("Event", "Presence:Disconnect") in [text_of({"body": entity}) for entity in entities]


@pytest.fixture(scope="module")
def http() -> Iterator[Http]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=5.0)) as pool:
        yield pool


def ws_url(genesys: GenesysEmulator, deployment_id: str | None = DEMO_DEPLOYMENT_ID) -> str:
    query = f"?deploymentId={deployment_id}" if deployment_id is not None else ""
    return f"{genesys.webmessaging_url}/v1{query}"


def guest(
    genesys: GenesysEmulator, deployment_id: str = DEMO_DEPLOYMENT_ID, origin: str | None = None
) -> ClientConnection:
    """A guest socket (use it as a context manager); ``origin`` is sent as the Origin header when given."""
    return connect(
        ws_url(genesys, deployment_id),
        origin=Origin(origin) if origin is not None else None,
        open_timeout=WAIT,
        close_timeout=0.5,
    )


def send(ws: ClientConnection, action: str, **fields: Any) -> str:
    """Send one Guest API request; returns its tracingId."""
    tracing_id = str(uuid.uuid4())
    ws.send(json.dumps({"action": action, **fields, "tracingId": tracing_id}))
    return tracing_id


def receive(ws: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return frame


def configure(
    ws: ClientConnection, token: str, deployment_id: str = DEMO_DEPLOYMENT_ID, **fields: Any
) -> dict[str, Any]:
    """configureSession and its answer, which carries no tracingId (as in Genesys' SDK fixtures); nothing
    follows it unprompted, not even for a new session (no Join)."""
    send(ws, "configureSession", deploymentId=deployment_id, token=token, **fields)
    answer = receive(ws)
    assert "tracingId" not in answer
    return answer


class _AnyTime:
    """Equal to any ISO 8601 UTC time with milliseconds, as Genesys' messages carry."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", other))

    def __hash__(self) -> int:
        return 0


class _AnyUuid:
    """Equal to any fresh message id (a uuid4) in equality assertions."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and uuid.UUID(other).version == 4

    def __hash__(self) -> int:
        return 0


def get_jwt(ws: ClientConnection, token: str) -> dict[str, Any]:
    send(ws, "getJwt", token=token)
    answer = receive(ws)
    assert "tracingId" not in answer
    return answer


def assert_guest_error(frame: dict[str, Any], code: int, message: str | None = None) -> None:
    assert frame["type"] == "response"
    assert frame["class"] == "string"
    assert frame["code"] == code
    assert isinstance(frame["body"], str) and frame["body"]
    if message is not None:
        assert frame["body"] == message


def verify(http: Http, genesys: GenesysEmulator, token: str, deployment_id: str = DEMO_DEPLOYMENT_ID) -> dict[str, Any]:
    """Verify a guest session JWT the way a relying party would: key by kid from the published JWKS."""
    keys = jwt.PyJWKSet.from_dict(http.request("GET", genesys.jwks_url).json())
    key = keys[jwt.get_unverified_header(token)["kid"]]  # KeyError: kid not published
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=genesys.issuer,
        audience=deployment_id,
        options={"require": ["iss", "aud", "sub", "iat", "exp", "jti"]},
    )
    return claims


def access_token(http: Http, genesys: GenesysEmulator) -> str:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **urllib3.make_headers(basic_auth=f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}"),
    }
    response = http.request(
        "POST", genesys.base_url + OAUTH_PATH, headers=headers, body="grant_type=client_credentials"
    )
    token: str = response.json()["access_token"]
    return token


def get_deployment(
    http: Http, genesys: GenesysEmulator, deployment_id: str, bearer: str | None
) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return http.request("GET", genesys.base_url + DEPLOYMENT_PATH_PREFIX + deployment_id, headers=headers)


def history(http: Http, genesys: GenesysEmulator, bearer: str | None, query: str = "") -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return http.request("GET", genesys.base_url + MESSAGES_PATH + query, headers=headers)


def control(http: Http, genesys: GenesysEmulator, method: str, action: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    return http.request(method, f"{genesys.base_url}/__emulator/{action}", **kwargs)


# -- sessions ------------------------------------------------------------------------------------------


def test_new_session_then_resume(genesys: GenesysEmulator) -> None:
    token = f"session-{uuid.uuid4()}"
    before = int(time.time())
    with guest(genesys) as ws:
        first = configure(ws, token)
    with guest(genesys) as ws:
        resumed = configure(ws, token)
        tracing_id = send(ws, "echo", token=token, message={"type": "Text", "text": "ping"})
        echoed = receive(ws)

    assert first["type"] == "response" and first["class"] == "SessionResponse" and first["code"] == 200
    body = first["body"]
    assert body == {
        "connected": True,
        "newSession": True,
        "readOnly": False,
        "maxCustomDataBytes": 2048,
        "clearedExistingSession": False,
        "allowedMedia": {"inbound": {"fileTypes": [], "maxFileSizeKB": 0}},
        "blockedExtensions": [],
        "durationSeconds": body["durationSeconds"],
        "expirationDate": body["expirationDate"],
    }
    assert body["durationSeconds"] > 0
    assert before + body["durationSeconds"] <= body["expirationDate"] <= int(time.time()) + body["durationSeconds"]
    assert (resumed["body"]["newSession"], resumed["body"]["readOnly"]) == (False, False)
    # The health check's answer, as the transport SDK's fixture: a response carrying the request's tracingId.
    assert echoed == {
        "type": "response",
        "class": "StructuredMessage",
        "code": 200,
        "body": {
            "text": "ping",
            "type": "Text",
            "direction": "Inbound",
            "id": _AnyUuid(),
            "channel": {"time": _AnyTime(), "messageId": echoed["body"]["id"]},
        },
        "tracingId": tracing_id,
    }
    [session] = genesys.sessions()
    assert session["newSession"] is False and session["readOnly"] is False and session["expired"] is False
    assert token not in json.dumps(genesys.sessions())
    assert genesys.session_state(token) == "active"
    assert genesys.session_state("never-configured") is None


def test_expired_session_answers_4006(genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "soon-expired")
        genesys.expire_session("soon-expired")
        pushed = receive(ws)
        on_same_socket = get_jwt(ws, "soon-expired")
    with guest(genesys) as ws:
        reconfigured = configure(ws, "soon-expired")

    assert pushed == {"type": "response", "class": "SessionExpiredEvent", "code": 200, "body": {}}
    assert_guest_error(on_same_socket, 4006)
    assert_guest_error(reconfigured, 4006)
    assert genesys.session_state("soon-expired") == "expired"
    with pytest.raises(KeyError):
        genesys.expire_session("no-such-token")


def test_read_only_session_then_start_new(http: Http, genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "ending")
        old_jwt = get_jwt(ws, "ending")["body"]["jwt"]
        send(ws, "onMessage", token="ending", message={"type": "Text", "text": "hello"})
        receive(ws)
        genesys.end_conversation("ending")
        assert text_of(receive(ws)) == ("Event", "Presence:Disconnect")
        read_only = configure(ws, "ending")
        still_read_only = configure(ws, "ending")
        refused_message = send(ws, "onMessage", token="ending", message={"type": "Text", "text": "anyone?"})
        refused = receive(ws)
        restarted = configure(ws, "ending", startNew=True)
        new_jwt = get_jwt(ws, "ending")["body"]["jwt"]

    assert read_only["body"]["connected"] is True
    assert (read_only["body"]["readOnly"], read_only["body"]["newSession"]) == (True, False)
    assert still_read_only["body"]["readOnly"] is True
    assert "tracingId" not in refused and refused_message
    assert_guest_error(refused, 4000)
    assert (restarted["body"]["readOnly"], restarted["body"]["newSession"]) == (False, True)
    assert genesys.session_state("ending") == "active"
    assert verify(http, genesys, new_jwt)["sub"] != verify(http, genesys, old_jwt)["sub"]
    entities = history(http, genesys, new_jwt).json()["entities"]
    assert entities == []  # the old "hello" is gone, and no Join was pushed
    assert history(http, genesys, old_jwt).status == 401  # the old conversation's JWT is no longer a session


def test_guest_jwt_verifies_against_the_jwks(http: Http, genesys: GenesysEmulator) -> None:
    token = f"secret-session-token-{uuid.uuid4()}"
    with guest(genesys) as ws:
        configure(ws, token)
        answer = get_jwt(ws, token)

    assert answer["type"] == "response" and answer["class"] == "JwtResponse" and answer["code"] == 200
    guest_jwt = answer["body"]["jwt"]
    claims = verify(http, genesys, guest_jwt)
    assert jwt.get_unverified_header(guest_jwt) == {"alg": "RS256", "kid": genesys.kid, "typ": "JWT"}
    assert claims["exp"] == answer["body"]["exp"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["aud"] == claims["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert claims["sub"] == genesys.sessions()[0]["id"]
    assert uuid.UUID(claims["sub"]).version == 4 and uuid.UUID(claims["jti"]).version == 4
    assert token not in json.dumps(claims)


def test_get_jwt_needs_the_session_configured_on_that_socket(genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "configured-elsewhere")
    with guest(genesys) as ws:
        before_configure = get_jwt(ws, "configured-elsewhere")
        configure(ws, "mine")
        other_token = get_jwt(ws, "configured-elsewhere")
        send(ws, "getJwt")
        no_token = receive(ws)
        send(ws, "configureSession", token="x")
        no_deployment = receive(ws)
        ws.send("not json")
        garbage = receive(ws)
        send(ws, "dance", token="mine")
        unknown_action = receive(ws)

    assert_guest_error(before_configure, 4007, "Session not found")
    assert_guest_error(other_token, 4007, "Session not found")
    assert_guest_error(no_token, 4020)
    assert_guest_error(no_deployment, 4020)
    assert_guest_error(garbage, 4000)
    assert "tracingId" not in garbage
    assert_guest_error(unknown_action, 4000)


# -- deployments and the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://chat.example.com", True),
        ("https://CHAT.Example.com:8443", True),
        ("chat.example.com", True),  # the mobile SDK sends a bare host
        ("https://help.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),  # *.example.org means subdomains only
        ("https://www.example.com", False),
        ("https://chat.example.com.evil.test", False),
        (None, False),
    ],
)
def test_origin_is_checked_against_the_deployment(genesys: GenesysEmulator, origin: str | None, allowed: bool) -> None:
    deployment = str(uuid.uuid4())
    genesys.set_deployment(deployment, allow_all_domains=False, allowed_domains=["chat.example.com", "*.Example.org"])

    if allowed:
        with guest(genesys, deployment, origin=origin) as ws:
            assert configure(ws, "t", deployment)["code"] == 200
    else:
        with pytest.raises(InvalidStatus) as refused:
            guest(genesys, deployment, origin=origin)
        assert refused.value.response.status_code == 403
    with guest(genesys, origin="https://anywhere.test") as ws:  # the demo deployment allows all domains
        assert configure(ws, "t")["code"] == 200


@pytest.mark.parametrize(
    "url_tail", ["/v1?deploymentId=not-a-deployment", "/v1", "/v2?deploymentId=" + DEMO_DEPLOYMENT_ID]
)
def test_unknown_deployment_or_path_is_404(genesys: GenesysEmulator, url_tail: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(genesys.webmessaging_url + url_tail, open_timeout=WAIT)

    assert refused.value.response.status_code == 404
    assert genesys.count("ws-connect") == 1


def test_inactive_deployment_answers_4000(genesys: GenesysEmulator) -> None:
    genesys.set_deployment("paused", status="Inactive")

    with guest(genesys, "paused") as ws:
        answer = configure(ws, "t", "paused")
        send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
        mismatched = receive(ws)

    assert_guest_error(answer, 4000, "Deployment is not active")
    assert_guest_error(mismatched, 4000)
    assert genesys.sessions() == []


def test_set_deployment_rejects_bad_values(genesys: GenesysEmulator) -> None:
    with pytest.raises(ValueError, match="status"):
        genesys.set_deployment("d", status="Paused")
    with pytest.raises(TypeError):
        genesys.set_deployment("d", allowed_domains="chat.example.com")
    with pytest.raises(ValueError):
        genesys.set_deployment("")


def test_deployment_rest_route(http: Http, genesys: GenesysEmulator) -> None:
    bearer = access_token(http, genesys)
    genesys.set_deployment("restricted", status="Pending", allow_all_domains=False, allowed_domains=["a.example"])

    demo = get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, bearer)
    restricted = get_deployment(http, genesys, "restricted", bearer)
    unknown = get_deployment(http, genesys, "nope", bearer)
    anonymous = get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, None)
    genesys.revoke_access_tokens()
    revoked = get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, bearer)

    assert demo.status == 200
    body = demo.json()
    assert body == {
        "id": DEMO_DEPLOYMENT_ID,
        "name": body["name"],
        "description": body["description"],
        "allowAllDomains": True,
        "allowedDomains": [],
        "status": "Active",
        "configuration": {"id": body["configuration"]["id"], "version": "1"},
        "selfUri": DEPLOYMENT_PATH_PREFIX + DEMO_DEPLOYMENT_ID,
    }
    assert restricted.json()["status"] == "Pending"
    assert restricted.json()["allowedDomains"] == ["a.example"]
    assert restricted.json()["allowAllDomains"] is False
    assert (unknown.status, unknown.json()["code"]) == (404, "not.found")
    for response in (anonymous, revoked):
        assert (response.status, response.json()["code"]) == (401, "bad.credentials")
    assert genesys.count("deployment") == 5


def test_deployment_faults_work_like_other_rest_routes(http: Http, genesys: GenesysEmulator) -> None:
    bearer = access_token(http, genesys)
    genesys.add_fault("deployment", status=429, retry_after=2)

    limited = get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, bearer)

    assert (limited.status, limited.headers["Retry-After"]) == (429, "2")
    assert get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, bearer).status == 200


def test_reset_restores_only_the_demo_deployment(http: Http, genesys: GenesysEmulator) -> None:
    genesys.set_deployment(DEMO_DEPLOYMENT_ID, status="Error")
    genesys.set_deployment("extra")
    with guest(genesys) as ws:
        configure(ws, "t")

    genesys.reset()

    bearer = access_token(http, genesys)
    assert get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, bearer).json()["status"] == "Active"
    assert get_deployment(http, genesys, "extra", bearer).status == 404
    assert genesys.sessions() == []


# -- message history -----------------------------------------------------------------------------------


def test_messages_history_needs_the_guest_jwt(http: Http, genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "chatty")
        for text in ("one", "two"):
            tracing_id = send(ws, "onMessage", token="chatty", message={"type": "Text", "text": text})
            stored = receive(ws)
            assert stored["tracingId"] == tracing_id and stored["body"]["text"] == text
        guest_jwt = get_jwt(ws, "chatty")["body"]["jwt"]
    guest_token_jwt = http.request(
        "POST",
        genesys.base_url + GUEST_TOKEN_PATH,
        headers={"Authorization": f"Bearer {access_token(http, genesys)}"},
        json={"guestId": "g", "expirationDurationSeconds": 60, "scopes": ["s"]},
    ).json()["token"]

    full = history(http, genesys, guest_jwt)
    second_page = history(http, genesys, guest_jwt, "?pageSize=2&pageNumber=2")
    bad_page = history(http, genesys, guest_jwt, "?pageSize=0")

    assert full.status == 200
    body = full.json()
    assert (body["pageSize"], body["pageNumber"], body["total"], body["pageCount"]) == (25, 1, 2, 1)
    assert [entity.get("text") for entity in body["entities"]] == ["two", "one"]  # newest first
    assert second_page.json()["entities"] == []
    assert second_page.json()["pageCount"] == 1
    assert bad_page.status == 400
    for bearer in (None, "not-a-jwt", guest_token_jwt, access_token(http, genesys)):
        assert history(http, genesys, bearer).status == 401
    genesys.expire_session("chatty")
    assert history(http, genesys, guest_jwt).status == 401
    assert genesys.count("messages") == 8


@pytest.mark.parametrize("mutation", ["expired", "alg_none", "bad_signature", "unknown_kid"])
def test_mutated_guest_jwts_are_refused(http: Http, genesys: GenesysEmulator, mutation: str) -> None:
    mutated_fields: dict[str, Any] = {mutation: True}
    genesys.add_fault("get-jwt", **mutated_fields)
    with guest(genesys) as ws:
        configure(ws, "t")
        mutated = get_jwt(ws, "t")["body"]["jwt"]
        good = get_jwt(ws, "t")["body"]["jwt"]

    with pytest.raises((jwt.InvalidTokenError, KeyError)):
        verify(http, genesys, mutated)
    assert history(http, genesys, mutated).status == 401
    assert history(http, genesys, good).status == 200


def test_token_lifetime_and_exp_mismatch_faults(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("get-jwt", token_lifetime=30)
    genesys.add_fault("get-jwt", exp_mismatch=True)
    with guest(genesys) as ws:
        configure(ws, "t")
        short = get_jwt(ws, "t")["body"]
        mismatched = get_jwt(ws, "t")["body"]

    claims = verify(http, genesys, short["jwt"])
    assert claims["exp"] - claims["iat"] == 30 and short["exp"] == claims["exp"]
    assert mismatched["exp"] - verify(http, genesys, mismatched["jwt"])["exp"] == 600


# -- faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 403])
def test_handshake_status_fault(genesys: GenesysEmulator, status: int) -> None:
    genesys.add_fault("ws-connect", status=status)

    with pytest.raises(InvalidStatus) as refused:
        guest(genesys)

    assert refused.value.response.status_code == status
    with guest(genesys) as ws:
        assert configure(ws, "t")["code"] == 200
    assert [r.status for r in genesys.requests if r.route == "ws-connect"] == [status, 101]


def test_handshake_refuse_fault_hangs_up_without_an_answer(genesys: GenesysEmulator) -> None:
    genesys.add_fault("ws-connect", refuse=True, times=2)

    for _ in range(2):
        with pytest.raises(InvalidMessage):
            guest(genesys)

    with guest(genesys):
        pass
    assert genesys.count("ws-connect") == 3
    assert [r.status for r in genesys.requests] == [None, None, 101]


def test_handshake_delay_fault_times_out_the_client(genesys: GenesysEmulator) -> None:
    genesys.add_fault("ws-connect", delay=0.5)

    with pytest.raises(TimeoutError):
        connect(ws_url(genesys), open_timeout=0.1)


def test_drop_fault_closes_the_socket(genesys: GenesysEmulator) -> None:
    genesys.add_fault("configure-session", drop=True)

    with guest(genesys) as ws:
        send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=WAIT)

    assert genesys.sessions() == []


def test_silent_fault_never_answers_but_keeps_reading(genesys: GenesysEmulator) -> None:
    genesys.add_fault("get-jwt", silent=True)

    with guest(genesys) as ws:
        configure(ws, "t")
        send(ws, "getJwt", token="t")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert get_jwt(ws, "t")["code"] == 200  # the client retried on the same socket

    assert genesys.count("get-jwt") == 2


def test_not_json_fault(genesys: GenesysEmulator) -> None:
    genesys.add_fault("configure-session", body="not-json")

    with guest(genesys) as ws:
        send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
        frame = ws.recv(timeout=WAIT)

    with pytest.raises(ValueError):
        json.loads(frame)


@pytest.mark.parametrize("tagged", [False, True])
@pytest.mark.parametrize("route", ["configure-session", "get-jwt"])
def test_noise_fault_precedes_the_right_answer(genesys: GenesysEmulator, route: str, tagged: bool) -> None:
    genesys.tag_answers = tagged
    with guest(genesys) as ws:
        if route == "get-jwt":
            send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
            receive(ws)
        genesys.add_fault(route, noise=True)
        if route == "get-jwt":
            tracing_id = send(ws, "getJwt", token="t")
        else:
            tracing_id = send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
        event, other_tab, unknown, other_answer, answer = (receive(ws) for _ in range(5))

    expected_class = "JwtResponse" if route == "get-jwt" else "SessionResponse"
    assert event["class"] == "StructuredMessage" and "tracingId" not in event
    # Another socket's echo of the guest's message: a response of another class, without a tracingId.
    assert (other_tab["type"], other_tab["class"], other_tab["body"]["direction"]) == (
        "response",
        "StructuredMessage",
        "Inbound",
    )
    assert "tracingId" not in other_tab
    assert unknown == {"type": "response", "class": "NotSupportedClassName", "code": 200, "body": {}}
    assert other_answer["class"] == expected_class and other_answer["tracingId"] != tracing_id
    assert answer["class"] == expected_class and answer["code"] == 200
    assert answer.get("tracingId") == (tracing_id if tagged else None)


@pytest.mark.parametrize("tagged", [False, True])
@pytest.mark.parametrize("route", ["configure-session", "get-jwt"])
def test_error_code_faults(genesys: GenesysEmulator, route: str, tagged: bool) -> None:
    genesys.tag_answers = tagged
    genesys.add_fault(route, code=5000)
    genesys.add_fault(route, code=4029, retry_after=3)
    genesys.add_fault(route, code=4029)
    with guest(genesys) as ws:
        if route == "get-jwt":
            send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
            receive(ws)

        def ask() -> tuple[str, dict[str, Any]]:
            if route == "get-jwt":
                tracing_id = send(ws, "getJwt", token="t")
            else:
                tracing_id = send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
            return tracing_id, receive(ws)

        answers = [ask() for _ in range(4)]

    assert_guest_error(answers[0][1], 5000)
    for (_, frame), retry_after in zip(answers[1:3], (3, 1), strict=True):
        assert {name: value for name, value in frame.items() if name != "tracingId"} == {
            "type": "response",
            "class": "TooManyRequestsErrorMessage",
            "code": 429,
            "body": {
                "retryAfter": retry_after,
                "errorCode": 4029,
                "errorMessage": "Message rate too high for this session",
            },
        }
    assert answers[3][1]["code"] == 200
    # Untagged, as in Genesys' SDK fixtures; tagged on request (the schema allows both).
    assert all(frame.get("tracingId") == (tracing_id if tagged else None) for tracing_id, frame in answers)


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("ws-connect", {"code": 5000}),
        ("ws-connect", {"status": 503, "refuse": True}),
        ("configure-session", {"drop": True, "silent": True}),
        ("configure-session", {"code": 429}),
        ("configure-session", {"code": 5000, "retry_after": 3}),
        ("configure-session", {"body": "no-token"}),
        ("configure-session", {"status": 503}),
        ("configure-session", {"exp_mismatch": True}),
        ("get-jwt", {"silent": "yes"}),
        ("guest-token", {"drop": True}),
        ("deployment", {"expired": True}),
    ],
)
def test_faults_that_cannot_apply_are_rejected(genesys: GenesysEmulator, route: str, fields: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        genesys.add_fault(route, **fields)


def test_counts_per_route(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("ws-connect", status=503)
    with pytest.raises(InvalidStatus):
        guest(genesys)
    with pytest.raises(InvalidStatus):
        guest(genesys, "unknown")
    with guest(genesys) as ws:
        configure(ws, "t")
        configure(ws, "t")
        guest_jwt = get_jwt(ws, "t")["body"]["jwt"]
        send(ws, "echo", token="t", message={"type": "Text", "text": "ping"})
        receive(ws)
    history(http, genesys, guest_jwt)
    get_deployment(http, genesys, DEMO_DEPLOYMENT_ID, None)

    counts = {route: genesys.count(route) for route in ("ws-connect", "configure-session", "get-jwt", "messages")}
    assert counts == {"ws-connect": 3, "configure-session": 2, "get-jwt": 1, "messages": 1}
    assert genesys.count("deployment") == 1
    snapshot = control(http, genesys, "GET", "requests").json()
    assert snapshot["webMessagingCounts"] == {**counts, "deployment": 1, "close-session": 0}
    assert set(snapshot["counts"]) == {"oauth", "guest-token", "jwks"}


# -- the HTTP control API ------------------------------------------------------------------------------


def test_control_api(http: Http, genesys: GenesysEmulator) -> None:
    fault = {"route": "ws-connect", "status": 503}
    assert control(http, genesys, "POST", "faults", json=fault).status == 204
    with pytest.raises(InvalidStatus):
        guest(genesys)
    rejected = control(http, genesys, "POST", "faults", json={"route": "get-jwt", "code": 200})
    assert rejected.status == 400

    deployment = {"id": "ctl", "status": "Active", "allowAllDomains": False, "allowedDomains": ["ok.example"]}
    assert control(http, genesys, "POST", "deployments", json=deployment).status == 204
    assert control(http, genesys, "POST", "deployments", json={**deployment, "status": "Nope"}).status == 400
    assert control(http, genesys, "POST", "deployments", json={"status": "Active"}).status == 400
    with pytest.raises(InvalidStatus):
        guest(genesys, "ctl", origin="https://other.example")
    with guest(genesys, "ctl", origin="https://ok.example") as ws:
        configure(ws, "ctl-token", "ctl")

    listed = control(http, genesys, "GET", "sessions")
    assert listed.status == 200
    assert "ctl-token" not in listed.data.decode()
    assert [s["deploymentId"] for s in listed.json()["sessions"]] == ["ctl"]

    assert control(http, genesys, "POST", "sessions/end", json={"token": "ctl-token"}).status == 204
    assert genesys.session_state("ctl-token") == "read-only"
    assert control(http, genesys, "POST", "sessions/expire", json={"token": "ctl-token"}).status == 204
    assert genesys.session_state("ctl-token") == "expired"
    missing = control(http, genesys, "POST", "sessions/expire", json={"token": "never-seen"})
    assert missing.status == 404 and "never-seen" not in missing.data.decode()
    assert control(http, genesys, "POST", "sessions/end", json={}).status == 400

    health = control(http, genesys, "GET", "health").json()
    assert health == {"status": "ok", "webmessagingUrl": genesys.webmessaging_url}
    assert "ctl-token" not in control(http, genesys, "GET", "requests").data.decode()


# -- lifecycle -----------------------------------------------------------------------------------------


def test_stop_returns_promptly_with_a_silent_socket_open() -> None:
    emulator = GenesysEmulator(jwt_lifetime=60).start()
    assert emulator.webmessaging_url.startswith("ws://127.0.0.1:")
    assert emulator.webmessaging_port != emulator.port
    with connect(f"{emulator.webmessaging_url}/v1?deploymentId={DEMO_DEPLOYMENT_ID}", open_timeout=WAIT) as ws:
        try:
            configure(ws, "t")
            asked = int(time.time())
            exp = get_jwt(ws, "t")["body"]["exp"]
            assert asked + 60 <= exp <= int(time.time()) + 60  # its clock when it answered, plus the lifetime
            emulator.add_fault("get-jwt", silent=True)
            send(ws, "getJwt", token="t")
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.1)
        finally:
            started = time.monotonic()
            emulator.stop()
            stop_took = time.monotonic() - started

        assert stop_took < SLOW_MACHINE_SECONDS  # promptly: not held up by the silent socket
        with pytest.raises(ConnectionClosed):  # the server said goodbye instead of answering
            ws.recv(timeout=WAIT)


def test_cli_prints_the_websocket_url() -> None:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "devtools.genesys_emulator", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": pythonpath}
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("Genesys emulator listening on http://127.0.0.1:")
            line = process.stdout.readline().strip()
            assert line.startswith("Genesys Web Messaging emulator listening on ws://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            with connect(f"{url}/v1?deploymentId={DEMO_DEPLOYMENT_ID}", open_timeout=WAIT) as ws:
                assert configure(ws, "cli")["body"]["newSession"] is True
        finally:
            process.terminate()
            process.wait(timeout=5)


# -- shapes from Genesys' SDK fixtures -------------------------------------------------------------------


def test_close_session_closes_the_other_sockets_then_start_new_restarts(http: Http, genesys: GenesysEmulator) -> None:
    # The transport SDK's startNewChat: closeSession {closeAllConnections: true}, SessionResponse {connected:
    # false}, then configureSession {startNew: true} on the same socket.
    with guest(genesys) as ws, guest(genesys) as other_tab, guest(genesys) as stranger:
        configure(ws, "restart")
        configure(other_tab, "restart")
        configure(stranger, "someone-else")
        genesys.end_conversation("restart")
        receive(ws), receive(other_tab)
        send(ws, "closeSession", token="restart", closeAllConnections=True)
        closed = receive(ws)
        told = receive(other_tab)
        with pytest.raises(ConnectionClosed):
            receive(other_tab)
        send(ws, "getJwt", token="restart")
        unconfigured = receive(ws)
        restarted = configure(ws, "restart", startNew=True)
        new_jwt = get_jwt(ws, "restart")["body"]["jwt"]
        with pytest.raises(TimeoutError):
            receive(stranger, timeout=0.2)

    assert closed == {
        "type": "response",
        "class": "SessionResponse",
        "code": 200,
        "body": {"connected": False, "newSession": False, "readOnly": True},
    }
    assert told == {"type": "message", "class": "ConnectionClosedEvent", "code": 200, "body": {}}
    assert_guest_error(unconfigured, 4007)
    assert (restarted["body"]["readOnly"], restarted["body"]["newSession"]) == (False, True)
    assert history(http, genesys, new_jwt).json()["entities"] == []
    assert genesys.count("close-session") == 1


def test_close_session_needs_its_flag_and_a_configured_socket(genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        send(ws, "closeSession", token="t", closeAllConnections=True)
        before = receive(ws)
        configure(ws, "t")
        send(ws, "closeSession", token="t")
        no_flag = receive(ws)
        send(ws, "closeSession", token="t", closeAllConnections=False)
        alone = receive(ws)

    assert_guest_error(before, 4007)
    assert_guest_error(no_flag, 4020)
    assert alone["class"] == "SessionResponse" and alone["body"]["connected"] is False


def test_close_session_faults(genesys: GenesysEmulator) -> None:
    genesys.add_fault("close-session", code=5000)
    with guest(genesys) as ws:
        configure(ws, "t")
        send(ws, "closeSession", token="t", closeAllConnections=True)
        refused = receive(ws)

    assert_guest_error(refused, 5000)


def test_an_autostart_join_is_echoed_and_none_is_pushed(http: Http, genesys: GenesysEmulator) -> None:
    join = {"type": "Event", "events": [{"eventType": "Presence", "presence": {"type": "Join"}}]}
    with guest(genesys) as ws:
        assert configure(ws, "joining")["body"]["newSession"] is True
        with pytest.raises(TimeoutError):
            receive(ws, timeout=0.2)  # nothing unprompted
        tracing_id = send(ws, "onMessage", token="joining", message=join)
        echoed = receive(ws)
        guest_jwt = get_jwt(ws, "joining")["body"]["jwt"]

    # As the transport SDK's autostart test expects: an Inbound Event carrying the Join, with its tracingId.
    assert (echoed["type"], echoed["class"], echoed["tracingId"]) == ("message", "StructuredMessage", tracing_id)
    assert echoed["body"]["direction"] == "Inbound" and text_of(echoed) == ("Event", "Presence:Join")
    assert [text_of({"body": e}) for e in history(http, genesys, guest_jwt).json()["entities"]] == [
        ("Event", "Presence:Join")
    ]


@pytest.mark.parametrize("route", ["configure-session", "get-jwt"])
def test_session_expired_fault_answers_the_event_as_a_response(genesys: GenesysEmulator, route: str) -> None:
    with guest(genesys) as ws:
        configure(ws, "t")
        genesys.add_fault(route, session_expired=True)
        if route == "get-jwt":
            send(ws, "getJwt", token="t")
        else:
            send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="t")
        event = receive(ws)
        again = configure(ws, "t")

    assert event == {"type": "response", "class": "SessionExpiredEvent", "code": 200, "body": {}}
    assert_guest_error(again, 4006)


def test_expiry_as_a_message_on_request(genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "t")
        genesys.expire_session("t", "message")
        event = receive(ws)

    assert event == {"type": "message", "class": "SessionExpiredEvent", "code": 200, "body": {}}
    with pytest.raises(ValueError):
        genesys.expire_session("t", "event")


def test_control_api_shapes(http: Http, genesys: GenesysEmulator) -> None:
    with guest(genesys) as ws:
        configure(ws, "shapes")
        assert control(http, genesys, "POST", "sessions/end", json={"token": "shapes", "readOnly": False}).status == 204
        assert "readOnly" not in receive(ws)["body"].get("metadata", {})
        assert genesys.session_state("shapes") == "active"
        expire = {"token": "shapes", "type": "message"}
        assert control(http, genesys, "POST", "sessions/expire", json=expire).status == 204
        assert receive(ws)["type"] == "message"
    assert control(http, genesys, "POST", "webmessaging", json={"tagAnswers": True}).status == 204
    with guest(genesys) as ws:
        tracing_id = send(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token="tagged")
        assert receive(ws)["tracingId"] == tracing_id
    assert control(http, genesys, "POST", "webmessaging", json={"tagAnswers": "yes"}).status == 400
    assert control(http, genesys, "POST", "webmessaging", json={"other": 1}).status == 400
    assert control(http, genesys, "POST", "sessions/end", json={"token": "tagged", "readOnly": 1}).status == 400
    genesys.reset()
    assert genesys.tag_answers is False
