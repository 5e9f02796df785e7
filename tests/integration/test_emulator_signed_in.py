"""The Genesys emulator signs customers in as Genesys' authenticated web messaging does (issue 24).

Its OpenID provider (``/oidc/*``), the web deployments token calls (exchange, refresh, revoke) and the Guest
API's ``configureAuthenticatedSession`` over real loopback sockets: urllib3 for HTTP, websockets' client for the
Guest API. Expiry is driven through the control routes and the configurable lifetimes, never by waiting.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import urllib3
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from devtools.genesys_emulator import (
    AUTH_EXCHANGE_PATH,
    AUTH_REFRESH_PATH,
    AUTH_REVOKE_PATH,
    DEMO_DEPLOYMENT_ID,
    MESSAGES_PATH,
    GenesysEmulator,
    main,
)
from devtools.oidc_emulator import DEMO_OIDC_CLIENT_ID, SIGN_IN_TITLE, pkce_challenge

Http = urllib3.PoolManager
# Every answer on a healthy socket arrives within milliseconds; this only bounds a broken test.
WAIT = 30.0
REDIRECT_URI = "http://127.0.0.1:3080/demo/?signed-in=1"
OTHER_DEPLOYMENT_ID = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"
UNAUTHORIZED_FRAME = {"type": "response", "class": "string", "code": 401, "body": "User is unauthorized"}
LOGOUT_EVENT = {"type": "message", "class": "LogoutEvent", "code": 200, "body": {}}


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(genesys: GenesysEmulator) -> None:
    genesys.reset()
    # The agent's replies would interleave with the answers most tests read in order; its own test turns it on.
    genesys._webmessaging.agent_reply_seconds = None
    genesys.set_deployment(OTHER_DEPLOYMENT_ID)


@pytest.fixture(scope="module")
def http() -> Iterator[Http]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=5.0)) as pool:
        yield pool


# -- helpers -------------------------------------------------------------------------------------------


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 of RFC 7636's unreserved characters


def authorize_url(genesys: GenesysEmulator, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": DEMO_OIDC_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        **params,
    }
    return f"{genesys.oidc_url}/authorize?{urlencode(query)}"


def redirected(response: urllib3.BaseHTTPResponse, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """What a 302 from the provider adds to ``redirect_uri``'s query."""
    assert response.status == 302
    assert response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    assert location.startswith(redirect_uri)
    own = parse_qs(urlsplit(redirect_uri).query)
    query = parse_qs(urlsplit(location).query)
    assert all(query[name] == values for name, values in own.items())  # the redirect URI's own query is kept
    return {name: values[-1] for name, values in query.items() if name not in own}


def sign_in(
    http: Http, genesys: GenesysEmulator, name: str = "Alex Example", nonce: str | None = None
) -> tuple[str, str]:
    """A customer signs in at the provider over HTTP (``login_hint``); the code and PKCE verifier."""
    verifier = new_verifier()
    state = str(uuid.uuid4())
    params = {"state": state, "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
    if nonce is not None:
        params["nonce"] = nonce
    response = http.request("GET", authorize_url(genesys, login_hint=name, **params), redirect=False)
    query = redirected(response)
    assert query["state"] == state
    return query["code"], verifier


def exchange(
    http: Http,
    genesys: GenesysEmulator,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str = REDIRECT_URI,
    nonce: str | None = None,
    deployment_id: str = DEMO_DEPLOYMENT_ID,
) -> urllib3.BaseHTTPResponse:
    oauth: dict[str, str] = {"code": code, "redirectUri": redirect_uri}
    if verifier is not None:
        oauth["codeVerifier"] = verifier
    if nonce is not None:
        oauth["nonce"] = nonce
    body = {"deploymentId": deployment_id, "oauth": oauth}
    return http.request("POST", genesys.base_url + AUTH_EXCHANGE_PATH, json=body)


def signed_in(http: Http, genesys: GenesysEmulator, name: str = "Alex Example") -> dict[str, str]:
    """``{"jwt", "refreshToken"}`` for a customer who signed in and whose code was exchanged."""
    code, verifier = sign_in(http, genesys, name)
    response = exchange(http, genesys, code, verifier)
    assert response.status == 200, response.data
    tokens: dict[str, str] = response.json()
    return tokens


def refresh(
    http: Http, genesys: GenesysEmulator, refresh_token: str, deployment_id: str | None = DEMO_DEPLOYMENT_ID
) -> urllib3.BaseHTTPResponse:
    body = {"refreshToken": refresh_token}
    if deployment_id is not None:
        body["deploymentId"] = deployment_id
    return http.request("POST", genesys.base_url + AUTH_REFRESH_PATH, json=body)


def revoke(http: Http, genesys: GenesysEmulator, auth_jwt: str | None) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"bearer {auth_jwt}"} if auth_jwt is not None else {}
    return http.request("DELETE", genesys.base_url + AUTH_REVOKE_PATH, headers=headers)


def control(http: Http, genesys: GenesysEmulator, method: str, action: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    return http.request(method, f"{genesys.base_url}/__emulator/{action}", **kwargs)


def assert_genesys_error(response: urllib3.BaseHTTPResponse, status: int, code: str) -> str:
    """Genesys' REST error shape; returns its message."""
    assert response.status == status, response.data
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]
    assert body["details"] == [] and body["errors"] == []
    message: str = body["message"]
    assert message
    return message


def verify_auth_jwt(http: Http, genesys: GenesysEmulator, token: str, deployment_id: str = DEMO_DEPLOYMENT_ID) -> Any:
    keys = jwt.PyJWKSet.from_dict(http.request("GET", genesys.jwks_url).json())
    key = keys[jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=genesys.issuer,
        audience=deployment_id,
        options={"require": ["iss", "aud", "sub", "iat", "exp", "jti"]},
    )


def guest(genesys: GenesysEmulator, deployment_id: str = DEMO_DEPLOYMENT_ID) -> ClientConnection:
    return connect(f"{genesys.webmessaging_url}/v1?deploymentId={deployment_id}", open_timeout=WAIT, close_timeout=0.5)


def send(ws: ClientConnection, action: str, **fields: Any) -> str:
    tracing_id = str(uuid.uuid4())
    ws.send(json.dumps({"action": action, **fields, "tracingId": tracing_id}))
    return tracing_id


def receive(ws: ClientConnection, timeout: float = WAIT) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return frame


def configure_authenticated(
    ws: ClientConnection, token: str, auth_jwt: str, deployment_id: str = DEMO_DEPLOYMENT_ID, **fields: Any
) -> dict[str, Any]:
    """configureAuthenticatedSession as the transport SDK sends it, and its answer."""
    send(
        ws,
        "configureAuthenticatedSession",
        token=token,
        deploymentId=deployment_id,
        startNew=False,
        data={"code": auth_jwt},
        **fields,
    )
    return receive(ws)


def configure(ws: ClientConnection, token: str) -> dict[str, Any]:
    send(ws, "configureSession", token=token, deploymentId=DEMO_DEPLOYMENT_ID)
    return receive(ws)


def get_jwt(ws: ClientConnection, token: str) -> dict[str, Any]:
    send(ws, "getJwt", token=token)
    return receive(ws)


def history(http: Http, genesys: GenesysEmulator, session_jwt: str) -> urllib3.BaseHTTPResponse:
    return http.request("GET", genesys.base_url + MESSAGES_PATH, headers={"Authorization": f"Bearer {session_jwt}"})


def assert_session_response(frame: dict[str, Any], *, new_session: bool, cleared: bool = False) -> None:
    assert (frame["type"], frame["class"], frame["code"]) == ("response", "SessionResponse", 200)
    assert "tracingId" not in frame  # untagged, as Genesys' SDK fixtures show answers
    body = frame["body"]
    assert body["connected"] is True and body["readOnly"] is False
    assert (body["newSession"], body["clearedExistingSession"]) == (new_session, cleared)


def assert_guest_error(frame: dict[str, Any], code: int) -> None:
    assert (frame["type"], frame["class"], frame["code"]) == ("response", "string", code)
    assert isinstance(frame["body"], str) and frame["body"]
    assert "tracingId" not in frame


# -- the happy path --------------------------------------------------------------------------------------


def test_a_signed_in_customer_chats_refreshes_and_signs_out(http: Http, genesys: GenesysEmulator) -> None:
    code, verifier = sign_in(http, genesys, nonce="n-0S6_WzA2Mj")
    exchanged = exchange(http, genesys, code, verifier, nonce="n-0S6_WzA2Mj")
    assert exchanged.status == 200
    tokens = exchanged.json()
    assert set(tokens) == {"jwt", "refreshToken"}
    auth_jwt, refresh_token = tokens["jwt"], tokens["refreshToken"]
    claims = verify_auth_jwt(http, genesys, auth_jwt)
    assert jwt.get_unverified_header(auth_jwt)["kid"] == genesys.kid
    assert claims["name"] == "Alex Example" and claims["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert claims["exp"] - claims["iat"] == 900
    assert uuid.UUID(claims["jti"])

    with guest(genesys) as ws, guest(genesys) as other_tab, guest(genesys) as stranger:
        configure(stranger, "someone-else")
        assert_session_response(configure_authenticated(ws, "signed-in", auth_jwt), new_session=True)
        jwt_answer = get_jwt(ws, "signed-in")
        assert jwt_answer["class"] == "JwtResponse" and "tracingId" not in jwt_answer
        session_jwt = jwt_answer["body"]["jwt"]
        send(ws, "onMessage", token="signed-in", message={"type": "Text", "text": "hello"})
        receive(ws)
        listed = history(http, genesys, session_jwt)
        assert listed.status == 200
        assert [entity["text"] for entity in listed.json()["entities"]] == ["hello"]

        refreshed = refresh(http, genesys, refresh_token)
        assert refreshed.status == 200
        assert set(refreshed.json()) == {"jwt"}
        new_auth_jwt = refreshed.json()["jwt"]
        assert new_auth_jwt != auth_jwt
        assert verify_auth_jwt(http, genesys, new_auth_jwt)["sub"] == claims["sub"]
        # Another tab of the same customer resumes the session with the refreshed auth JWT.
        assert_session_response(configure_authenticated(other_tab, "signed-in", new_auth_jwt), new_session=False)
        anonymous, session = genesys.sessions()
        assert session["authenticated"] is True and session["name"] == "Alex Example"
        assert session["loggedOut"] is False
        assert (anonymous["authenticated"], anonymous["name"], anonymous["loggedOut"]) == (False, None, False)

        revoked = revoke(http, genesys, auth_jwt)
        assert revoked.status == 204 and revoked.data == b""
        assert receive(ws) == LOGOUT_EVENT
        assert receive(other_tab) == LOGOUT_EVENT
        with pytest.raises(TimeoutError):
            receive(stranger, timeout=0.3)  # another guest's session is not signed out
        after_logout = get_jwt(ws, "signed-in")  # the socket must configure again
        reconfigured = configure_authenticated(other_tab, "signed-in", new_auth_jwt)  # revoked with its sign-in

    assert_guest_error(after_logout, 4007)
    assert reconfigured == UNAUTHORIZED_FRAME
    assert_genesys_error(refresh(http, genesys, refresh_token), 400, "bad.request")
    assert history(http, genesys, session_jwt).status == 401
    assert [session["loggedOut"] for session in genesys.sessions()] == [False, True]
    assert (genesys.count("auth-exchange"), genesys.count("auth-refresh"), genesys.count("auth-revoke")) == (1, 2, 1)
    assert genesys.count("configure-authenticated-session") == 3
    assert genesys.count("oidc-authorize") == 1


def test_the_agent_greets_the_signed_in_customer_by_name(genesys: GenesysEmulator, http: Http) -> None:
    genesys._webmessaging.agent_reply_seconds = 0.0
    tokens = signed_in(http, genesys, "Sam Sample")
    with guest(genesys) as ws:
        configure_authenticated(ws, "greeted", tokens["jwt"])
        send(ws, "onMessage", token="greeted", message={"type": "Text", "text": "hi"})
        frames = [receive(ws) for _ in range(3)]  # the echo, Typing and the reply, Typing maybe first

    [reply] = [
        frame["body"] for frame in frames if frame["body"].get("direction") == "Outbound" and "text" in frame["body"]
    ]
    assert reply["text"] == "Thanks, Sam Sample! You wrote: hi"


def test_the_provider_token_endpoint_and_its_keys(http: Http, genesys: GenesysEmulator) -> None:
    verifier = new_verifier()
    code = genesys.authorize(REDIRECT_URI, pkce_challenge(verifier), nonce="abc", name="Kim Key")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    answer = http.request_encode_body("POST", genesys.oidc_url + "/token", fields=form, encode_multipart=False)
    again = http.request_encode_body("POST", genesys.oidc_url + "/token", fields=form, encode_multipart=False)
    keys = http.request("GET", genesys.oidc_url + "/jwks").json()

    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["access_token"]
    key = jwt.PyJWKSet.from_dict(keys)[jwt.get_unverified_header(body["id_token"])["kid"]]
    claims = jwt.decode(
        body["id_token"], key.key, algorithms=["RS256"], audience=DEMO_OIDC_CLIENT_ID, issuer=genesys.oidc_url
    )
    assert (claims["name"], claims["nonce"]) == ("Kim Key", "abc")
    assert keys == http.request("GET", genesys.jwks_url).json()
    assert again.status == 400 and again.json()["error"] == "invalid_grant"
    # The same name is the same customer, sign-in after sign-in.
    tokens = signed_in(http, genesys, "Kim Key")
    assert verify_auth_jwt(http, genesys, tokens["jwt"])["sub"] == claims["sub"]


# -- the exchange refuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("reused code", "already been used"),
        ("expired code", "expired"),
        ("unknown code", "not known"),
        ("wrong verifier", "does not match"),
        ("verifier missing", "verifier is missing"),
        ("challenge missing", "no code challenge"),
        ("malformed verifier", "RFC 7636"),
        ("wrong redirect URI", "redirect URI"),
        ("nonce mismatch", "nonce"),
        ("nonce missing", "nonce"),
        ("unknown deployment", "Deployment"),
    ],
)
def test_the_exchange_refuses(http: Http, genesys: GenesysEmulator, case: str, says: str) -> None:
    verifier = new_verifier()
    challenge = None if case == "challenge missing" else pkce_challenge(verifier)
    code = genesys.authorize(REDIRECT_URI, challenge, nonce="the-nonce")
    shown_verifier: str | None = verifier
    fields: dict[str, Any] = {"nonce": "the-nonce"}
    if case == "reused code":
        assert exchange(http, genesys, code, verifier, **fields).status == 200
    elif case == "expired code":
        assert control(http, genesys, "POST", "auth/expire-codes").status == 204
    elif case == "unknown code":
        code = secrets.token_urlsafe(32)
    elif case == "wrong verifier":
        shown_verifier = new_verifier()
    elif case == "verifier missing":
        shown_verifier = None
    elif case == "malformed verifier":
        shown_verifier = "too-short"
    elif case == "wrong redirect URI":
        fields["redirect_uri"] = "http://127.0.0.1:3080/demo/elsewhere"
    elif case == "nonce mismatch":
        fields["nonce"] = "another-nonce"
    elif case == "nonce missing":
        del fields["nonce"]
    elif case == "unknown deployment":
        fields["deployment_id"] = "no-such-deployment"

    refused = exchange(http, genesys, code, shown_verifier, **fields)

    message = assert_genesys_error(refused, 400, "bad.request")
    assert says in message
    assert code not in message and verifier not in message


def test_a_code_is_used_up_by_a_failed_attempt_but_not_by_an_unknown_deployment(
    http: Http, genesys: GenesysEmulator
) -> None:
    verifier = new_verifier()
    code = genesys.authorize(REDIRECT_URI, pkce_challenge(verifier))
    other_code = genesys.authorize(REDIRECT_URI, pkce_challenge(verifier))

    assert exchange(http, genesys, code, new_verifier()).status == 400
    assert exchange(http, genesys, code, verifier).status == 400
    assert exchange(http, genesys, other_code, verifier, deployment_id="nowhere").status == 400
    assert exchange(http, genesys, other_code, verifier).status == 200


def test_a_code_without_pkce_or_nonce_is_exchanged_without_them(http: Http, genesys: GenesysEmulator) -> None:
    code = genesys.authorize(REDIRECT_URI, None)

    assert exchange(http, genesys, code, None, nonce="ignored: authorize had none").status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"oauth": {"code": "c", "redirectUri": REDIRECT_URI}},
        {"deploymentId": DEMO_DEPLOYMENT_ID},
        {"deploymentId": DEMO_DEPLOYMENT_ID, "oauth": {"redirectUri": REDIRECT_URI}},
        {"deploymentId": DEMO_DEPLOYMENT_ID, "oauth": {"idToken": "x.y.z", "redirectUri": REDIRECT_URI}},
        {"deploymentId": DEMO_DEPLOYMENT_ID, "oauth": {"code": "c"}},
        {"deploymentId": DEMO_DEPLOYMENT_ID, "oauth": {"code": "c", "redirectUri": REDIRECT_URI, "codeVerifier": 1}},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_exchange_is_400(http: Http, genesys: GenesysEmulator, body: Any) -> None:
    response = http.request("POST", genesys.base_url + AUTH_EXCHANGE_PATH, json=body)

    assert_genesys_error(response, 400, "bad.request")


def test_each_token_call_accepts_only_its_method(http: Http, genesys: GenesysEmulator) -> None:
    wrong_method = http.request("GET", genesys.base_url + AUTH_EXCHANGE_PATH)

    assert_genesys_error(wrong_method, 405, "error")
    assert wrong_method.headers["Allow"] == "POST"
    assert http.request("POST", genesys.base_url + AUTH_REVOKE_PATH).headers["Allow"] == "DELETE"


# -- refresh and revoke refuse ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["expired", "revoked", "unknown", "another deployment", "issued expired"])
def test_refresh_refuses(http: Http, genesys: GenesysEmulator, case: str) -> None:
    if case == "issued expired":
        genesys.set_auth_lifetimes(refresh_token=0)
    tokens = signed_in(http, genesys)
    refresh_token, deployment_id = tokens["refreshToken"], DEMO_DEPLOYMENT_ID
    if case == "expired":
        assert control(http, genesys, "POST", "auth/expire-refresh-tokens").status == 204
    elif case == "revoked":
        assert revoke(http, genesys, tokens["jwt"]).status == 204
    elif case == "unknown":
        refresh_token = secrets.token_urlsafe(48)
    elif case == "another deployment":
        deployment_id = OTHER_DEPLOYMENT_ID

    message = assert_genesys_error(refresh(http, genesys, refresh_token, deployment_id), 400, "bad.request")

    assert refresh_token not in message


def test_refresh_without_a_deployment_id_as_the_transport_sdk_sends_it(http: Http, genesys: GenesysEmulator) -> None:
    tokens = signed_in(http, genesys)

    assert refresh(http, genesys, tokens["refreshToken"], None).status == 200
    assert_genesys_error(
        http.request("POST", genesys.base_url + AUTH_REFRESH_PATH, json={"deploymentId": DEMO_DEPLOYMENT_ID}),
        400,
        "bad.request",
    )


@pytest.mark.parametrize("case", ["missing", "unknown", "expired", "revoked", "a guest token"])
def test_revoke_refuses_a_dead_auth_jwt_with_401(http: Http, genesys: GenesysEmulator, case: str) -> None:
    tokens = signed_in(http, genesys)
    auth_jwt: str | None = tokens["jwt"]
    if case == "missing":
        auth_jwt = None
    elif case == "unknown":
        auth_jwt = "not-issued"
    elif case == "expired":
        assert control(http, genesys, "POST", "auth/expire-auth-jwts").status == 204
    elif case == "revoked":
        assert revoke(http, genesys, auth_jwt).status == 204
    elif case == "a guest token":
        with guest(genesys) as ws:
            configure(ws, "anonymous")
            auth_jwt = get_jwt(ws, "anonymous")["body"]["jwt"]

    assert_genesys_error(revoke(http, genesys, auth_jwt), 401, "bad.credentials")
    if case == "expired":
        # The refresh token outlives its auth JWTs: a fresh one signs out.
        assert revoke(http, genesys, refresh(http, genesys, tokens["refreshToken"]).json()["jwt"]).status == 204


# -- configureAuthenticatedSession refuses ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["revoked", "expired", "issued expired", "not issued", "another deployment"])
def test_configure_authenticated_session_refuses_with_the_401_frame(
    http: Http, genesys: GenesysEmulator, case: str
) -> None:
    if case == "issued expired":
        assert control(http, genesys, "POST", "auth/lifetimes", json={"authJwtSeconds": 0}).status == 204
    tokens = signed_in(http, genesys)
    auth_jwt, deployment_id = tokens["jwt"], DEMO_DEPLOYMENT_ID
    if case == "revoked":
        assert revoke(http, genesys, auth_jwt).status == 204
    elif case == "expired":
        genesys.expire_auth_jwts()
    elif case == "not issued":
        # Signed with the emulator's own key and with the right claims, but never handed out.
        claims = jwt.decode(auth_jwt, options={"verify_signature": False})
        auth_jwt = jwt.encode(
            {**claims, "jti": str(uuid.uuid4())}, genesys.signing_key, algorithm="RS256", headers={"kid": genesys.kid}
        )
    elif case == "another deployment":
        deployment_id = OTHER_DEPLOYMENT_ID

    with guest(genesys, deployment_id) as ws:
        refused = configure_authenticated(ws, "refused", auth_jwt, deployment_id)
        unconfigured = get_jwt(ws, "refused")
        refreshed = refresh(http, genesys, tokens["refreshToken"]).json().get("jwt")
        retried = configure_authenticated(ws, "refused", refreshed, deployment_id) if case == "expired" else None

    assert refused == UNAUTHORIZED_FRAME  # exactly the transport SDK fixture's frame
    assert_guest_error(unconfigured, 4007)
    if retried is not None:  # what the transport SDK does on the 401: refresh, then configure again
        assert_session_response(retried, new_session=True)


def test_the_401_frame_echoes_the_tracing_id_when_answers_are_tagged(http: Http, genesys: GenesysEmulator) -> None:
    genesys.tag_answers = True
    with guest(genesys) as ws:
        tracing_id = send(
            ws, "configureAuthenticatedSession", token="t", deploymentId=DEMO_DEPLOYMENT_ID, data={"code": "x"}
        )
        refused = receive(ws)

    assert refused == {**UNAUTHORIZED_FRAME, "tracingId": tracing_id}


@pytest.mark.parametrize("data", [None, {}, {"code": ""}, {"code": 7}, "x"])
def test_configure_authenticated_session_without_data_code_is_4020(genesys: GenesysEmulator, data: Any) -> None:
    fields = {} if data is None else {"data": data}
    with guest(genesys) as ws:
        send(ws, "configureAuthenticatedSession", token="t", deploymentId=DEMO_DEPLOYMENT_ID, **fields)
        answer = receive(ws)

    assert_guest_error(answer, 4020)


def test_an_authenticated_session_cannot_be_configured_anonymously(http: Http, genesys: GenesysEmulator) -> None:
    tokens = signed_in(http, genesys)
    with guest(genesys) as ws, guest(genesys) as stranger:
        configure_authenticated(ws, "mine", tokens["jwt"])
        downgrade = configure(stranger, "mine")
        still_mine = get_jwt(ws, "mine")
    assert revoke(http, genesys, tokens["jwt"]).status == 204
    with guest(genesys) as ws:
        after_sign_out = configure(ws, "mine")

    assert_guest_error(downgrade, 4017)
    assert still_mine["class"] == "JwtResponse"
    assert_guest_error(after_sign_out, 4017)
    [listed] = control(http, genesys, "GET", "sessions").json()["sessions"]
    assert (listed["authenticated"], listed["name"], listed["loggedOut"]) == (True, "Alex Example", True)


def test_a_guest_signs_in_on_the_same_session_and_another_customer_clears_it(
    http: Http, genesys: GenesysEmulator
) -> None:
    alex, sam = signed_in(http, genesys, "Alex Example"), signed_in(http, genesys, "Sam Sample")
    with guest(genesys) as ws:
        assert_session_response(configure(ws, "shared"), new_session=True)
        send(ws, "onMessage", token="shared", message={"type": "Text", "text": "before signing in"})
        receive(ws)
        upgraded = configure_authenticated(ws, "shared", alex["jwt"])
        [anonymous_then_alex] = genesys.sessions()
        replaced = configure_authenticated(ws, "shared", sam["jwt"])
        [sams] = genesys.sessions()

    assert_session_response(upgraded, new_session=False)  # the conversation goes on, now signed in
    assert anonymous_then_alex["messages"] == 1 and anonymous_then_alex["name"] == "Alex Example"
    assert_session_response(replaced, new_session=True, cleared=True)
    assert sams["id"] != anonymous_then_alex["id"] and sams["messages"] == 0 and sams["name"] == "Sam Sample"


# -- faults ----------------------------------------------------------------------------------------------


def call_route(http: Http, genesys: GenesysEmulator, route: str, tokens: dict[str, str]) -> urllib3.BaseHTTPResponse:
    if route == "auth-exchange":
        code, verifier = sign_in(http, genesys)
        return exchange(http, genesys, code, verifier)
    if route == "auth-refresh":
        return refresh(http, genesys, tokens["refreshToken"])
    return revoke(http, genesys, tokens["jwt"])


HTTP_ROUTES = ["auth-exchange", "auth-refresh", "auth-revoke"]


@pytest.mark.parametrize("route", HTTP_ROUTES)
def test_status_faults_then_normal_service(http: Http, genesys: GenesysEmulator, route: str) -> None:
    tokens = signed_in(http, genesys)
    genesys.add_fault(route, status=429, retry_after=7)
    genesys.add_fault(route, status=503)

    limited = call_route(http, genesys, route, tokens)
    unavailable = call_route(http, genesys, route, tokens)
    served = call_route(http, genesys, route, tokens)

    assert_genesys_error(limited, 429, "too.many.requests.retry.after")
    assert limited.headers["Retry-After"] == "7"
    assert_genesys_error(unavailable, 503, "service.unavailable")
    assert "Retry-After" not in unavailable.headers
    assert served.status in (200, 204)


@pytest.mark.parametrize("route", HTTP_ROUTES)
def test_not_json_and_delay_faults(http: Http, genesys: GenesysEmulator, route: str) -> None:
    tokens = signed_in(http, genesys)
    genesys.add_fault(route, body="not-json", status=502)
    genesys.add_fault(route, delay=0.3)

    garbage = call_route(http, genesys, route, tokens)
    started = time.monotonic()
    delayed = call_route(http, genesys, route, tokens)
    took = time.monotonic() - started

    assert garbage.status == 502 and garbage.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        garbage.json()
    assert delayed.status in (200, 204)
    assert took >= 0.3


def test_faults_over_the_control_api_and_counts(http: Http, genesys: GenesysEmulator) -> None:
    tokens = signed_in(http, genesys)
    fault = {"route": "auth-refresh", "status": 500}
    assert control(http, genesys, "POST", "faults", json=fault).status == 204

    assert_genesys_error(refresh(http, genesys, tokens["refreshToken"]), 500, "internal.server.error")
    snapshot = control(http, genesys, "GET", "requests").json()

    assert snapshot["authCounts"] == {
        "auth-exchange": 1,
        "auth-refresh": 1,
        "auth-revoke": 0,
        "configure-authenticated-session": 0,
        "oidc-authorize": 1,
        "oidc-token": 0,
        "oidc-jwks": 0,
    }
    # The original keys keep their shapes for their readers.
    assert set(snapshot["counts"]) == {"oauth", "guest-token", "jwks"}
    assert "configure-authenticated-session" not in snapshot["webMessagingCounts"]


@pytest.mark.parametrize(
    ("route", "fault"),
    [
        ("auth-exchange", {"code": 4000}),
        ("auth-exchange", {"body": "no-token"}),
        ("auth-refresh", {"token": "x"}),
        ("auth-revoke", {"expired": True}),
        ("configure-authenticated-session", {"status": 503}),
        ("configure-authenticated-session", {"retry_after": 2}),
        ("configure-authenticated-session", {"body": "no-token"}),
        ("oidc-authorize", {"drop": True}),
    ],
)
def test_faults_that_cannot_apply_are_refused(
    http: Http, genesys: GenesysEmulator, route: str, fault: dict[str, Any]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        genesys.add_fault(route, **fault)
    response = control(http, genesys, "POST", "faults", json={"route": route, **fault})
    assert_genesys_error(response, 400, "bad.request")


def test_configure_authenticated_session_faults(http: Http, genesys: GenesysEmulator) -> None:
    tokens = signed_in(http, genesys)
    route = "configure-authenticated-session"
    genesys.add_fault(route, code=4029, retry_after=3)
    genesys.add_fault(route, code=5000)
    genesys.add_fault(route, body="not-json")
    genesys.add_fault(route, delay=0.3)
    genesys.add_fault(route, drop=True)
    with guest(genesys) as ws:
        limited = configure_authenticated(ws, "faulted", tokens["jwt"])
        failed = configure_authenticated(ws, "faulted", tokens["jwt"])
        send(ws, "configureAuthenticatedSession", token="faulted", deploymentId=DEMO_DEPLOYMENT_ID, data={})
        garbage = ws.recv(timeout=WAIT)
        started = time.monotonic()
        delayed = configure_authenticated(ws, "faulted", tokens["jwt"])
        took = time.monotonic() - started
        send(ws, "configureAuthenticatedSession", token="faulted", deploymentId=DEMO_DEPLOYMENT_ID, data={})
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)

    assert limited["class"] == "TooManyRequestsErrorMessage" and limited["body"]["retryAfter"] == 3
    assert_guest_error(failed, 5000)
    assert isinstance(garbage, str) and garbage.startswith("<html>")
    assert_session_response(delayed, new_session=True)
    assert took >= 0.3
    assert genesys.count(route) == 5


# -- the sign-in page and the provider's refusals --------------------------------------------------------


class _Form(HTMLParser):
    """The page's form: its method, action and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.fields: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.method, self.action = values["method"], values["action"]
        elif tag == "input":
            self.fields[values["name"]] = values.get("value", "")
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def test_the_sign_in_page_for_people(http: Http, genesys: GenesysEmulator) -> None:
    verifier = new_verifier()
    hostile_state = '"><script>alert(1)</script>'
    params = {
        "state": hostile_state,
        "nonce": "page-nonce",
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    page = http.request("GET", authorize_url(genesys, **params), redirect=False)
    text = page.data.decode()
    form = _Form()
    form.feed(text)

    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    assert form.title == SIGN_IN_TITLE
    assert (form.method, form.action) == ("post", "/oidc/authorize")
    assert form.fields["login_hint"] == "Alex Example"
    assert form.fields["state"] == hostile_state and "<script>" not in text  # carried back, escaped
    assert form.fields["redirect_uri"] == REDIRECT_URI

    form.fields["login_hint"] = "Pat Person"
    submitted = http.request_encode_body(
        "POST", genesys.base_url + form.action, fields=form.fields, encode_multipart=False, redirect=False
    )
    query = redirected(submitted)
    exchanged = exchange(http, genesys, query["code"], verifier, nonce="page-nonce")

    assert query["state"] == hostile_state
    assert exchanged.status == 200
    assert verify_auth_jwt(http, genesys, exchanged.json()["jwt"])["name"] == "Pat Person"


def test_the_provider_refuses_what_it_cannot_sign_in(http: Http, genesys: GenesysEmulator) -> None:
    no_redirect = http.request("GET", f"{genesys.oidc_url}/authorize?response_type=code&login_hint=x", redirect=False)
    fragment = http.request(
        "GET", authorize_url(genesys, redirect_uri="http://127.0.0.1/cb#frag", login_hint="x"), redirect=False
    )
    implicit = http.request(
        "GET", authorize_url(genesys, response_type="id_token", state="s1", login_hint="x"), redirect=False
    )
    plain = http.request(
        "GET",
        authorize_url(genesys, code_challenge="a" * 43, code_challenge_method="plain", login_hint="x"),
        redirect=False,
    )

    for page in (no_redirect, fragment):
        assert page.status == 400 and page.headers["Content-Type"].startswith("text/html")
        assert "Location" not in page.headers
    assert redirected(implicit) == {
        "error": "unsupported_response_type",
        "error_description": "response_type must be code.",
        "state": "s1",
    }
    assert redirected(plain)["error"] == "invalid_request"
    with pytest.raises(ValueError):
        genesys.authorize("not a url", None)
    with pytest.raises(ValueError):
        genesys.authorize(REDIRECT_URI, "not-an-s256-challenge")
    with pytest.raises(ValueError):
        genesys.authorize(REDIRECT_URI, None, name="\n")


# -- configuration and logs ----------------------------------------------------------------------------------


def test_lifetimes_are_configurable_and_reset_restores_them(http: Http) -> None:
    with GenesysEmulator(auth_jwt_lifetime=60, refresh_token_lifetime=120).start() as emulator:
        first = verify_auth_jwt(http, emulator, signed_in(http, emulator)["jwt"])
        lifetimes = {"authJwtSeconds": 30, "refreshTokenSeconds": 0}
        assert control(http, emulator, "POST", "auth/lifetimes", json=lifetimes).status == 204
        tokens = signed_in(http, emulator)
        second = verify_auth_jwt(http, emulator, tokens["jwt"])
        expired_refresh = refresh(http, emulator, tokens["refreshToken"])
        bad = [
            control(http, emulator, "POST", "auth/lifetimes", json=body)
            for body in ({"authJwtSeconds": -1}, {"refreshTokenSeconds": "60"}, {"colour": 1})
        ]
        emulator.reset()
        restored = (emulator.auth_jwt_lifetime, emulator.refresh_token_lifetime)

    assert first["exp"] - first["iat"] == 60
    assert second["exp"] - second["iat"] == 30
    assert_genesys_error(expired_refresh, 400, "bad.request")
    for response in bad:
        assert_genesys_error(response, 400, "bad.request")
    assert restored == (60, 120)
    with pytest.raises(ValueError):
        GenesysEmulator(auth_jwt_lifetime=-1)
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0", "--refresh-token-lifetime", "-5"])
    assert exited.value.code == 2


def test_reset_forgets_codes_and_sign_ins(http: Http, genesys: GenesysEmulator) -> None:
    tokens = signed_in(http, genesys)
    verifier = new_verifier()
    code = genesys.authorize(REDIRECT_URI, pkce_challenge(verifier))

    genesys.reset()

    assert exchange(http, genesys, code, verifier).status == 400
    assert refresh(http, genesys, tokens["refreshToken"]).status == 400


def test_verbose_output_never_shows_a_code_verifier_token_or_name(
    http: Http, capsys: pytest.CaptureFixture[str]
) -> None:
    with GenesysEmulator(verbose=True).start() as emulator:
        code, verifier = sign_in(http, emulator, "Vera Verbose")
        tokens = exchange(http, emulator, code, verifier).json()
        refreshed = refresh(http, emulator, tokens["refreshToken"]).json()["jwt"]
        with guest(emulator) as ws:
            configure_authenticated(ws, "verbose-session", tokens["jwt"])
            configure_authenticated(ws, "verbose-session", "refused")
            revoke(http, emulator, refreshed)
            receive(ws)
        page = http.request("GET", authorize_url(emulator, state="s"), redirect=False)
        assert page.status == 200

    logged = capsys.readouterr().err
    assert "auth-exchange" in logged and "LogoutEvent" in logged
    for secret in (code, verifier, tokens["jwt"], tokens["refreshToken"], refreshed, "Vera", "verbose-session"):
        assert secret not in logged
