"""The fault matrix: what Genesys or AWS does, what the widget gets back, how many upstream calls were made,
and what was logged; one row per case, through the real handler with API Gateway events, against the Genesys
emulator over sockets and moto's Secrets Manager.

Every row is also checked for the invariants a contact centre relies on on a bad day: exactly one JSON answer
in the documented shape; no 5xx for a caller's mistake; the invocation ends with its time budget (give or take
what a loaded machine adds, SLOW_MACHINE_SECONDS); no more upstream attempts than the cap; and no secret
material in any log line or EMF blob it wrote (warm-up invocations included).
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from guest_token import credentials, genesys

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator
from tests.conftest import SECRET_ID, SLOW_MACHINE_SECONDS, Answer

CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
ROTATED_SECRET = "rotated-client-secret-7d1e"
UNKNOWN_SECRET = "a-secret-nobody-told-us-5b2f"
ALL_ROUTES_FAILING = ("oauth", "guest-token", "jwks")
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.")
SUCCESS_FIELDS = {"token", "guestId", "scopes", "expiresIn", "expiresAt"}


@dataclass
class World:
    """What a case's setup may change: the emulator, the environment, the secret, and a silent server."""

    emulator: GenesysEmulator
    env: pytest.MonkeyPatch
    secrets_manager: Any
    silent_url: str


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None  # None for a 200
    # Attempts the service made per Genesys call, from its genesys_call log lines; a range where the
    # deadline decides whether a last, already hopeless attempt starts.
    oauth: int | range
    guest_token: int | range
    setup: Callable[[World], None] = lambda world: None
    body: Any = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)  # other keyword arguments of invoke
    warm: bool = False  # an earlier request cached the secret and an access token in this container
    timeout: float = 10.0  # the Lambda function's timeout for this invocation: its time budget
    # A log line besides the audit entry every token request gets: its event and a phrase in its detail.
    logged: tuple[str, str | None] | None = None
    retry_after: range | None = None
    caller_mistake: bool = False
    at_once: bool = False  # answers without waiting anything out
    off_emulator: tuple[str, ...] = ()  # calls pointed elsewhere, so the emulator does not see them


def fault(route: str, **fields: Any) -> Callable[[World], None]:
    return lambda world: world.emulator.add_fault(route, **fields)


def setenv(name: str, value: str) -> Callable[[World], None]:
    return lambda world: world.env.setenv(name, value)


def put_secret(text: str) -> Callable[[World], None]:
    return lambda world: world.secrets_manager.put_secret_value(SecretId=SECRET_ID, SecretString=text)


def http_date(seconds_from_now: float) -> Callable[[World], None]:
    # Computed when the case runs, not when the table is built.
    return lambda world: world.emulator.add_fault(
        "guest-token", status=429, retry_after=email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)
    )


def with_jwks(**token_fault: Any) -> Callable[[World], None]:
    def setup(world: World) -> None:
        world.env.setenv("GENESYS_JWKS_URL", world.emulator.jwks_url)
        world.emulator.add_fault("guest-token", **token_fault)

    return setup


def silent(variable: str) -> Callable[[World], None]:
    return lambda world: world.env.setenv(variable, world.silent_url)


def rotate_credentials(world: World) -> None:
    world.emulator.set_client(DEMO_CLIENT_ID, ROTATED_SECRET)
    put_secret(json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": ROTATED_SECRET}))(world)
    world.emulator.revoke_access_tokens()


def every_route_failing(world: World) -> None:
    for route in ALL_ROUTES_FAILING:
        world.emulator.add_fault(route, status=503, times=None)


CASES = [
    # ---- Genesys rate limiting -------------------------------------------------------------------------
    Case("429-retry-after-within-budget", 200, None, 1, 2, fault("guest-token", status=429, retry_after=1)),
    Case(
        "429-retry-after-beyond-time-left",
        429,
        "rate_limited",
        1,
        1,
        fault("guest-token", status=429, retry_after=30),
        timeout=20,
        retry_after=range(30, 31),
        at_once=True,
        logged=("genesys_retry_abandoned", None),
    ),
    Case("429-without-retry-after", 200, None, 1, 2, fault("guest-token", status=429)),
    Case("429-retry-after-http-date-past", 200, None, 1, 2, http_date(-5)),
    Case(
        "429-retry-after-http-date-beyond-time-left",
        429,
        "rate_limited",
        1,
        1,
        http_date(120),
        timeout=20,
        retry_after=range(100, 122),
        at_once=True,
    ),
    Case(
        "429-storm-outlasting-every-attempt",
        429,
        "rate_limited",
        1,
        3,
        fault("guest-token", status=429, retry_after=0, times=None),
        retry_after=range(1, 2),
        logged=("token_failed", "429 too.many.requests"),
    ),
    Case(
        "oauth-429-storm",
        429,
        "rate_limited",
        3,
        0,
        fault("oauth", status=429, retry_after=0, times=None),
        retry_after=range(1, 2),
    ),
    # ---- Genesys errors and outages --------------------------------------------------------------------
    Case("500-once", 200, None, 1, 2, fault("guest-token", status=500)),
    Case("502-once", 200, None, 1, 2, fault("guest-token", status=502)),
    Case(
        "503-every-attempt",
        503,
        "upstream_unavailable",
        1,
        3,
        fault("guest-token", status=503, times=None),
        logged=("token_failed", "503 service.unavailable"),
    ),
    Case(
        "504-every-attempt",
        503,
        "upstream_unavailable",
        1,
        3,
        fault("guest-token", status=504, times=None),
        logged=("token_failed", "504 gateway.timeout"),
    ),
    Case("oauth-503-every-attempt", 503, "upstream_unavailable", 3, 0, fault("oauth", status=503, times=None)),
    Case(
        "400-not-retried",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", status=400),
        logged=("token_failed", "400 bad.request"),
    ),
    Case(
        "guest-token-connection-refused",
        503,
        "upstream_unavailable",
        1,
        3,
        setenv("GENESYS_API_BASE_URL", CLOSED_PORT_URL),
        logged=("token_failed", "guest-token unreachable"),
        off_emulator=("guest-token",),
    ),
    Case(
        "oauth-connection-refused",
        503,
        "upstream_unavailable",
        3,
        0,
        setenv("GENESYS_OAUTH_BASE_URL", CLOSED_PORT_URL),
        logged=("token_failed", "oauth unreachable"),
        off_emulator=("oauth",),
    ),
    Case(
        "accepts-and-never-answers",
        504,
        "upstream_timeout",
        1,
        range(1, 3),
        silent("GENESYS_API_BASE_URL"),
        timeout=1.5 + SLOW_MACHINE_SECONDS,  # the guest-token call, not a slow cold start, meets the deadline
        logged=("token_failed", "guest-token did not answer in time"),
        off_emulator=("guest-token",),
    ),
    Case("slow-oauth-within-budget", 200, None, 1, 1, fault("oauth", delay=0.5)),
    Case(
        "slow-oauth-beyond-budget",
        504,
        "upstream_timeout",
        range(1, 3),
        0,
        fault("oauth", delay=30),
        timeout=1.5 + SLOW_MACHINE_SECONDS,  # the OAuth call, not a slow cold start, meets the deadline
        logged=("token_failed", "oauth did not answer in time"),
    ),
    # ---- what Genesys answers with 200 ------------------------------------------------------------------
    Case(
        "body-not-json",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", body="not-json"),
        logged=("token_failed", "without a token"),
    ),
    Case(
        "json-without-token",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", body="no-token"),
        logged=("token_failed", "without a token"),
    ),
    Case(
        "token-not-a-jwt",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", body="not-jwt"),
        logged=("token_failed", "not a JWT"),
    ),
    Case(
        "oauth-json-without-access-token",
        502,
        "upstream_error",
        1,
        0,
        fault("oauth", body="no-access-token"),
        logged=("token_failed", "without access_token"),
    ),
    # ---- tokens that fail verification ------------------------------------------------------------------
    Case(
        "token-expired",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", expired=True),
        logged=("token_failed", "expired"),
    ),
    # A token living longer than asked (30 days for "short") would make MaxTokenLifetimeSeconds a control on
    # paper; one just past the 30 s clock leeway is refused too, one within it is not.
    Case(
        "token-lives-30-days-for-a-short-request",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", token_lifetime=30 * 86400),
        body={"duration": "short"},
        logged=("token_failed", "further away than any Genesys guest token lives"),
    ),
    Case(
        "token-lives-longer-than-asked",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", token_lifetime=3600 + 60),
        body={"duration": "short"},
        logged=("token_failed", "lives longer than the 3600 s asked for"),
    ),
    Case(
        "token-lives-as-long-as-asked-within-the-leeway",
        200,
        None,
        1,
        1,
        fault("guest-token", token_lifetime=3600 + 10),
        body={"duration": "short"},
    ),
    Case(
        "token-sub-of-another-guest",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", sub="6b3a2c1d-0000-4000-8000-000000000000"),
        logged=("token_failed", "sub is not the requested guest id"),
    ),
    Case(
        "token-missing-a-scope",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", scopes=["webmessaging:guest:send"]),
        logged=("token_failed", "lacks requested scopes: webmessaging:guest:receive"),
    ),
    Case(
        "token-alg-none",
        502,
        "upstream_error",
        1,
        1,
        fault("guest-token", alg_none=True),
        logged=("token_failed", "'none' is not accepted"),
    ),
    Case(
        "token-bad-signature-with-jwks",
        502,
        "upstream_error",
        1,
        1,
        with_jwks(bad_signature=True),
        logged=("token_failed", "InvalidSignatureError"),
    ),
    Case(
        "token-unknown-kid-with-jwks",
        502,
        "upstream_error",
        1,
        1,
        with_jwks(unknown_kid=True),
        logged=("token_failed", "signing key not usable"),
    ),
    Case(
        "token-alg-none-with-jwks",
        502,
        "upstream_error",
        1,
        1,
        with_jwks(alg_none=True),
        logged=("token_failed", "'none' is not accepted"),
    ),
    # ---- OAuth: rotation, bad credentials, revocation ---------------------------------------------------
    Case(
        "credentials-rotated-in-secrets-manager",
        200,
        None,
        2,
        2,
        rotate_credentials,
        warm=True,
        logged=("oauth_credentials_reloaded", None),
    ),
    Case(
        "bad-credentials-in-the-secret",
        503,
        "upstream_unavailable",
        1,
        0,
        lambda world: world.emulator.set_client(DEMO_CLIENT_ID, UNKNOWN_SECRET),
        logged=("token_failed", f"rejected the OAuth client credentials in secret {SECRET_ID}"),
    ),
    Case(
        "access-token-revoked-early",
        200,
        None,
        1,
        2,
        lambda world: world.emulator.revoke_access_tokens(),
        warm=True,
        logged=("oauth_token_rejected", None),
    ),
    Case(
        "access-token-refused-even-after-refresh",
        502,
        "upstream_error",
        2,
        2,
        fault("guest-token", status=401, times=None),
        logged=("token_failed", "401"),
    ),
    # ---- Secrets Manager -------------------------------------------------------------------------------
    Case(
        "secrets-manager-unreachable",
        503,
        "upstream_unavailable",
        0,
        0,
        setenv("SECRETS_MANAGER_ENDPOINT_URL", CLOSED_PORT_URL),
        logged=("token_failed", "Secrets Manager unreachable"),
    ),
    # A Secrets Manager that accepts and never answers: the read ends before the deadline, however little
    # time is left (the usual client with time to spare, the quick one-attempt client without).
    Case(
        "secrets-manager-silent",
        503,
        "upstream_unavailable",
        0,
        0,
        silent("SECRETS_MANAGER_ENDPOINT_URL"),
        logged=("token_failed", "Secrets Manager unreachable"),
    ),
    Case(
        "secrets-manager-silent-little-time-left",
        503,
        "upstream_unavailable",
        0,
        0,
        silent("SECRETS_MANAGER_ENDPOINT_URL"),
        # Less than the usual client's worst case left (so the quick one reads), however long the start took.
        timeout=credentials.USUAL_WORST_CASE_SECONDS,
        logged=("token_failed", "Secrets Manager unreachable"),
    ),
    Case(
        "secret-missing",
        500,
        "internal_error",
        0,
        0,
        setenv("GENESYS_CREDENTIALS_SECRET_ID", "genesys-guest-token/missing"),
        logged=("token_failed", "cannot read secret genesys-guest-token/missing: ResourceNotFoundException"),
    ),
    Case(
        "secret-not-json",
        500,
        "internal_error",
        0,
        0,
        put_secret("clientId=demo-client-id"),
        logged=("token_failed", f"secret {SECRET_ID} is not JSON"),
    ),
    Case(
        "secret-json-without-client-secret",
        500,
        "internal_error",
        0,
        0,
        put_secret(json.dumps({"clientId": DEMO_CLIENT_ID})),
        logged=("token_failed", "non-empty string fields clientId and clientSecret"),
    ),
    # ---- a caller's mistakes while every Genesys route fails: never a 5xx, never an upstream call ------
    *[
        Case(
            f"caller-{name}",
            status,
            code,
            0,
            0,
            every_route_failing,
            body=body,
            request=request,
            caller_mistake=True,
        )
        for name, status, code, body, request in [
            ("truncated-json", 400, "invalid_json", None, {"raw": '{"guestId": '}),
            ("non-utf8", 400, "invalid_json", None, {"raw": b'{"a": "\xff"}'}),
            ("unknown-field", 422, "invalid_request", {"guestID": "x"}, {}),
            ("36-dashes", 422, "invalid_request", {"guestId": "-" * 36}, {}),
            (
                "foreign-origin",
                403,
                "origin_not_allowed",
                {},
                {"origin": "https://evil.example"},
            ),
            (
                "text-plain",
                415,
                "unsupported_media_type",
                {},
                {"headers": {"Content-Type": "text/plain"}},
            ),
            ("wrong-method", 405, "method_not_allowed", None, {"method": "GET"}),
            ("unknown-path", 404, "not_found", None, {"method": "GET", "path": "/tokens"}),
        ]
    ],
]


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """A server that accepts connections (the kernel completes them from the backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def attempts(answer: Answer) -> dict[str, list[int]]:
    """The attempt numbers the service made, per Genesys call."""
    return {"oauth": [], "guest-token": [], **answer.attempts()}


def secret_material(emulator: GenesysEmulator, *answers: Answer) -> set[str]:
    """Every value that must never be written: client secrets, Basic and Bearer values, issued tokens."""
    values = {DEMO_CLIENT_SECRET, ROTATED_SECRET, UNKNOWN_SECRET}
    for secret in (DEMO_CLIENT_SECRET, ROTATED_SECRET, UNKNOWN_SECRET):
        values.add(base64.b64encode(f"{DEMO_CLIENT_ID}:{secret}".encode()).decode())
    for request in emulator.requests:
        authorization = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
        if authorization:
            values.add(authorization.split(" ", 1)[-1])
    for answer in answers:
        if answer.status == 200:
            values.add(answer.json["token"])
    return values


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fault_matrix(
    case: Case,
    invoke: Any,
    emulator: GenesysEmulator,
    env: pytest.MonkeyPatch,
    secrets_manager: Any,
    silent_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # other libraries' log records (urllib3, botocore) are scanned too
    written: list[Answer] = []
    material: set[str] = set()
    if case.warm:
        written.append(invoke({}))
        assert written[-1].status == 200
        material |= secret_material(emulator, *written)
        emulator.reset()
    case.setup(World(emulator, env, secrets_manager, silent_server))

    started = time.monotonic()
    answer = invoke(case.body, timeout_seconds=case.timeout, **case.request)
    elapsed = time.monotonic() - started
    written.append(answer)

    # What the widget gets back.
    assert answer.status == case.status, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    document = json.loads(answer.body)  # exactly one JSON document, nothing else
    if case.code is None:
        assert set(document) == SUCCESS_FIELDS
        assert document["guestId"] and document["token"]
    else:
        assert set(document) == {"error"}
        assert {"code", "message", "requestId"} <= set(document["error"]) <= {"code", "message", "requestId", "details"}
        assert document["error"]["code"] == case.code
        assert document["error"]["requestId"]
    if case.retry_after is not None:
        assert int(answer.headers["Retry-After"]) in case.retry_after
    elif answer.status in (503, 504):
        # Wait at least as long as the service already spent trying (2 to 30 s): retries must not multiply. What
        # it spent is its own audit line's latency, read just after the Retry-After was (elapsed here adds the
        # answer's way back, which a loaded machine stretches).
        assert int(answer.headers["Retry-After"]) in range(2, 31)
        [outcome] = answer.events("token_failed")
        assert int(answer.headers["Retry-After"]) >= int(outcome["latencyMs"] / 1000), outcome["latencyMs"]
    else:
        assert "Retry-After" not in answer.headers
    if case.caller_mistake:
        assert 400 <= answer.status < 500 and answer.status != 429

    # How many upstream calls were made, and that none exceeded the cap.
    made = attempts(answer)
    for call, expected in (("oauth", case.oauth), ("guest-token", case.guest_token)):
        count = len(made[call])
        assert count in expected if isinstance(expected, range) else count == expected, (call, made)
        # Each call restarts at attempt 1, never goes past the cap, and is made at most twice (once more
        # after a 401 or after re-reading rotated credentials).
        assert all(1 <= number <= genesys.MAX_ATTEMPTS for number in made[call])
        assert made[call].count(1) <= 2
        seen = 0 if call in case.off_emulator else count
        assert emulator.count(call) == seen, (call, "every attempt that reached Genesys is logged, and only those")

    # The time budget: the invocation ends before Lambda would stop it, give or take a slow machine (the rows'
    # silent peers would hold it far longer); an answer at once is one well before the budget runs out.
    assert elapsed < case.timeout + SLOW_MACHINE_SECONDS, elapsed
    if case.at_once:
        assert elapsed < case.timeout / 2, elapsed

    # What was logged: one audit entry per token request with the answer's status, and the case's line.
    outcomes = answer.events("token_issued") + answer.events("token_failed")
    if outcomes:
        assert [line["status"] for line in outcomes] == [answer.status]
    if case.logged is not None:
        event, phrase = case.logged
        lines = answer.events(event)
        assert lines, f"no {event} line"
        if phrase is not None:
            assert any(phrase in str(line.get("detail", line.get("message"))) for line in lines), lines

    # No secret material anywhere in what this case wrote.
    material |= secret_material(emulator, *written)
    text = json.dumps([a.logs for a in written]) + json.dumps([a.metrics for a in written]) + caplog.text
    leaked = sorted(value for value in material if value in text)
    assert not leaked, "secret material in the logs"
    assert not JWT_SHAPE.search(text), "a JWT in the logs"
    assert "Bearer " not in text and "Basic " not in text


def test_the_matrix_covers_every_kind_of_answer() -> None:
    # A guard against the table shrinking: every documented error status appears in it.
    assert {case.status for case in CASES} >= {200, 400, 403, 404, 405, 415, 422, 429, 500, 502, 503, 504}
    assert len({case.id for case in CASES}) == len(CASES)
