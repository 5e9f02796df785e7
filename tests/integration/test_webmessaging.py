"""The webmessaging source through the real handler, against the emulator's Guest API over a real WebSocket
and its REST deployment lookup: the flow, returning guests, and a fault matrix with the invariants of
test_fault_matrix (one answer in the documented shape, within budget, bounded attempts, nothing leaked)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import urllib3
from guest_token import genesys
from guest_token.genesys import guest_api
from guest_token.genesys.retries import Attempt
from guest_token.observability import guest_ref

from devtools.genesys_emulator import DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID, MESSAGES_PATH, GenesysEmulator
from tests.conftest import SLOW_MACHINE_SECONDS, Answer

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.")
SUCCESS_FIELDS = {"token", "guestId", "expiresIn", "expiresAt", "newSession", "deploymentId", "webSocketUrl"}
CALLS = ("oauth", "deployment", "webmessaging")


def attempts(answer: Answer) -> dict[str, list[int]]:
    return {**{call: [] for call in CALLS}, **answer.attempts()}


def assert_nothing_leaked(answers: list[Answer], emulator: GenesysEmulator, caplog: pytest.LogCaptureFixture) -> None:
    """No session token, guest JWT, access token or client secret in any log line, EMF blob or library record."""
    text = json.dumps([a.logs for a in answers]) + json.dumps([a.metrics for a in answers]) + caplog.text
    for answer in answers:
        if answer.status == 200:
            assert answer.json["guestId"] not in text, "a session token in the logs"
            assert answer.json["token"] not in text
    for request in emulator.requests:
        authorization = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
        if authorization:
            assert authorization.split(" ", 1)[-1] not in text
    assert DEMO_CLIENT_SECRET not in text
    assert not JWT_SHAPE.search(text), "a JWT in the logs"
    assert "Bearer " not in text and "Basic " not in text


def history(emulator: GenesysEmulator, guest_jwt: str) -> urllib3.BaseHTTPResponse:
    return urllib3.request(
        "GET", f"{emulator.base_url}{MESSAGES_PATH}", headers={"Authorization": f"Bearer {guest_jwt}"}, timeout=5
    )


# ---- the flow ------------------------------------------------------------------------------------------


def test_a_new_guest_gets_a_session_it_can_use(invoke, webmessaging, emulator, caplog):
    caplog.set_level(logging.INFO)
    started = time.time()
    answer = invoke({})
    ended = time.time()
    assert answer.status == 200, answer.body
    body = answer.json
    assert set(body) == SUCCESS_FIELDS
    assert str(uuid.UUID(body["guestId"], version=4)) == body["guestId"]  # a session token the service chose
    assert body["newSession"] is True
    assert body["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert body["webSocketUrl"] == f"{emulator.webmessaging_url}/v1?deploymentId={DEMO_DEPLOYMENT_ID}"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    # The token's exp less the service's clock in whole seconds, read while the request ran.
    assert claims["exp"] - int(ended) <= body["expiresIn"] <= claims["exp"] - int(started)
    assert body["expiresAt"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    # What the token opens: the guest's history through Genesys' guest REST call.
    assert history(emulator, body["token"]).status == 200
    assert emulator.session_state(body["guestId"]) == "active"
    # One deployment lookup, one access token, one Guest API session; nothing secret in the logs.
    assert attempts(answer) == {"oauth": [1], "deployment": [1], "webmessaging": [1]}
    [issued] = answer.events("token_issued")
    assert issued["guestRef"] == guest_ref(body["guestId"]) and issued["newSession"] is True
    assert "duration" not in issued and "scopes" not in issued
    assert_nothing_leaked([answer], emulator, caplog)


def test_a_returning_guest_resumes_its_session_and_the_deployment_is_read_once(invoke, webmessaging, emulator):
    first = invoke({})
    second = invoke({"guestId": first.json["guestId"].upper()})
    assert second.status == 200
    assert second.json["guestId"] == first.json["guestId"]
    assert second.json["newSession"] is False
    assert attempts(second) == {"oauth": [], "deployment": [], "webmessaging": [1]}  # both cached
    assert emulator.count("deployment") == 1 and emulator.count("oauth") == 1


def test_a_returning_guest_whose_session_expired_gets_a_new_one(invoke, webmessaging, emulator):
    first = invoke({})
    emulator.expire_session(first.json["guestId"])
    second = invoke({"guestId": first.json["guestId"]})
    assert second.status == 200
    assert second.json["guestId"] != first.json["guestId"]  # the widget stores the new one
    assert second.json["newSession"] is True
    assert second.events("guest_session_replaced")
    assert emulator.session_state(second.json["guestId"]) == "active"


def test_what_an_attempt_learnt_survives_its_retry(invoke, webmessaging, emulator):
    # A new guest's getJwt is refused once (4029): the retry configures the session the first attempt made.
    emulator.add_fault("get-jwt", code=4029)
    new = invoke({})
    assert new.status == 200 and new.json["newSession"] is True
    assert new.events("token_issued")[0]["newSession"] is True
    # A returning guest whose session is gone gets one new session, not one per attempt.
    emulator.expire_session(new.json["guestId"])
    emulator.add_fault("get-jwt", code=4029)
    returning = invoke({"guestId": new.json["guestId"]})
    assert returning.status == 200 and returning.json["newSession"] is True
    assert len(returning.events("guest_session_replaced")) == 1
    assert emulator.session_state(returning.json["guestId"]) == "active"


def test_a_returning_guest_whose_conversation_ended_can_write_again(invoke, webmessaging, emulator):
    first = invoke({})
    emulator.end_conversation(first.json["guestId"])
    second = invoke({"guestId": first.json["guestId"]})
    assert second.status == 200
    assert second.json["guestId"] == first.json["guestId"]
    assert second.json["newSession"] is True
    assert second.events("guest_conversation_restarted")
    assert emulator.session_state(first.json["guestId"]) == "active"


@pytest.mark.parametrize("body", [{"duration": "short"}, {"scopes": ["webmessaging:guest:send"]}])
def test_fields_genesys_decides_are_refused_naming_the_field(invoke, webmessaging, emulator, body):
    answer = invoke(body)
    assert answer.status == 422
    assert [detail["field"] for detail in answer.json["error"]["details"]] == list(body)
    assert emulator.count("ws-connect") == 0


def test_a_deployment_switched_off_answers_a_clear_error_and_is_read_again_shortly(invoke, webmessaging, emulator):
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, status="Inactive")
    answers = [invoke({}) for _ in range(5)]
    for answer in answers:
        assert (answer.status, answer.error_code) == (503, "deployment_unavailable")
        assert 1 <= int(answer.headers["Retry-After"]) <= 30  # when the service reads the deployment again
    assert "Inactive" in answers[0].events("token_failed")[0]["detail"]
    # Cached both ways: ten thousand visitors of a page with chat switched off are not ten thousand lookups.
    assert emulator.count("deployment") <= 2
    assert emulator.count("ws-connect") == 0


def test_a_deployment_switched_back_on_is_noticed_after_the_short_cache(invoke, webmessaging, emulator, env):
    env.setenv("DEPLOYMENT_CACHE_SECONDS", "3600")
    env.setenv("DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS", "0")
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, status="Pending")
    assert invoke({}).error_code == "deployment_unavailable"
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, status="Active")
    assert invoke({}).status == 200
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, status="Inactive")
    # An Active deployment is trusted for DEPLOYMENT_CACHE_SECONDS: Genesys' own socket refuses meanwhile (4000).
    assert invoke({}).error_code == "upstream_error"
    assert emulator.count("deployment") == 2


def test_genesys_decides_which_origins_open_a_session(invoke, webmessaging, emulator):
    # The matching rule for allowedDomains is not public: the service never refuses by its own reading, and a
    # refused handshake names the possible causes without claiming it was the origin.
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, allow_all_domains=False, allowed_domains=["*.example.com"])
    assert invoke({}).status == 200  # chat.example.com
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, allow_all_domains=False, allowed_domains=["www.example.org"])
    from guest_token import sources  # noqa: PLC0415

    sources.reset()  # the cached deployment still allowed it
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert answer.json["error"]["message"] == "Genesys refused a chat session for this page."
    detail = answer.events("token_failed")[0]["detail"]
    assert "403" in detail and "deployment id" in detail and "appear to leave out" in detail
    assert emulator.count("ws-connect") == 2


def test_a_deployment_genesys_does_not_know_is_a_500_that_names_nothing(invoke, webmessaging, env, emulator):
    missing = "00000000-1111-4222-8333-444444444444"
    env.setenv("GENESYS_DEPLOYMENT_ID", missing)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (500, "internal_error")
    assert missing not in answer.body and "GENESYS" not in answer.body
    assert "GENESYS_DEPLOYMENT_ID" in answer.events("token_failed")[0]["detail"]


def test_a_bad_setting_reaches_the_log_but_not_the_caller(invoke, webmessaging, env):
    env.delenv("GENESYS_DEPLOYMENT_ID")
    answer = invoke({})
    assert (answer.status, answer.error_code) == (500, "internal_error")
    assert "GENESYS" not in answer.body and "DEPLOYMENT" not in answer.body
    assert "GENESYS_DEPLOYMENT_ID" in answer.events("token_failed")[0]["detail"]


# ---- the fault matrix ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None
    webmessaging: int | range  # Guest API session attempts the service logged
    setup: Callable[[GenesysEmulator, pytest.MonkeyPatch], None] = lambda emulator, env: None
    timeout: float = 10.0
    retry_after: range | None = None
    detail: str | None = None
    deployment: int = 1
    body: dict[str, Any] = field(default_factory=dict)
    connects: int | None = None  # WebSocket handshakes, when not one per attempt (a replaced session)


def fault(route: str, **fields: Any) -> Callable[[GenesysEmulator, pytest.MonkeyPatch], None]:
    return lambda emulator, env: emulator.add_fault(route, **fields)


def with_jwks(**fields: Any) -> Callable[[GenesysEmulator, pytest.MonkeyPatch], None]:
    def setup(emulator: GenesysEmulator, env: pytest.MonkeyPatch) -> None:
        env.setenv("GENESYS_JWKS_URL", emulator.jwks_url)
        if fields.get("token") == NO_EXP_RS256_JWT:
            claims = {"sub": "a-guest", "iat": int(time.time())}
            fields["token"] = jwt.encode(claims, emulator.signing_key, algorithm="RS256", headers={"kid": emulator.kid})
        if fields:
            emulator.add_fault("get-jwt", **fields)

    return setup


# Session JWTs Genesys might hand out, for all its documentation says: HMAC-signed, or without an exp claim.
HS256_JWT = jwt.encode({"sub": "a-guest", "iat": 1}, "a shared secret of 32 bytes or more!", algorithm="HS256")
NO_EXP_JWT = jwt.encode({"sub": "a-guest"}, "a shared secret of 32 bytes or more!", algorithm="HS256")
NO_EXP_RS256_JWT = "set by with_jwks: signed with the emulator's key, without an exp claim"

CASES = [
    Case("handshake-503-once", 200, None, 2, fault("ws-connect", status=503)),
    Case("handshake-503-always", 503, "upstream_unavailable", 3, fault("ws-connect", status=503, times=None)),
    Case("handshake-refused-once", 200, None, 2, fault("ws-connect", refuse=True)),
    Case(
        "handshake-403-refused-by-genesys",
        502,
        "upstream_error",
        1,
        fault("ws-connect", status=403),
        detail="access refused",
    ),
    Case("handshake-slow-within-budget", 200, None, 1, fault("ws-connect", delay=0.5)),
    Case("configure-4029-once", 200, None, 2, fault("configure-session", code=4029, retry_after=1)),
    Case(
        "configure-4029-beyond-time-left",
        429,
        "rate_limited",
        1,
        fault("configure-session", code=4029, retry_after=30),
        retry_after=range(30, 31),
    ),
    Case("configure-5000-once", 200, None, 2, fault("configure-session", code=5000)),
    Case("configure-5000-always", 503, "upstream_unavailable", 3, fault("configure-session", code=5000, times=None)),
    Case("configure-dropped-once", 200, None, 2, fault("configure-session", drop=True)),
    Case("configure-noise-first", 200, None, 1, fault("configure-session", noise=True)),
    Case("get-jwt-noise-first", 200, None, 1, fault("get-jwt", noise=True)),
    Case("answers-tagged", 200, None, 1, lambda emulator, env: setattr(emulator, "tag_answers", True)),
    # SessionExpiredEvent as a response (the SDK fixture): the session is gone, a new one is made on a new socket.
    Case("configure-session-expired-event", 200, None, 1, fault("configure-session", session_expired=True), connects=2),
    Case("get-jwt-session-expired-event", 200, None, 1, fault("get-jwt", session_expired=True), connects=2),
    Case("configure-not-json", 502, "upstream_error", 1, fault("configure-session", body="not-json")),
    Case("configure-4000", 502, "upstream_error", 1, fault("configure-session", code=4000), detail="4000"),
    Case(
        "configure-silent",
        504,
        "upstream_timeout",
        range(1, 3),
        fault("configure-session", silent=True, times=None),
        timeout=3.0 + SLOW_MACHINE_SECONDS,  # the session, not a slow cold start, meets the deadline
    ),
    Case("get-jwt-dropped-once", 200, None, 2, fault("get-jwt", drop=True)),
    Case("get-jwt-silent-once", 200, None, 2, fault("get-jwt", silent=True)),
    Case("get-jwt-expired", 502, "upstream_error", 1, fault("get-jwt", expired=True), detail="expired"),
    # Without a JWKS the session JWT is opaque: only the exp Genesys announced beside it is checked.
    Case("get-jwt-exp-mismatch-opaque", 200, None, 1, fault("get-jwt", exp_mismatch=True)),
    Case("get-jwt-alg-none-opaque", 200, None, 1, fault("get-jwt", alg_none=True)),
    Case("get-jwt-hs256-opaque", 200, None, 1, fault("get-jwt", token=HS256_JWT)),
    Case("get-jwt-no-exp-claim-opaque", 200, None, 1, fault("get-jwt", token=NO_EXP_JWT)),
    Case("get-jwt-not-a-jwt-opaque", 200, None, 1, fault("get-jwt", token="an opaque session credential")),
    Case("jwks-exp-mismatch", 502, "upstream_error", 1, with_jwks(exp_mismatch=True), detail="exp"),
    Case("jwks-alg-none", 502, "upstream_error", 1, with_jwks(alg_none=True), detail="algorithm"),
    Case("jwks-hs256", 502, "upstream_error", 1, with_jwks(token=HS256_JWT), detail="algorithm"),
    Case("jwks-no-exp-claim", 502, "upstream_error", 1, with_jwks(token=NO_EXP_RS256_JWT)),
    Case("get-jwt-not-json", 502, "upstream_error", 1, fault("get-jwt", body="not-json")),
    Case("get-jwt-30-days", 502, "upstream_error", 1, fault("get-jwt", token_lifetime=30 * 86400)),
    Case("jwks-signature-good", 200, None, 1, with_jwks()),
    Case("jwks-signature-forged", 502, "upstream_error", 1, with_jwks(bad_signature=True)),
    Case("jwks-unknown-kid", 502, "upstream_error", 1, with_jwks(unknown_kid=True)),
    Case("deployment-503-once", 200, None, 1, fault("deployment", status=503), deployment=2),
    Case(
        "deployment-503-always",
        503,
        "upstream_unavailable",
        0,
        fault("deployment", status=503, times=None),
        deployment=3,
    ),
    Case(
        "deployment-429-beyond-time-left",
        429,
        "rate_limited",
        0,
        fault("deployment", status=429, retry_after=60),
        retry_after=range(60, 61),
    ),
    Case("deployment-not-json", 502, "upstream_error", 0, fault("deployment", body="not-json")),
    # The lookup, not a slow cold start, meets the deadline; waiting its answer out would overrun it by far.
    Case(
        "deployment-slow-beyond-budget",
        504,
        "upstream_timeout",
        0,
        fault("deployment", delay=30),
        timeout=2.0 + SLOW_MACHINE_SECONDS,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_webmessaging_fault_matrix(case, invoke, webmessaging, emulator, env, caplog):
    caplog.set_level(logging.INFO)
    case.setup(emulator, env)
    started = time.monotonic()
    answer = invoke(case.body, timeout_seconds=case.timeout)
    elapsed = time.monotonic() - started

    assert answer.status == case.status, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    document = json.loads(answer.body)
    if case.code is None:
        assert set(document) == SUCCESS_FIELDS
    else:
        assert set(document) == {"error"}
        assert document["error"]["code"] == case.code
    if case.retry_after is not None:
        assert int(answer.headers["Retry-After"]) in case.retry_after
    elif case.status in (503, 504):
        assert int(answer.headers["Retry-After"]) in range(2, 31)
    elif case.status != 429:
        assert "Retry-After" not in answer.headers

    made = attempts(answer)
    count = len(made["webmessaging"])
    assert count in case.webmessaging if isinstance(case.webmessaging, range) else count == case.webmessaging, made
    assert len(made["deployment"]) == case.deployment, made
    assert all(1 <= n <= genesys.MAX_ATTEMPTS for call in CALLS for n in made[call])
    # Every Guest API session attempt that was logged reached Genesys, and only those.
    assert emulator.count("ws-connect") == (count if case.connects is None else case.connects)
    assert emulator.count("deployment") == case.deployment

    assert elapsed < case.timeout + SLOW_MACHINE_SECONDS, elapsed
    outcomes = answer.events("token_issued") + answer.events("token_failed")
    assert [line["status"] for line in outcomes] == [answer.status]
    if case.detail is not None:
        assert case.detail in outcomes[0]["detail"], outcomes[0]
    assert_nothing_leaked([answer], emulator, caplog)


def test_the_webmessaging_matrix_covers_every_kind_of_answer() -> None:
    assert {case.status for case in CASES} >= {200, 429, 502, 503, 504}
    assert len({case.id for case in CASES}) == len(CASES)


# ---- a hostile Genesys (found by review) -----------------------------------------------------------------


def test_a_deployment_answer_trickled_byte_by_byte_ends_within_the_budget(invoke, webmessaging, env, hostile_http):
    body = json.dumps({"status": "Active", "allowAllDomains": True, "allowedDomains": []}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    env.setenv("GENESYS_API_BASE_URL", hostile_http(head, body, 0.3))
    started = time.monotonic()
    answer = invoke({}, timeout_seconds=3)
    assert time.monotonic() - started < 3 + SLOW_MACHINE_SECONDS  # not the 20 s the trickle takes
    assert (answer.status, answer.error_code) == (504, "upstream_timeout")


def test_a_deployment_answer_nested_too_deeply_is_an_upstream_error(invoke, webmessaging, env, hostile_http):
    body = b"[" * 100_000 + b"]" * 100_000
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    env.setenv("GENESYS_API_BASE_URL", hostile_http(head, body, 0))
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")


def test_a_redirected_handshake_never_carries_the_session_token_elsewhere(
    invoke, webmessaging, env, emulator, hostile_http
):
    target = f"{emulator.webmessaging_url}/v1?deploymentId={DEMO_DEPLOYMENT_ID}"
    head = f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode()
    env.setenv("GENESYS_WEBMESSAGING_BASE_URL", hostile_http(head, b"", 0).replace("http://", "ws://"))
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert emulator.count("configure-session") == 0


def test_a_replacement_session_gets_only_the_time_that_is_left(invoke, webmessaging, emulator):
    # The guest's session is gone (4007, answered late); the new session's handshake then never completes.
    emulator.add_fault("ws-connect", delay=0)
    emulator.add_fault("ws-connect", delay=30, times=None)
    emulator.add_fault("configure-session", code=4007, delay=2)
    started = time.monotonic()
    answer = invoke({"guestId": str(uuid.uuid4())}, timeout_seconds=5)
    assert time.monotonic() - started < 5 + SLOW_MACHINE_SECONDS  # not the 30 s handshake
    assert (answer.status, answer.error_code) == (504, "upstream_timeout")


# Mid-sentence, in capitals, and across the 200 characters the log keeps of Genesys' message.
@pytest.mark.parametrize("echo", ["Invalid token {}", "INVALID TOKEN {}", "x" * 190 + "{}"])
def test_genesys_echoing_the_session_token_in_an_error_never_logs_it(echo):
    token = str(uuid.uuid4())
    message = echo.format(token.upper() if echo.isupper() else token)
    mapped = guest_api._mapped(guest_api.GuestApiError(4000, message), Attempt(1, 5.0), token)
    detail = str(mapped.log_detail).lower()  # type: ignore[attr-defined]
    assert token[:8] not in detail  # not even the start of it
    assert "[session" in detail  # the stand-in (the cut may shorten it)


def test_an_origin_that_is_not_ascii_is_refused_not_retried(invoke, webmessaging, env, emulator):
    env.setenv("ALLOWED_ORIGINS", "*")
    answer = invoke({}, origin="https://чат.рф")
    assert (answer.status, answer.error_code) == (403, "origin_not_allowed")
    assert emulator.count("ws-connect") == 0
