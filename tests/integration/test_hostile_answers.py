"""Issue 22's third attack, answered: repeated headers on the Guest API's handshake, base URLs in other
spellings, an access token that cannot be a bearer, Genesys' texts echoing a secret respelt, and a resolver
that stalls. Each over real sockets, each checked for what the widget gets and what the logs hold."""

from __future__ import annotations

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

import pytest
from guest_token import settings
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from devtools.genesys_emulator import DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID

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
        for _ in range(50):  # closing takes a round trip
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
        assert seconds < 5, (name, outcomes)  # the 2 s deadline and scheduling, not glibc's 60 s
    assert time.monotonic() - started < 60
