"""Issue 22's third attack, answered: repeated headers on the Guest API's handshake, base URLs in other
spellings, an access token that cannot be a bearer, Genesys' texts echoing a secret respelt, and a resolver
that stalls. Each over real sockets, each checked for what the widget gets and what the logs hold."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from guest_token import settings
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from devtools.genesys_emulator import DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID
from tests.conftest import SLOW_MACHINE_SECONDS

REPO = Path(__file__).resolve().parents[2]
GUEST = "5d0e9bd0-51a2-4e9a-8f6f-9f0fb0f5f0a1"


# ---- 1. repeated headers on the handshake ------------------------------------------------------------------


class RepeatingProxy:
    """A Guest API behind a proxy that repeats ININ-Correlation-Id and Retry-After on the handshake's answer:
    ``status`` refuses the upgrade (503, 429) or lets it through (101, to the emulator's Guest API frames)."""

    def __init__(self, status: int, retry_after: tuple[str, ...] = ()) -> None:
        self.status = status
        self.retry_after = retry_after
        self.open: set[ServerConnection] = set()
        self.lock = threading.Lock()
        self.server = serve(self._serve, "127.0.0.1", 0, process_request=self._request, process_response=self._response)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"

    def _request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.status == 101:
            return None
        return connection.respond(self.status, "refused\n")

    def _response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        headers: Headers = response.headers
        for value in ("first-correlation", "second-correlation"):
            headers["ININ-Correlation-Id"] = value  # websockets' Headers adds a value: the header repeats
        for value in self.retry_after:
            headers["Retry-After"] = value

    def _serve(self, connection: ServerConnection) -> None:
        with self.lock:
            self.open.add(connection)
        try:
            for raw in connection:
                request = json.loads(raw)
                answer = (
                    {"class": "SessionResponse", "body": {"connected": True, "newSession": True, "readOnly": False}}
                    if request["action"] == "configureSession"
                    else {"class": "JwtResponse", "body": {"jwt": "opaque-session-jwt", "exp": int(time.time()) + 900}}
                )
                connection.send(json.dumps({"type": "response", "code": 200, **answer}))
        except Exception:  # the client went away
            pass
        finally:
            with self.lock:
                self.open.discard(connection)

    def still_open(self) -> int:
        """The connections still open once they have had time to close: a round trip each, which a busy machine
        can make slow; a leaked one never closes."""
        deadline = time.monotonic() + 2 * SLOW_MACHINE_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                if not self.open:
                    return 0
            time.sleep(0.05)
        with self.lock:
            return len(self.open)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def repeating() -> Iterator[Any]:
    proxies: list[RepeatingProxy] = []

    def start(status: int, *retry_after: str) -> RepeatingProxy:
        proxies.append(RepeatingProxy(status, retry_after))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.stop()


def test_a_101_with_repeated_headers_opens_the_session_and_closes_every_socket(invoke, webmessaging, repeating):
    proxy = repeating(101)
    webmessaging.setenv("GENESYS_WEBMESSAGING_BASE_URL", proxy.url)
    answers = [invoke({}) for _ in range(10)]
    assert [answer.status for answer in answers] == [200] * 10, answers[0].body
    assert answers[0].events("token_issued")[0]["genesysCorrelationId"] == "first-correlation"
    assert proxy.still_open() == 0  # once 9-10 of 10 stayed open


def test_a_503_with_repeated_headers_is_an_outage_not_a_500(invoke, webmessaging, repeating):
    proxy = repeating(503, "1", "2")
    webmessaging.setenv("GENESYS_WEBMESSAGING_BASE_URL", proxy.url)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")


def test_a_429_with_repeated_retry_after_waits_the_longest(invoke, webmessaging, repeating):
    proxy = repeating(429, "30", "60", "soon")
    webmessaging.setenv("GENESYS_WEBMESSAGING_BASE_URL", proxy.url)
    answer = invoke({})
    # Longer than the request has: the widget is told at once, with the most conservative of the waits.
    assert (answer.status, answer.error_code, answer.headers["Retry-After"]) == (429, "rate_limited", "60")


# ---- 4. base URLs in other spellings ------------------------------------------------------------------------


def test_a_base_url_in_capitals_with_the_default_port_is_normalised_once():
    loaded = settings.load_settings(
        {
            "GENESYS_CREDENTIALS_SECRET_ID": "s",
            "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID,
            "GENESYS_WEBMESSAGING_BASE_URL": "WSS://WebMessaging.MyPureCloud.com:443/",
            "GENESYS_API_BASE_URL": "https://API.mypurecloud.com:443",
            "GENESYS_OAUTH_BASE_URL": "HTTPS://Login.mypurecloud.com:8443",
        }
    )
    assert loaded.webmessaging_base_url == "wss://webmessaging.mypurecloud.com"
    assert loaded.api_base_url == "https://api.mypurecloud.com"
    assert loaded.oauth_base_url == "https://login.mypurecloud.com:8443"


def test_a_host_spelt_in_capitals_reaches_the_guest_api(invoke, webmessaging, emulator):
    # Once every request answered 502 "redirected": websockets writes Host in lower case.
    webmessaging.setenv("GENESYS_WEBMESSAGING_BASE_URL", f"WS://LocalHost:{emulator.webmessaging_port}")
    assert invoke({}).status == 200


# ---- 5. an access token that is not a bearer token -----------------------------------------------------------


def _json_answer(status: int, document: Any) -> tuple[bytes, bytes]:
    body = json.dumps(document).encode()
    head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head, body


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "abc def", "abc\x00", "tôken"])
def test_an_access_token_that_cannot_be_a_bearer_is_refused_and_not_cached(invoke, env, hostile_http, token):
    marked = f"{token}-{uuid.uuid4().hex}"
    for _ in range(2):
        env.setenv(
            "GENESYS_OAUTH_BASE_URL", hostile_http(*_json_answer(200, {"access_token": marked, "expires_in": 3600}), 0)
        )
        settings.reset()
        answer = invoke({})
        # Not cached: the next request asks again (a second one-shot server), and never sends it on.
        assert (answer.status, answer.error_code) == (502, "upstream_error")
        assert "RFC 6750" in answer.events("token_failed")[0]["detail"]
        assert marked.rsplit("-", maxsplit=1)[-1] not in json.dumps(answer.logs)


# ---- 6. Genesys' texts echoing a secret, respelt ---------------------------------------------------------------

RESPELLINGS = {
    "exact": lambda secret: secret,
    "capitals": str.upper,
    "no dashes": lambda secret: secret.replace("-", ""),
    "capitals, no dashes": lambda secret: secret.replace("-", "").upper(),
    "url-encoded": lambda secret: quote(secret, safe="").replace("-", "%2D"),
    "every character url-encoded": lambda secret: "".join(f"%{ord(char):02X}" for char in secret),
}


@pytest.mark.parametrize("respell", RESPELLINGS.values(), ids=RESPELLINGS.keys())
def test_a_session_token_echoed_respelt_by_the_guest_api_is_not_logged(invoke, scripted, respell):
    def refusal(request: dict[str, Any]) -> list[dict[str, Any]]:
        echoed = respell(request["token"])
        return [{"type": "response", "class": "string", "code": 4000, "body": f"token {echoed} refused " + "x" * 150}]

    scripted.scripts["configureSession"] = [refusal]
    answer = invoke({"guestId": GUEST})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    logged = json.dumps(answer.logs).lower()
    for piece in (GUEST[:8], GUEST.replace("-", "")[-12:], GUEST[-12:]):
        assert piece not in logged
    assert "[session token]" in answer.events("token_failed")[0]["detail"]


def test_a_class_holding_the_session_token_is_never_logged(invoke, scripted):
    def odd_class(request: dict[str, Any]) -> list[dict[str, Any]]:
        token = request["token"]
        return [
            {"type": "response", "class": token, "code": 200, "body": {}},
            {"type": "response", "class": "x" * 600_000, "code": 200, "body": {}},
            {"type": "response", "class": "SessionResponse", "code": 200, "body": {"connected": True}},
        ]

    scripted.scripts["configureSession"] = [odd_class]
    answer = invoke({"guestId": GUEST})
    assert answer.status == 200
    logged = json.dumps(answer.logs)
    assert GUEST[:8] not in logged.lower() and len(logged) < 20_000


def test_an_oauth_error_echoing_the_client_secret_respelt_is_not_logged(invoke, env, hostile_http):
    message = " ".join(respell(DEMO_CLIENT_SECRET) for respell in RESPELLINGS.values())
    env.setenv("GENESYS_OAUTH_BASE_URL", hostile_http(*_json_answer(400, {"error": "bad", "message": message}), 0))
    answer = invoke({})
    assert answer.status == 502
    logged = json.dumps(answer.logs).lower()
    assert "client-secret" not in logged and "clientsecret" not in logged and "%63" not in logged


# ---- 7. a resolver that stalls ---------------------------------------------------------------------------------

STALLING_DNS = "127.0.0.77"  # a loopback address of its own, so no local resolver is in the way
RESOLVER_PROBE = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from guest_token.budget import Deadline
    from guest_token.errors import ServiceError
    from guest_token.genesys import guest_api, rest, retries
    from guest_token.settings import load_settings

    settings = load_settings({"GENESYS_CREDENTIALS_SECRET_ID": "s", "GENESYS_DEPLOYMENT_ID": sys.argv[2],
                              "GENESYS_API_BASE_URL": "https://api.stalled.test"})
    outcomes = {}
    for name, call in {
        "http": lambda deadline: rest.get_deployment(settings, "t", sys.argv[2], deadline),
        "websocket": lambda deadline: guest_api.open_session(
            "wss://webmessaging.stalled.test", deployment_id=sys.argv[2], session_token="t", origin="https://a.test",
            deadline=deadline,
        ),
    }.items():
        started = time.monotonic()
        try:
            call(Deadline.after(2.0))
            outcomes[name] = ["answered", time.monotonic() - started]
        except ServiceError as error:
            outcomes[name] = [error.code, time.monotonic() - started]
    print(json.dumps(outcomes), flush=True)
    os._exit(0)  # the lookups still stuck in the resolver would hold the interpreter's exit for a minute
    """
)


def test_a_resolver_that_stalls_costs_the_time_left_and_no_more(tmp_path):
    """The probe runs in a mount namespace whose /etc/resolv.conf names a DNS server that never answers
    (glibc would wait 30 s per try); the calls must end with the 2 s deadline they were given."""
    try:
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind((STALLING_DNS, 53))  # receives the queries and never answers them
    except OSError as error:
        pytest.skip(f"cannot stand in for a DNS server here: {error}")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {STALLING_DNS}\noptions timeout:30 attempts:2\n")
    probe = tmp_path / "probe.py"
    probe.write_text(RESOLVER_PROBE)
    script = f'mount --bind "{resolv}" /etc/resolv.conf && exec "{sys.executable}" "{probe}" "$@"'
    command = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
        str(REPO / "functions" / "guest_token"),
        DEMO_DEPLOYMENT_ID,
    ]
    try:
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=os.environ)
    finally:
        dns.close()
    if result.returncode != 0 and "mount" in result.stderr and "permission" in result.stderr.lower():
        pytest.skip(f"no mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout.splitlines()[-1])  # after the log lines
    for name, (code, seconds) in outcomes.items():
        assert code == "upstream_timeout", (name, outcomes)
        assert seconds < 2 + SLOW_MACHINE_SECONDS, (name, outcomes)  # the 2 s deadline, not glibc's 60 s
    assert time.monotonic() - started < 60


# ---- the outside review of this round ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "respell",
    [
        lambda secret: secret.replace("-", " "),
        lambda secret: secret.replace("-", ":"),
        "\u200b".join,  # zero-width spaces between every character
        lambda secret: secret[:18],  # a piece of it
    ],
    ids=["spaces", "colons", "zero-width", "first 18 characters"],
)
def test_a_session_token_echoed_with_other_separators_or_in_part_is_not_logged(invoke, scripted, respell):
    def refusal(request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"type": "response", "class": "string", "code": 4000, "body": f"token {respell(request['token'])} bad"}]

    scripted.scripts["configureSession"] = [refusal]
    answer = invoke({"guestId": GUEST})
    assert answer.status == 502
    detail = answer.events("token_failed")[0]["detail"]
    assert "[session token]" in detail
    assert not any(piece in detail.lower().replace("\u200b", "") for piece in (GUEST[:8], GUEST[9:13], GUEST[-12:]))


@pytest.mark.parametrize("odd", [["SessionExpiredEvent"], {"a": 1}, 7, None])
def test_a_frame_whose_class_is_not_a_string_is_skipped(invoke, scripted, odd):
    def answer(request: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"type": "response", "class": odd, "code": 200, "body": {}},
            {"type": "response", "class": "SessionResponse", "code": 200, "body": {"connected": True}},
        ]

    scripted.scripts["configureSession"] = [answer]
    assert invoke({}).status == 200  # once a 500 (an unhashable class)


def test_an_answer_whose_tracing_id_is_null_is_ours(invoke, scripted):
    def answer(request: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"connected": True, "newSession": True}
        return [{"type": "response", "class": "SessionResponse", "code": 200, "body": body, "tracingId": None}]

    scripted.scripts["configureSession"] = [answer]
    answer_ = invoke({})
    assert answer_.status == 200 and scripted.connections == 1


def test_a_kid_or_alg_holding_a_secret_is_redacted(invoke, webmessaging, emulator):
    webmessaging.setenv("GENESYS_JWKS_URL", emulator.jwks_url)
    signed = jwt.encode({"exp": int(time.time()) + 600}, emulator.signing_key, algorithm="RS256")
    for header in (
        {"alg": "RS256", "kid": GUEST.upper().replace("-", "")},
        {"alg": DEMO_CLIENT_SECRET, "kid": emulator.kid},
    ):
        # A header pyjwt would not write: spliced onto a signed token's claims.
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        emulator.add_fault("get-jwt", token=".".join([head, *signed.split(".")[1:]]))
        answer = invoke({"guestId": GUEST})
        assert answer.status == 502
        logged = json.dumps(answer.logs).lower()
        assert GUEST.replace("-", "")[:12] not in logged and "secret" not in logged


@pytest.mark.parametrize("token", ["a" * 5000, "b" * 100_000])
def test_an_access_token_too_long_to_send_is_refused_and_not_cached(invoke, env, hostile_http, token):
    for _ in range(2):
        answer_body = {"access_token": token, "expires_in": 3600}
        env.setenv("GENESYS_OAUTH_BASE_URL", hostile_http(*_json_answer(200, answer_body), 0))
        settings.reset()
        answer = invoke({})
        assert (answer.status, answer.error_code) == (502, "upstream_error")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:PaSsW0rdInUrl99@127.0.0.1:8080",
        "https://user:PaSsW0rdInUrl99@api.example.com/x?y=1",
        "https://user:PaSsW0rdInUrl99@api.example.com:99999",
    ],
)
def test_a_url_setting_with_a_password_is_refused_without_logging_it(url):
    with pytest.raises(settings.ConfigurationError) as refused:
        settings.load_settings(
            {
                "GENESYS_CREDENTIALS_SECRET_ID": "s",
                "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID,
                "GENESYS_API_BASE_URL": url,
            }
        )
    assert "PaSsW0rd" not in str(refused.value.log_detail)


def test_a_setting_is_quoted_bounded():
    with pytest.raises(settings.ConfigurationError) as refused:
        settings.load_settings({"GENESYS_CREDENTIALS_SECRET_ID": "s", "GENESYS_DEPLOYMENT_ID": "x" * 100_000})
    assert len(str(refused.value.log_detail)) < 400


@pytest.mark.parametrize(
    ("variable", "value", "refused"),
    [
        ("GENESYS_WEBMESSAGING_BASE_URL", "wss://webmessaging.mypurecloud.com:0", True),
        ("GENESYS_WEBMESSAGING_BASE_URL", "wss://webmessaging.mypurecloud.com/v1", True),  # the code appends /v1
        ("GENESYS_WEBMESSAGING_BASE_URL", "wss://webmessaging.mypurecloud.com.", False),  # a final dot: dropped
        ("GENESYS_API_BASE_URL", "https://api.mypurecloud.com./", False),
    ],
)
def test_url_settings_edges(variable, value, refused):
    environment = {"GENESYS_CREDENTIALS_SECRET_ID": "s", "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID, variable: value}
    if refused:
        with pytest.raises(settings.ConfigurationError):
            settings.load_settings(environment)
    else:
        loaded = settings.load_settings(environment)
        assert not (loaded.webmessaging_base_url + loaded.api_base_url).count(".com.")


@pytest.mark.parametrize("seconds", ["0", "3600"])
def test_deployment_unavailable_carries_a_retry_after_in_the_documented_range(invoke, webmessaging, emulator, seconds):
    webmessaging.setenv("DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS", seconds)
    emulator.set_deployment(DEMO_DEPLOYMENT_ID, status="Inactive")
    answer = invoke({})
    assert answer.error_code == "deployment_unavailable"
    assert 2 <= int(answer.headers["Retry-After"]) <= 30


@pytest.mark.parametrize("domains", [{"a": 1}, [None, "x.com"], "x.com", 7])
def test_allowed_domains_of_any_shape_never_refuse_a_guest(invoke, webmessaging, env, hostile_http, emulator, domains):
    invoke({})  # the access token is cached; the deployment lookup then meets the odd answer
    from guest_token import sources  # noqa: PLC0415

    sources.reset()
    document = {"status": "Active", "allowAllDomains": "yes", "allowedDomains": domains}
    env.setenv("GENESYS_API_BASE_URL", hostile_http(*_json_answer(200, document), 0))
    settings.reset()
    assert invoke({}).status == 200
