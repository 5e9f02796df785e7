"""Signed-in customers (issue 24) through the real handler: sign-in, refresh through the cookie, sign-out, against
the emulator's OpenID provider, web deployments token calls and Guest API over real loopback sockets.

Every fault the emulator can play has one documented answer within its budget; the refresh cookie opens only for
its origin, deployment, keys and lifetime; nothing secret reaches a log line or an EMF blob.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import Any

import pytest
from cryptography.fernet import Fernet
from guest_token import credentials, refresh_cookie
from guest_token.genesys import web_deployments_token

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID, GenesysEmulator
from devtools.local_api import build_event
from devtools.oidc_emulator import pkce_challenge
from tests.conftest import ORIGIN, SLOW_MACHINE_SECONDS, Answer
from tests.integration import test_token_events
from tests.integration.test_logging import leaked
from tests.integration.test_token_events import documented_detail_fields

SIGN_IN = "/authenticated-sessions"
REFRESH = "/authenticated-sessions/refresh"
REDIRECT_URI = "https://chat.example.com/signed-in"
KEYS_SECRET_ID = "genesys-guest-token/cookie-keys"
OTHER_ORIGIN = "https://other.example.com"  # allowed too (the env fixture's ALLOWED_ORIGINS)
OTHER_DEPLOYMENT_ID = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"
COOKIE_SECONDS = 2592000
SESSION_FIELDS = {"token", "guestId", "expiresIn", "expiresAt", "newSession", "deploymentId", "webSocketUrl"}
SIGNED_IN_FIELDS = SESSION_FIELDS | {"authenticated", "authToken", "authExpiresIn"}
CALLS = ("auth-exchange", "auth-refresh", "auth-revoke")
subscriber = test_token_events.subscriber  # the fixture: a queue the documented rule feeds from the bus


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def signed_in(webmessaging: pytest.MonkeyPatch, secrets_manager: Any, emulator: GenesysEmulator, key: str) -> Any:
    """The handler with signed-in customers on: the webmessaging source and a cookie-keys secret of one key."""
    secrets_manager.create_secret(Name=KEYS_SECRET_ID, SecretString=json.dumps({"keys": [key]}))
    webmessaging.setenv("AUTH_COOKIE_KEYS_SECRET_ID", KEYS_SECRET_ID)
    webmessaging.delenv("AUTH_COOKIE_SECONDS", raising=False)
    emulator._webmessaging.agent_reply_seconds = None
    return secrets_manager


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def authorize(emulator: GenesysEmulator, *, nonce: str | None = "n-0S6_WzA2Mj") -> dict[str, Any]:
    """What the page holds after the identity provider's redirect: the sign-in body."""
    verifier = new_verifier()
    code = emulator.authorize(REDIRECT_URI, pkce_challenge(verifier), nonce, name="Alex Example")
    body = {"code": code, "redirectUri": REDIRECT_URI, "codeVerifier": verifier}
    return {**body, "nonce": nonce} if nonce else body


def cookie_of(answer: Answer) -> str:
    """The value of the guest_refresh cookie the answer sets ('' when it clears it)."""
    header = answer.headers["Set-Cookie"]
    name, _, value = header.partition(";")[0].partition("=")
    assert name == "guest_refresh"
    return value


def cookie_attributes(answer: Answer) -> set[str]:
    return {part.strip() for part in answer.headers["Set-Cookie"].split(";")[1:]}


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"theme=dark; guest_refresh={value}"}


def sealed_payload(key: str, cookie: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(Fernet(key.encode()).decrypt(cookie.encode()))
    return payload


def assert_credentialed(answer: Answer, origin: str = ORIGIN) -> None:
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert answer.headers["Vary"] == "Origin"
    assert answer.headers["Cache-Control"] == "no-store"


def assert_clears_cookie(answer: Answer) -> None:
    assert cookie_of(answer) == ""
    assert {"Max-Age=0", "Path=/authenticated-sessions", "HttpOnly", "Secure", "SameSite=Strict"} <= cookie_attributes(
        answer
    )


def counts(emulator: GenesysEmulator) -> dict[str, int]:
    return {call: emulator.count(call) for call in (*CALLS, "ws-connect")}


# ---- the flow ------------------------------------------------------------------------------------------------


def test_sign_in_refresh_and_sign_out(invoke, signed_in, emulator, key):
    started = time.monotonic()
    signing_in = invoke(authorize(emulator), path=SIGN_IN)
    assert signing_in.status == 200, signing_in.body
    body = signing_in.json
    assert set(body) == SIGNED_IN_FIELDS
    assert body["authenticated"] is True and body["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert 0 < body["authExpiresIn"] <= emulator.auth_jwt_lifetime
    assert_credentialed(signing_in)
    # The refresh token never reaches the page: it is sealed in an HttpOnly cookie scoped to these paths.
    assert cookie_attributes(signing_in) == {
        "Path=/authenticated-sessions",
        f"Max-Age={COOKIE_SECONDS}",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
    }
    cookie = cookie_of(signing_in)
    sealed = sealed_payload(key, cookie)
    assert sealed["d"] == DEMO_DEPLOYMENT_ID and sealed["o"] == ORIGIN and sealed["g"] == body["guestId"]
    assert sealed["r"] not in signing_in.body
    # Genesys knows the chat as the signed-in customer's.
    [session] = emulator.sessions()
    assert session["authenticated"] is True and session["name"] == "Alex Example"
    assert emulator.authenticated_user(body["authToken"], DEMO_DEPLOYMENT_ID) is not None
    [issued] = signing_in.events("token_issued")
    assert issued["authenticated"] is True and issued["action"] == "sign-in"
    assert "Alex Example" not in json.dumps(signing_in.logs)

    refreshed = invoke({"guestId": body["guestId"]}, path=REFRESH, headers=with_cookie(cookie))
    assert refreshed.status == 200, refreshed.body
    assert set(refreshed.json) == SIGNED_IN_FIELDS
    assert refreshed.json["guestId"] == body["guestId"] and refreshed.json["newSession"] is False
    assert refreshed.json["authToken"] != body["authToken"]
    assert_credentialed(refreshed)
    assert sealed_payload(key, cookie_of(refreshed))["r"] == sealed["r"]
    # Without a body, the chat sealed with the cookie is the one refreshed.
    assert invoke(None, path=REFRESH, headers=with_cookie(cookie)).json["guestId"] == body["guestId"]

    signing_out = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie))
    assert signing_out.status == 204 and signing_out.body == ""
    assert_credentialed(signing_out)
    assert_clears_cookie(signing_out)
    [line] = signing_out.events("signed_out")
    assert line["revoked"] is True
    # The sign-in is revoked at Genesys: its auth JWTs and its refresh token stop working.
    assert emulator.authenticated_user(refreshed.json["authToken"], DEMO_DEPLOYMENT_ID) is None
    after = invoke({}, path=REFRESH, headers=with_cookie(cookie))
    assert (after.status, after.error_code) == (401, "not_signed_in")
    assert_clears_cookie(after)
    assert time.monotonic() - started < 10 + SLOW_MACHINE_SECONDS


def test_a_guest_signs_in_on_the_chat_it_has_and_after_sign_out_chats_anonymously_anew(invoke, signed_in, emulator):
    guest = invoke({})
    assert guest.status == 200
    signing_in = invoke({**authorize(emulator), "guestId": guest.json["guestId"]}, path=SIGN_IN)
    assert signing_in.status == 200, signing_in.body
    assert signing_in.json["guestId"] == guest.json["guestId"] and signing_in.json["newSession"] is False
    signing_out = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie_of(signing_in)))
    assert signing_out.status == 204
    # The signed-in chat is not the anonymous guest's to resume (Genesys says 4017): a new one starts.
    anonymous = invoke({"guestId": guest.json["guestId"]})
    assert anonymous.status == 200, anonymous.body
    assert anonymous.json["guestId"] != guest.json["guestId"] and anonymous.json["newSession"] is True
    assert anonymous.events("guest_session_replaced")


def test_the_preflight_allows_credentials_for_the_exact_origin(invoke, signed_in):
    for path in (SIGN_IN, REFRESH):
        answer = invoke(method="OPTIONS", path=path)
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST, DELETE"
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    refused = invoke(method="OPTIONS", path=SIGN_IN, origin="https://evil.example")
    assert (refused.status, refused.error_code) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_behind_a_custom_domain_the_cookie_is_scoped_to_the_mapped_path(invoke, signed_in, emulator):
    event = build_event(
        "POST",
        "/chat/authenticated-sessions",
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        body=json.dumps(authorize(emulator)),
    )
    answer = invoke(event=event)
    assert answer.status == 200, answer.body
    assert "Path=/chat/authenticated-sessions" in cookie_attributes(answer)


# ---- switched off, and the gates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("POST", SIGN_IN), ("POST", REFRESH), ("DELETE", SIGN_IN), ("OPTIONS", SIGN_IN)]
)
def test_without_cookie_keys_the_routes_do_not_exist(invoke, webmessaging, emulator, method, path):
    answer = invoke({}, method=method, path=path)
    assert (answer.status, answer.error_code) == (404, "not_found")
    assert "Set-Cookie" not in answer.headers
    assert counts(emulator) == dict.fromkeys((*CALLS, "ws-connect"), 0)


def test_other_methods_are_not_allowed(invoke, signed_in):
    answer = invoke(method="GET", path=REFRESH)
    assert (answer.status, answer.error_code) == (405, "method_not_allowed")
    assert answer.headers["Allow"] == "OPTIONS, POST"
    assert_credentialed(answer)  # the widget's credentialed fetch can read the error
    assert invoke(method="PUT", path=SIGN_IN).headers["Allow"] == "OPTIONS, POST, DELETE"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"codeVerifier": "short"}, "codeVerifier"),
        ({"redirectUri": "javascript:alert(1)"}, "redirectUri"),
        ({"code": ""}, "code"),
        ({"code": "x" * 4097}, "code"),
        ({"nonce": "has space"}, "nonce"),
        ({"guestId": "not-a-uuid"}, "guestId"),
        ({"scopes": ["webmessaging:guest:send"]}, "scopes"),
    ],
)
def test_a_malformed_sign_in_names_the_field_and_spends_no_code(invoke, signed_in, emulator, change, field):
    answer = invoke({**authorize(emulator), **change}, path=SIGN_IN)
    assert (answer.status, answer.error_code) == (422, "invalid_request")
    assert field in {detail["field"] for detail in answer.json["error"]["details"]}
    assert counts(emulator)["auth-exchange"] == 0


def test_the_body_gates_are_those_of_guest_tokens(invoke, signed_in, emulator):
    assert invoke(raw="[]", path=SIGN_IN).error_code == "invalid_json"
    assert invoke(None, path=SIGN_IN).error_code == "invalid_json"
    assert invoke(raw=" " * 17000, path=SIGN_IN).error_code == "payload_too_large"
    wrong_type = invoke(authorize(emulator), path=SIGN_IN, headers={"Content-Type": "text/plain"})
    assert wrong_type.error_code == "unsupported_media_type"
    assert_credentialed(wrong_type)


# ---- Genesys refuses the code ------------------------------------------------------------------------------------


def _reused(emulator: GenesysEmulator, invoke: Any) -> dict[str, Any]:
    body = authorize(emulator)
    assert invoke(body, path=SIGN_IN).status == 200
    return body


def _expired(emulator: GenesysEmulator, invoke: Any) -> dict[str, Any]:
    body = authorize(emulator)
    emulator.expire_codes()
    return body


REFUSALS = {
    "reused-code": _reused,
    "expired-code": _expired,
    "pkce-mismatch": lambda emulator, invoke: {**authorize(emulator), "codeVerifier": new_verifier()},
    "verifier-missing": lambda emulator, invoke: {
        key: value for key, value in authorize(emulator).items() if key != "codeVerifier"
    },
    "wrong-redirect-uri": lambda emulator, invoke: {**authorize(emulator), "redirectUri": f"{REDIRECT_URI}/other"},
    "nonce-mismatch": lambda emulator, invoke: {**authorize(emulator), "nonce": "another-nonce"},
    "unknown-code": lambda emulator, invoke: {**authorize(emulator), "code": secrets.token_urlsafe(32)},
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_code_is_sign_in_failed_without_a_cookie_or_a_session(invoke, signed_in, emulator, case):
    body = REFUSALS[case](emulator, invoke)
    before = counts(emulator)
    answer = invoke(body, path=SIGN_IN)
    assert (answer.status, answer.error_code) == (401, "sign_in_failed"), answer.body
    assert_credentialed(answer)
    assert "Set-Cookie" not in answer.headers
    after = counts(emulator)
    # One attempt (a refusal is not retried), and no guest session for a customer nobody signed in.
    assert after["auth-exchange"] - before["auth-exchange"] == 1
    assert after["ws-connect"] == before["ws-connect"]
    [failed] = answer.events("token_failed")
    assert failed["action"] == "sign-in" and "authenticated" not in failed
    assert body["code"] not in json.dumps(answer.logs)


# ---- Genesys fails ---------------------------------------------------------------------------------------------


# (fault, status, error code, exchange calls made)
EXCHANGE_FAULTS = {
    "429-retry-after": ({"status": 429, "retry_after": 30}, 429, "rate_limited", 1),
    # The code works once: an exchange Genesys may have acted on is never sent again (only a 429 would be).
    "503-always": ({"status": 503, "times": None}, 503, "upstream_unavailable", 1),
    "500-once": ({"status": 500}, 503, "upstream_unavailable", 1),
    "not-json": ({"body": "not-json"}, 502, "upstream_error", 1),
    "slow": ({"delay": 30.0}, 504, "upstream_timeout", 1),
}


@pytest.mark.parametrize("case", sorted(EXCHANGE_FAULTS))
def test_each_exchange_fault_has_one_documented_answer_within_budget(invoke, signed_in, emulator, case):
    fault, status, code, calls = EXCHANGE_FAULTS[case]
    emulator.add_fault("auth-exchange", **fault)
    started = time.monotonic()
    answer = invoke(authorize(emulator), path=SIGN_IN, timeout_seconds=3.0)
    assert time.monotonic() - started < 3.0 + SLOW_MACHINE_SECONDS
    assert answer.status == status, answer.body
    if code is not None:
        assert answer.error_code == code
        assert "Set-Cookie" not in answer.headers
        assert_credentialed(answer)
    if status in (429, 503, 504):
        assert int(answer.headers["Retry-After"]) >= 1
    if case == "429-retry-after":
        assert answer.headers["Retry-After"] == "30"
    assert emulator.count("auth-exchange") == calls


REFRESH_FAULTS = {
    "429": ({"status": 429, "retry_after": 30}, 429, "rate_limited"),
    "503-always": ({"status": 503, "times": None}, 503, "upstream_unavailable"),
    "not-json": ({"body": "not-json"}, 502, "upstream_error"),
    "slow": ({"delay": 30.0}, 504, "upstream_timeout"),
}


@pytest.mark.parametrize("case", sorted(REFRESH_FAULTS))
def test_a_refresh_genesys_fails_keeps_the_cookie_for_a_retry(invoke, signed_in, emulator, case):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    fault, status, code = REFRESH_FAULTS[case]
    emulator.add_fault("auth-refresh", **fault)
    started = time.monotonic()
    answer = invoke({}, path=REFRESH, headers=with_cookie(cookie), timeout_seconds=3.0)
    assert time.monotonic() - started < 3.0 + SLOW_MACHINE_SECONDS
    assert (answer.status, answer.error_code) == (status, code), answer.body
    assert "Set-Cookie" not in answer.headers
    assert_credentialed(answer)
    emulator.clear_faults()
    again = invoke({}, path=REFRESH, headers=with_cookie(cookie))
    assert again.status == 200, again.body


def test_an_expired_refresh_token_is_not_signed_in_and_clears_the_cookie(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    emulator.expire_refresh_tokens()
    answer = invoke({}, path=REFRESH, headers=with_cookie(cookie))
    assert (answer.status, answer.error_code) == (401, "not_signed_in")
    assert_clears_cookie(answer)
    assert_credentialed(answer)
    assert emulator.count("auth-refresh") == 1 and emulator.count("ws-connect") == 1  # the sign-in's only


def test_a_refused_auth_jwt_on_the_socket_is_an_upstream_error(invoke, signed_in, emulator):
    emulator.set_auth_lifetimes(auth_jwt=0)  # Genesys hands out an auth JWT its Guest API then refuses (401)
    answer = invoke(authorize(emulator), path=SIGN_IN)
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert "Set-Cookie" not in answer.headers


def test_a_sign_in_whose_chat_cannot_open_is_revoked_so_no_refresh_token_is_left_live(invoke, signed_in, emulator):
    # Genesys has spent the code; no cookie will hold the refresh token: the service revokes the sign-in.
    emulator.add_fault("configure-authenticated-session", code=5000, times=None)
    answer = invoke(authorize(emulator), path=SIGN_IN, timeout_seconds=3.0)
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable"), answer.body
    assert "Set-Cookie" not in answer.headers
    assert emulator.count("auth-exchange") == 1 and emulator.count("auth-revoke") == 1


def test_a_failing_socket_is_retried_with_the_same_auth_jwt(invoke, signed_in, emulator):
    emulator.add_fault("configure-authenticated-session", code=5000)
    answer = invoke(authorize(emulator), path=SIGN_IN)
    assert answer.status == 200, answer.body
    assert emulator.count("configure-authenticated-session") == 2


def test_sign_out_without_a_usable_cookie_is_still_signed_out(invoke, signed_in, emulator):
    for headers in ({}, with_cookie("garbage"), {"Cookie": "theme=dark"}):
        answer = invoke(method="DELETE", path=SIGN_IN, headers=headers)
        assert answer.status == 204
        assert_clears_cookie(answer)
        assert answer.events("signed_out")[0]["revoked"] is False
    assert counts(emulator) == dict.fromkeys((*CALLS, "ws-connect"), 0)


def test_sign_out_reads_no_body_so_any_content_type_signs_out(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    headers = {**with_cookie(cookie), "Content-Type": "text/plain"}
    answer = invoke(method="DELETE", path=SIGN_IN, headers=headers)
    assert answer.status == 204
    assert_clears_cookie(answer)
    assert answer.events("signed_out")[0]["revoked"] is True


def test_sign_out_on_another_page_leaves_that_pages_sign_in(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    answer = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie), origin=OTHER_ORIGIN)
    assert answer.status == 204 and "Set-Cookie" not in answer.headers
    assert emulator.count("auth-revoke") == 0
    assert invoke({}, path=REFRESH, headers=with_cookie(cookie)).status == 200


def test_sign_out_when_genesys_fails_still_forgets_the_cookie(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    emulator.add_fault("auth-revoke", status=503, times=None)
    answer = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie), timeout_seconds=3.0)
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    assert_clears_cookie(answer)


def test_sign_out_of_a_sign_in_genesys_already_ended_is_signed_out(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    emulator.add_fault("auth-revoke", status=401)
    answer = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie))
    assert answer.status == 204
    assert answer.events("signed_out")[0]["revoked"] is False


# ---- the cookie ------------------------------------------------------------------------------------------------


def _craft(key: str, *, age: int = 0, **changes: Any) -> str:
    payload = {"r": "a-refresh-token", "d": DEMO_DEPLOYMENT_ID, "o": ORIGIN, "g": None, **changes}
    data = json.dumps(payload).encode()
    return Fernet(key.encode()).encrypt_at_time(data, int(time.time()) - age).decode()


def _tampered(cookie: str) -> str:
    middle = len(cookie) // 2
    return cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]


@pytest.mark.parametrize(
    "case", ["missing", "tampered", "another-key", "another-deployment", "too-old", "not-fernet", "another-origin"]
)
def test_a_cookie_that_does_not_open_is_not_signed_in_and_genesys_is_never_called(
    invoke, signed_in, emulator, key, case
):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    refresh_token = sealed_payload(key, cookie)["r"]
    headers = {
        "missing": {},
        "tampered": with_cookie(_tampered(cookie)),
        "another-key": with_cookie(_craft(Fernet.generate_key().decode(), r=refresh_token)),
        "another-deployment": with_cookie(_craft(key, r=refresh_token, d=OTHER_DEPLOYMENT_ID)),
        # Sealed longer ago than AUTH_COOKIE_SECONDS: Fernet's own timestamp, no waiting.
        "too-old": with_cookie(_craft(key, r=refresh_token, age=COOKIE_SECONDS + 60)),
        "not-fernet": with_cookie("eyJhbGciOiJub25lIn0.e30."),
        "another-origin": with_cookie(_craft(key, r=refresh_token, o=OTHER_ORIGIN)),
    }[case]
    before = counts(emulator)
    answer = invoke({}, path=REFRESH, headers=headers)
    assert (answer.status, answer.error_code) == (401, "not_signed_in")
    if case in ("another-deployment", "another-origin"):
        # Another page's sign-in on the same API host: not this page's, and not this page's to sign out.
        assert "Set-Cookie" not in answer.headers
    else:
        assert_clears_cookie(answer)
    assert_credentialed(answer)
    assert counts(emulator) == before


def test_a_cookie_opens_only_for_the_origin_that_signed_in_which_stays_signed_in(invoke, signed_in, emulator):
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    answer = invoke({}, path=REFRESH, headers=with_cookie(cookie), origin=OTHER_ORIGIN)
    assert (answer.status, answer.error_code) == (401, "not_signed_in")
    assert_credentialed(answer, OTHER_ORIGIN)
    assert "Set-Cookie" not in answer.headers
    assert emulator.count("auth-refresh") == 0
    assert invoke({}, path=REFRESH, headers=with_cookie(cookie)).status == 200


def test_two_sign_ins_in_one_request_are_refused_so_nobody_is_signed_in_as_another(invoke, signed_in, emulator, key):
    # A sibling subdomain can set a guest_refresh cookie that the browser sends here first: the attacker's own
    # sign-in, to make the customer chat as the attacker. Two sign-ins that open for this page: neither counts.
    mine = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    tossed = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    before = counts(emulator)
    answer = invoke({}, path=REFRESH, headers={"Cookie": f"guest_refresh={tossed}; guest_refresh={mine}"})
    assert (answer.status, answer.error_code) == (401, "not_signed_in")
    assert counts(emulator) == before
    # Cookies that do not open (junk, another key) do not hide the one that does.
    junk = "; ".join(f"guest_refresh={_tampered(mine)}" for _ in range(refresh_cookie.MAX_CANDIDATES - 1))
    assert invoke({}, path=REFRESH, headers={"Cookie": f"{junk}; guest_refresh={mine}"}).status == 200
    # Nor can more of them push the page's own cookie out of sight behind the tossed one: all are refused.
    cookies = f"guest_refresh={tossed}; {junk}; guest_refresh={_tampered(mine)}; guest_refresh={mine}"
    answer = invoke({}, path=REFRESH, headers={"Cookie": cookies})
    assert (answer.status, answer.error_code) == (401, "not_signed_in")
    # A name padded with other white space (which browsers keep, and send first from a longer path) is not ours.
    padded = "; ".join(f"\u00a0guest_refresh={_tampered(mine)}" for _ in range(refresh_cookie.MAX_CANDIDATES + 1))
    assert invoke({}, path=REFRESH, headers={"Cookie": f"{padded}; guest_refresh={mine}"}).status == 200
    assert counts(emulator)["auth-refresh"] == before["auth-refresh"] + 2


@pytest.mark.parametrize("origin", ["https://evil.example", None, "null"])
@pytest.mark.parametrize(("method", "path"), [("POST", REFRESH), ("DELETE", SIGN_IN)])
def test_a_valid_cookie_from_a_foreign_or_missing_origin_is_refused_before_genesys(
    invoke, signed_in, emulator, origin, method, path
):
    """CSRF: SameSite=Strict keeps the browser from sending the cookie cross-site; the Origin check refuses what
    sends it anyway (a script, an old browser), before the cookie is read."""
    cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    before = counts(emulator)
    answer = invoke({}, method=method, path=path, headers=with_cookie(cookie), origin=origin)
    assert (answer.status, answer.error_code) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Set-Cookie" not in answer.headers
    assert counts(emulator) == before
    # The customer is still signed in.
    assert invoke({}, path=REFRESH, headers=with_cookie(cookie)).status == 200


def test_keys_rotate_without_signing_anyone_out(invoke, signed_in, emulator, key, monkeypatch):
    old_cookie = cookie_of(invoke(authorize(emulator), path=SIGN_IN))
    new_key = Fernet.generate_key().decode()

    def rotate(*keys: str) -> None:
        signed_in.put_secret_value(SecretId=KEYS_SECRET_ID, SecretString=json.dumps({"keys": list(keys)}))
        credentials.reset()  # a container that reads the secret again (after CREDENTIALS_CACHE_SECONDS)
        refresh_cookie.reset()

    rotate(new_key, key)  # the new key seals, the old one still opens
    refreshed = invoke({}, path=REFRESH, headers=with_cookie(old_cookie))
    assert refreshed.status == 200, refreshed.body
    new_cookie = cookie_of(refreshed)
    assert sealed_payload(new_key, new_cookie)["o"] == ORIGIN  # sealed with the new key
    rotate(new_key)  # the old key dropped: what it sealed no longer opens
    assert invoke({}, path=REFRESH, headers=with_cookie(old_cookie)).error_code == "not_signed_in"
    assert invoke({}, path=REFRESH, headers=with_cookie(new_cookie)).status == 200


@pytest.mark.parametrize("secret", [{"keys": []}, {"keys": ["not a key"]}, ["a list"], {"other": 1}])
def test_a_keys_secret_that_cannot_work_is_a_500_before_the_code_is_spent(invoke, signed_in, emulator, secret):
    signed_in.put_secret_value(SecretId=KEYS_SECRET_ID, SecretString=json.dumps(secret))
    answer = invoke(authorize(emulator), path=SIGN_IN)
    assert (answer.status, answer.error_code) == (500, "internal_error")
    assert KEYS_SECRET_ID in answer.events("token_failed")[0]["detail"]
    assert emulator.count("auth-exchange") == 0


# ---- what is recorded ------------------------------------------------------------------------------------------


def test_metrics_measure_each_call_and_the_success_of_sign_in_and_refresh(invoke, signed_in, emulator):
    signing_in = invoke(authorize(emulator), path=SIGN_IN)
    refused = invoke({**authorize(emulator), "codeVerifier": new_verifier()}, path=SIGN_IN)
    cookie = cookie_of(signing_in)
    refreshed = invoke({}, path=REFRESH, headers=with_cookie(cookie))
    signing_out = invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie))

    def metrics(answer: Answer) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for document in answer.metrics:
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
        return found

    assert metrics(signing_in)["SignInSuccess"] == [1.0]
    assert "GenesysAuthExchangeLatency" in metrics(signing_in)
    assert metrics(refused)["SignInSuccess"] == [0.0]
    assert metrics(refreshed)["SignedInRefreshSuccess"] == [1.0]
    assert "GenesysAuthRefreshLatency" in metrics(refreshed)
    assert "GenesysAuthRevokeLatency" in metrics(signing_out)


def test_nothing_secret_reaches_the_logs(invoke, signed_in, emulator, key, caplog):
    caplog.set_level(logging.DEBUG)
    nonce = f"nonce-{secrets.token_urlsafe(16)}"
    body = authorize(emulator, nonce=nonce)
    answers = [invoke(body, path=SIGN_IN)]
    cookie = cookie_of(answers[0])
    answers.append(invoke(body, path=SIGN_IN))  # the code again: refused, with Genesys' text in the log
    emulator.add_fault("auth-refresh", status=500)
    answers.append(invoke({}, path=REFRESH, headers=with_cookie(cookie)))
    answers.append(invoke(method="DELETE", path=SIGN_IN, headers=with_cookie(cookie)))
    answers.append(invoke({}, path=REFRESH, headers=with_cookie(cookie)))  # refused: revoked
    answers.append(invoke({}, path=REFRESH, headers=with_cookie(_tampered(cookie))))
    assert [answer.status for answer in answers] == [200, 401, 200, 204, 401, 401]
    printed = json.dumps([answer.logs for answer in answers]) + json.dumps([a.metrics for a in answers]) + caplog.text
    refresh_token = sealed_payload(key, cookie)["r"]
    secrets_by_name = {
        "authorization code": body["code"],
        "code verifier": body["codeVerifier"],
        "nonce": nonce,
        "refresh token": refresh_token,
        "cookie": cookie,
        "renewed cookie": cookie_of(answers[2]),
        **{f"auth JWT {index}": answers[index].json["authToken"] for index in (0, 2)},
        **{f"session JWT {index}": answers[index].json["token"] for index in (0, 2)},
        "guest id": answers[0].json["guestId"],
    }
    assert not leaked(printed, secrets_by_name)
    # The audit line says the session is a signed-in customer's, never who.
    assert answers[0].events("token_issued")[0]["authenticated"] is True
    user = emulator.authenticated_user(answers[0].json["authToken"], DEMO_DEPLOYMENT_ID)
    assert user is None  # revoked by the sign-out
    assert "Alex Example" not in printed


@pytest.mark.parametrize("exp", ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "NaN", "true", '"900"', "null"])
def test_an_auth_jwt_whose_exp_no_clock_reaches_is_answered_without_a_lifetime(exp):
    # Genesys documents no claims: an exp that is not a time (a 400-digit integer is valid JSON, but no float)
    # leaves authExpiresIn out of the answer; it never fails the sign-in whose code is already spent.
    def jwt(payload: str) -> str:
        return f"e30.{base64.urlsafe_b64encode(payload.encode()).decode().rstrip('=')}.c2ln"

    assert web_deployments_token.seconds_left(jwt(f'{{"exp": {exp}}}')) is None
    left = web_deployments_token.seconds_left(jwt(f'{{"exp": {int(time.time()) + 900}}}'))
    assert left is not None and 900 - SLOW_MACHINE_SECONDS <= left <= 900


def test_sign_in_and_refresh_each_put_a_token_event_that_says_it_is_signed_in(invoke, signed_in, emulator, subscriber):
    answer = invoke(authorize(emulator), path=SIGN_IN)
    refreshed = invoke({}, path=REFRESH, headers=with_cookie(cookie_of(answer)))
    events = [event["detail"] for event in subscriber()]
    assert [event["authenticated"] for event in events] == [True, True]
    assert [event["expiresAt"] for event in events] == [answer.json["expiresAt"], refreshed.json["expiresAt"]]
    assert set(events[0]) == documented_detail_fields() - {"guestId", "scopes", "duration"}
    for secret in (answer.json["token"], answer.json["authToken"], cookie_of(answer), answer.json["guestId"]):
        assert secret not in json.dumps(events)
