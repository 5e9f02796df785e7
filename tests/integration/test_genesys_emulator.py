"""The Genesys emulator behaves like Genesys Cloud over real loopback sockets.

Other tests and ``make run`` trust it as a stand-in for Genesys, so this pins the behaviour they rely on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import urllib3

from devtools.genesys_emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    GUEST_TOKEN_PATH,
    OAUTH_PATH,
    GenesysEmulator,
    main,
)
from tests.conftest import SLOW_MACHINE_SECONDS

Http = urllib3.PoolManager
REPO_ROOT = Path(__file__).resolve().parents[2]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CLIENT_CREDENTIALS = "grant_type=client_credentials"
GUEST_REQUEST = {"guestId": "guest-123", "expirationDurationSeconds": 600, "scopes": ["a", "b"]}


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(genesys: GenesysEmulator) -> None:
    genesys.reset()


@pytest.fixture(scope="module")
def http() -> Iterator[Http]:
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=5.0)) as pool:
        yield pool


def call(http: Http, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    """Send one request; every emulator answer must carry a fresh correlation id, like Genesys."""
    response = http.request(method, url, **kwargs)
    correlation_id = response.headers.get("ININ-Correlation-Id")
    assert correlation_id is not None
    assert uuid.UUID(correlation_id).version == 4
    return response


def oauth(
    http: Http,
    genesys: GenesysEmulator,
    client_id: str = DEMO_CLIENT_ID,
    secret: str = DEMO_CLIENT_SECRET,
    body: str = CLIENT_CREDENTIALS,
) -> urllib3.BaseHTTPResponse:
    headers = {**FORM, **urllib3.make_headers(basic_auth=f"{client_id}:{secret}")}
    return call(http, "POST", genesys.base_url + OAUTH_PATH, headers=headers, body=body)


def access_token(http: Http, genesys: GenesysEmulator) -> str:
    response = oauth(http, genesys)
    assert response.status == 200
    token: str = response.json()["access_token"]
    return token


def guest_token(
    http: Http, genesys: GenesysEmulator, bearer: str | None, payload: Any = None
) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return call(
        http,
        "POST",
        genesys.base_url + GUEST_TOKEN_PATH,
        headers=headers,
        json=GUEST_REQUEST if payload is None else payload,
    )


def issued_jwt(http: Http, genesys: GenesysEmulator) -> str:
    response = guest_token(http, genesys, access_token(http, genesys))
    assert response.status == 200
    token: str = response.json()["token"]
    return token


def verify(http: Http, genesys: GenesysEmulator, token: str) -> dict[str, Any]:
    """Verify a guest JWT the way a relying party would: key by kid from the published JWKS."""
    keys = jwt.PyJWKSet.from_dict(call(http, "GET", genesys.jwks_url).json())
    key = keys[jwt.get_unverified_header(token)["kid"]]  # KeyError: kid not published
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=genesys.issuer,
        options={"require": ["sub", "scope", "iat", "exp", "iss", "jti"]},
    )
    return claims


def assert_genesys_error(response: urllib3.BaseHTTPResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]
    assert body["details"] == [] and body["errors"] == []
    return body


def test_client_credentials_issue_an_access_token(http: Http, genesys: GenesysEmulator) -> None:
    response = oauth(http, genesys)

    assert response.status == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [(DEMO_CLIENT_ID, "wrong-secret"), ("unknown-client", DEMO_CLIENT_SECRET)],
)
def test_bad_client_credentials_are_invalid_client(
    http: Http, genesys: GenesysEmulator, client_id: str, secret: str
) -> None:
    response = oauth(http, genesys, client_id, secret)

    assert response.status == 401
    assert response.json()["error"] == "invalid_client"


def test_missing_basic_auth_and_wrong_grant_type(http: Http, genesys: GenesysEmulator) -> None:
    no_auth = call(http, "POST", genesys.base_url + OAUTH_PATH, headers=FORM, body=CLIENT_CREDENTIALS)
    wrong_grant = oauth(http, genesys, body="grant_type=password")

    assert no_auth.status == 401
    assert no_auth.json()["error"] == "invalid_client"
    assert wrong_grant.status == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


def test_set_client_rotates_the_secret(http: Http, genesys: GenesysEmulator) -> None:
    genesys.set_client("rotating-client", "first-secret")
    assert oauth(http, genesys, "rotating-client", "first-secret").status == 200

    genesys.set_client("rotating-client", "second-secret")

    assert oauth(http, genesys, "rotating-client", "first-secret").status == 401
    assert oauth(http, genesys, "rotating-client", "second-secret").status == 200


def test_guest_token_is_rs256_jwt_verifiable_against_the_jwks(http: Http, genesys: GenesysEmulator) -> None:
    token = issued_jwt(http, genesys)

    claims = verify(http, genesys, token)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": genesys.kid, "typ": "JWT"}
    assert claims["sub"] == "guest-123"
    assert claims["scope"] == "a b"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["iss"] == genesys.issuer == genesys.base_url
    assert uuid.UUID(claims["jti"]).version == 4
    [jwk] = genesys.public_jwks()["keys"]
    assert {jwk["kid"], jwk["use"], jwk["alg"], jwk["kty"]} == {genesys.kid, "sig", "RS256", "RSA"}


def test_guest_token_requires_a_live_bearer_token(http: Http, genesys: GenesysEmulator) -> None:
    bearer = access_token(http, genesys)

    missing = guest_token(http, genesys, None)
    forged = guest_token(http, genesys, "not-issued-by-genesys")
    genesys.revoke_access_tokens()
    revoked = guest_token(http, genesys, bearer)
    fresh = guest_token(http, genesys, access_token(http, genesys))

    for response in (missing, forged, revoked):
        body = assert_genesys_error(response, 401, "bad.credentials")
        assert body["message"] == "Invalid login credentials."
    assert fresh.status == 200


def test_access_tokens_expire_after_their_ttl(http: Http, genesys: GenesysEmulator) -> None:
    genesys.set_access_token_ttl(0)

    issued = oauth(http, genesys).json()

    assert issued["expires_in"] == 0
    assert_genesys_error(guest_token(http, genesys, issued["access_token"]), 401, "bad.credentials")


@pytest.mark.parametrize(
    "payload",
    [
        {"expirationDurationSeconds": 600, "scopes": ["a"]},
        {"guestId": "g", "expirationDurationSeconds": 0, "scopes": ["a"]},
        {"guestId": "g", "expirationDurationSeconds": 86401, "scopes": ["a"]},
        {"guestId": "g", "expirationDurationSeconds": "600", "scopes": ["a"]},
        {"guestId": "g", "expirationDurationSeconds": 600, "scopes": []},
        ["not", "an", "object"],
    ],
)
def test_malformed_guest_token_request_is_400(http: Http, genesys: GenesysEmulator, payload: Any) -> None:
    response = guest_token(http, genesys, access_token(http, genesys), payload)

    assert_genesys_error(response, 400, "bad.request")


def test_rate_limit_fault_then_normal_service(http: Http, genesys: GenesysEmulator) -> None:
    bearer = access_token(http, genesys)
    genesys.add_fault("guest-token", status=429, retry_after=7, times=2)
    genesys.add_fault("guest-token", status=429)

    limited = [guest_token(http, genesys, bearer) for _ in range(3)]
    served = guest_token(http, genesys, bearer)

    for response in limited:
        assert_genesys_error(response, 429, "too.many.requests.retry.after")
    assert [response.headers.get("Retry-After") for response in limited] == ["7", "7", None]
    assert len({response.headers["ININ-Correlation-Id"] for response in limited}) == 3
    assert served.status == 200
    assert genesys.count("guest-token") == 4


def test_retry_after_is_sent_verbatim(http: Http, genesys: GenesysEmulator) -> None:
    http_date = "Wed, 21 Oct 2015 07:28:00 GMT"
    genesys.add_fault("jwks", status=503, retry_after=http_date)

    response = call(http, "GET", genesys.jwks_url)

    assert_genesys_error(response, 503, "service.unavailable")
    assert response.headers["Retry-After"] == http_date


@pytest.mark.parametrize("status", [400, 401])
def test_oauth_4xx_faults_look_like_oauth_errors(http: Http, genesys: GenesysEmulator, status: int) -> None:
    genesys.add_fault("oauth", status=status)

    faulted = oauth(http, genesys)

    assert faulted.status == status
    assert faulted.json()["error"] == "invalid_client"
    assert oauth(http, genesys).status == 200


def test_oauth_server_error_fault_uses_the_genesys_error_body(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("oauth", status=502)

    assert_genesys_error(oauth(http, genesys), 502, "bad.gateway")


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        ("guest-token", "no-token", {}),
        ("guest-token", "not-jwt", {"token": "not-a-jwt"}),
        ("oauth", "no-access-token", {"token_type": "bearer"}),
    ],
)
def test_json_body_faults(
    http: Http, genesys: GenesysEmulator, route: str, body: str, expected: dict[str, Any]
) -> None:
    bearer = access_token(http, genesys)
    genesys.add_fault(route, body=body)

    response = oauth(http, genesys) if route == "oauth" else guest_token(http, genesys, bearer)

    assert response.status == 200
    assert response.json() == expected


def test_not_json_body_fault(http: Http, genesys: GenesysEmulator) -> None:
    bearer = access_token(http, genesys)
    genesys.add_fault("guest-token", body="not-json")
    genesys.add_fault("guest-token", body="not-json", status=502)

    garbage = guest_token(http, genesys, bearer)
    gateway_page = guest_token(http, genesys, bearer)

    assert (garbage.status, gateway_page.status) == (200, 502)
    for response in (garbage, gateway_page):
        assert response.headers["Content-Type"].startswith("text/html")
        with pytest.raises(ValueError):
            response.json()


@pytest.mark.parametrize(
    ("mutation", "error"),
    [
        ({"expired": True}, jwt.ExpiredSignatureError),
        ({"bad_signature": True}, jwt.InvalidSignatureError),
        ({"unknown_kid": True}, KeyError),
    ],
)
def test_token_mutations_fail_verification(
    http: Http, genesys: GenesysEmulator, mutation: dict[str, Any], error: type[Exception]
) -> None:
    genesys.add_fault("guest-token", **mutation)

    token = issued_jwt(http, genesys)

    with pytest.raises(error):
        verify(http, genesys, token)
    verify(http, genesys, issued_jwt(http, genesys))  # the fault was used up


def test_alg_none_token_is_unsigned(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("guest-token", alg_none=True)

    token = issued_jwt(http, genesys)

    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert token.endswith(".")
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(http, genesys, token)


def test_claim_mutations_are_validly_signed(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("guest-token", sub="someone-else", scopes=["x"], token_lifetime=5)

    claims = verify(http, genesys, issued_jwt(http, genesys))

    assert claims["sub"] == "someone-else"
    assert claims["scope"] == "x"
    assert claims["exp"] - claims["iat"] == 5


def test_fault_without_times_lasts_until_cleared(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("jwks", status=500, times=None)

    statuses = [call(http, "GET", genesys.jwks_url).status for _ in range(3)]
    genesys.clear_faults()

    assert statuses == [500, 500, 500]
    assert call(http, "GET", genesys.jwks_url).status == 200


def test_http_control_routes(http: Http, genesys: GenesysEmulator) -> None:
    control = genesys.base_url + "/__emulator/"
    bearer = access_token(http, genesys)

    assert call(http, "POST", control + "faults", json={"route": "guest-token", "status": 503}).status == 204
    assert_genesys_error(guest_token(http, genesys, bearer), 503, "service.unavailable")
    call(http, "POST", control + "faults", json={"route": "jwks", "status": 500, "times": None})
    assert call(http, "DELETE", control + "faults").status == 204
    assert call(http, "GET", genesys.jwks_url).status == 200

    assert call(http, "POST", control + "revoke").status == 204
    assert guest_token(http, genesys, bearer).status == 401

    rotate = {"clientId": "other-client", "clientSecret": "other-secret"}
    assert call(http, "POST", control + "clients", json=rotate).status == 204
    assert oauth(http, genesys, "other-client", "other-secret").status == 200
    assert call(http, "POST", control + "access-token-ttl", json={"seconds": 60}).status == 204
    assert oauth(http, genesys).json()["expires_in"] == 60

    counts = call(http, "GET", control + "requests").json()["counts"]
    assert counts == {"oauth": 3, "guest-token": 2, "jwks": 1}

    assert call(http, "POST", control + "reset").status == 204
    assert call(http, "GET", control + "requests").json()["counts"] == {
        "oauth": 0,
        "guest-token": 0,
        "jwks": 0,
    }


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"route": "nowhere"},
        {"route": "jwks", "colour": "red"},
        {"route": "jwks", "times": 0},
    ],
)
def test_bad_control_fault_is_rejected(http: Http, genesys: GenesysEmulator, fault: dict[str, Any]) -> None:
    response = call(http, "POST", genesys.base_url + "/__emulator/faults", json=fault)

    assert_genesys_error(response, 400, "bad.request")
    assert call(http, "GET", genesys.jwks_url).status == 200


def test_counts_and_recorded_requests(http: Http, genesys: GenesysEmulator) -> None:
    genesys.add_fault("jwks", status=500)
    bearer = access_token(http, genesys)
    guest_token(http, genesys, bearer)
    call(http, "GET", genesys.jwks_url)
    call(http, "GET", genesys.jwks_url)
    unknown = call(http, "GET", genesys.base_url + "/api/v2/nothing-here")
    wrong_method = call(http, "GET", genesys.base_url + OAUTH_PATH)

    assert_genesys_error(unknown, 404, "not.found")
    assert wrong_method.status == 405
    assert (genesys.count("oauth"), genesys.count("guest-token"), genesys.count("jwks")) == (2, 1, 2)
    assert genesys.count("unknown") == 1
    recorded = genesys.requests
    assert [(r.route, r.method, r.status) for r in recorded] == [
        ("oauth", "POST", 200),
        ("guest-token", "POST", 200),
        ("jwks", "GET", 500),
        ("jwks", "GET", 200),
        ("unknown", "GET", 404),
        ("oauth", "GET", 405),
    ]
    assert recorded[1].headers["Authorization"] == f"Bearer {bearer}"
    assert recorded[1].body.startswith(b"{")
    with pytest.raises(ValueError):
        genesys.count("guest_token")


def test_delayed_answer_times_out_the_client_and_does_not_hold_up_stop() -> None:
    emulator = GenesysEmulator().start()
    emulator.add_fault("jwks", delay=30, times=None)
    outcome: list[BaseException] = []

    def pending_request() -> None:
        try:
            urllib3.request("GET", emulator.jwks_url, retries=False, timeout=10.0)
        except urllib3.exceptions.HTTPError as exc:
            outcome.append(exc)

    try:
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            urllib3.request("GET", emulator.jwks_url, retries=False, timeout=urllib3.Timeout(read=0.2))
        client = threading.Thread(target=pending_request)
        client.start()
        deadline = time.monotonic() + 5
        while emulator.count("jwks") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emulator.count("jwks") == 2
    finally:
        started = time.monotonic()
        emulator.stop()
        stop_took = time.monotonic() - started

    assert stop_took < SLOW_MACHINE_SECONDS  # not the delayed answer's 30 s
    client.join(timeout=5)
    assert not client.is_alive()
    assert len(outcome) == 1  # the server hung up instead of answering


def test_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        GenesysEmulator("0.0.0.0")
    with pytest.raises(SystemExit) as exited:
        main(["--host", "192.0.2.1"])
    assert exited.value.code == 2


def test_cli_serves_until_sigterm(http: Http) -> None:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "devtools.genesys_emulator", "--port", "0"]
    command += ["--client-id", "cli", "--client-secret", "s"]
    env = {**os.environ, "PYTHONPATH": pythonpath}
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("Genesys emulator listening on http://127.0.0.1:")
            base_url = line.rsplit(" ", 1)[1]
            headers = {**FORM, **urllib3.make_headers(basic_auth="cli:s")}
            response = call(http, "POST", base_url + OAUTH_PATH, headers=headers, body=CLIENT_CREDENTIALS)
            assert response.status == 200

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()
