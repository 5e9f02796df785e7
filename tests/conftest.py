"""Shared fixtures: the Genesys emulator on loopback, moto's Secrets Manager, and a way to invoke the handler
with API Gateway REST proxy events exactly as Lambda would."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Powertools reads these when the handler module is imported, so they are set before any test imports it.
os.environ.update(
    {
        "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
        "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
    os.environ.pop(_name, None)

import boto3  # noqa: E402
from guest_token import app as app_module  # noqa: E402
from guest_token import credentials, genesys, oauth, observability, settings, sources, token_events, verify  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator  # noqa: E402
from devtools.local_api import LocalContext, build_event  # noqa: E402
from devtools.net import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECRET_ID = "genesys-guest-token/test"
ORIGIN = "https://chat.example.com"
SCOPES_DEFAULT = ["webmessaging:guest:send", "webmessaging:guest:receive"]
# What a loaded 2-core machine may add to a request's wall-clock time (both cores busy elsewhere, a slow garbage
# collection). A test that bounds elapsed time allows this on top of the budget ("answered within its budget"
# catches a hang, not a slow machine: the hang it is written for must take longer), and a margin a test relies
# on (a token valid for a while, a cache entry still fresh) is at least this. Speed goals live in `make bench`.
SLOW_MACHINE_SECONDS = 5.0


class StillClock:
    """The ``time`` module as the modules it is installed in see it: ``monotonic()`` stands still until the test
    moves it on, so an age or a window they check (a cache entry's, a rate limit's) does not depend on how fast
    the requests in between ran; ``sleep(seconds)`` moves it on instead of waiting. The rest is the real
    ``time``: wall-clock time, perf_counter, and the deadlines of modules it is not installed in."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def install(self, monkeypatch: pytest.MonkeyPatch, *modules: Any) -> StillClock:
        for module in modules:
            monkeypatch.setattr(module, "time", self)
        return self


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str
    logs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return str(self.json["error"]["code"])

    def events(self, name: str) -> list[dict[str, Any]]:
        """The log lines of one audit event, in order."""
        return [line for line in self.logs if line.get("event") == name]

    def attempts(self) -> dict[str, list[int]]:
        """The attempt numbers made at each Genesys call: a retry or a failure has a genesys_call line of its
        own; a first attempt that succeeded is an entry of the outcome line's ``calls``."""
        found: dict[str, list[int]] = {}
        for line in self.logs:
            if line.get("event") == "genesys_call":
                found.setdefault(line["call"], []).append(line["attempt"])
            elif line.get("event") in ("token_issued", "token_failed"):
                for call in line.get("calls", []):
                    found.setdefault(call["call"], []).insert(0, 1)
        return found


@pytest.fixture(scope="session")
def emulator() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as server:
        yield server


@pytest.fixture
def secrets_manager() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(
            Name=SECRET_ID, SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
        )
        yield client


@pytest.fixture(scope="module")
def secrets_manager_server() -> Iterator[str]:
    """moto's Secrets Manager as a server on loopback, holding the demo secret: for handlers in other processes.
    Per module: the server keeps its state in moto's backends, which every mock_aws of other tests resets."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server._port}"
    boto3.client("secretsmanager", endpoint_url=url, region_name="us-east-1").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
    )
    yield url
    server.stop()


def handler_process_env(emulator: GenesysEmulator, secrets_url: str) -> dict[str, str]:
    """The environment of a handler in a process of its own (rest source, tracing off): this process's, without
    its AWS endpoints and trace headers, pointed at the emulator and moto's server; tests add what they vary."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_ENDPOINT", "_X_AMZN", "POWERTOOLS_TRACE"))
    }
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / "guest_token"), str(REPO)]),
        "GENESYS_CREDENTIALS_SECRET_ID": SECRET_ID,
        "GUEST_TOKEN_SOURCE": "rest",
        "GENESYS_OAUTH_BASE_URL": emulator.base_url,
        "GENESYS_API_BASE_URL": emulator.base_url,
        "ALLOWED_ORIGINS": ORIGIN,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def run_python(script: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter; fails the test with its stderr if it fails."""
    process = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return process


@pytest.fixture
def event_bus(secrets_manager: Any) -> str:
    """An EventBridge bus in moto (whose mock_aws is active while the secrets_manager fixture is)."""
    boto3.client("events", region_name="us-east-1").create_event_bus(Name="guest-sync")
    return "guest-sync"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emulator: GenesysEmulator, secrets_manager: Any) -> pytest.MonkeyPatch:
    """The handler's configuration, pointed at the emulator; tests change it with monkeypatch.setenv."""
    for name, value in {
        "GENESYS_CREDENTIALS_SECRET_ID": SECRET_ID,
        "GENESYS_OAUTH_BASE_URL": emulator.base_url,
        "GENESYS_API_BASE_URL": emulator.base_url,
        "ALLOWED_ORIGINS": f"{ORIGIN},https://other.example.com",
        # The tutorial's contract: most tests exercise what every source shares through it; the
        # webmessaging tests choose their source with the webmessaging fixture.
        "GUEST_TOKEN_SOURCE": "rest",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        *("GENESYS_JWKS_URL", "ALLOWED_SCOPES", "MAX_TOKEN_LIFETIME_SECONDS", "GENESYS_REGION"),
        *("TOKEN_EVENTS_BUS_NAME", "AWS_ENDPOINT_URL_EVENTBRIDGE", "TOKEN_EVENTS_INCLUDE_GUEST_ID"),
        *("GENESYS_DEPLOYMENT_ID", "GENESYS_WEBMESSAGING_BASE_URL", "DEPLOYMENT_CACHE_SECONDS"),
        "DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(autouse=True)
def fresh_container(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts as a cold container: no cached settings, secret, access token or pool."""
    for module in (settings, credentials, genesys, oauth, sources, verify, observability, token_events):
        module.reset()
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()
    yield
    if "emulator" in request.fixturenames:
        emulator = request.getfixturevalue("emulator")
        emulator.reset()
        emulator.set_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)  # undo a rotation


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = observability.logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.fixture
def invoke(env: pytest.MonkeyPatch, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> Any:
    """Invoke the handler with an API Gateway REST proxy event; returns the answer with its logs and EMF."""

    def _invoke(
        body: Any = None,
        *,
        method: str = "POST",
        path: str = "/guest-tokens",
        origin: str | None = ORIGIN,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        timeout_seconds: float = 10.0,
        event: dict[str, Any] | None = None,
    ) -> Answer:
        if event is None:
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            if origin is not None:
                all_headers["Origin"] = origin
            payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
            event = build_event(method, path, headers=all_headers, body=payload)
        log_stream.seek(0)
        log_stream.truncate()
        capsys.readouterr()
        result = app_module.lambda_handler(event, LocalContext(timeout_seconds=timeout_seconds))
        printed = capsys.readouterr().out
        payload_text = result.get("body") or ""
        if result.get("isBase64Encoded"):
            payload_text = base64.b64decode(payload_text).decode()
        headers_out = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers_out[name] = ", ".join(values)
        answer = Answer(
            status=result["statusCode"],
            headers=headers_out,
            body=payload_text,
            logs=[json.loads(line) for line in log_stream.getvalue().splitlines() if line.strip()],
            metrics=[json.loads(line) for line in printed.splitlines() if line.startswith("{")],
        )
        assert_no_secrets(answer)
        return answer

    return _invoke


def assert_no_secrets(answer: Answer) -> None:
    """Nothing secret may reach a log line or an EMF blob, whatever the outcome."""
    written = json.dumps(answer.logs) + json.dumps(answer.metrics)
    assert DEMO_CLIENT_SECRET not in written
    assert base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode() not in written
    assert "Bearer " not in written and "Basic " not in written
    if answer.status == 200:
        assert answer.json["token"] not in written
        # A signed-in customer's auth JWT, and the sealed refresh token the answer hands the browser.
        if "authToken" in answer.json:
            assert answer.json["authToken"] not in written
    cookie = answer.headers.get("Set-Cookie", "").partition(";")[0].partition("=")[2]
    if cookie:
        assert cookie not in written


def read_request(connection: socket.socket) -> None:
    """An HTTP request's head and its Content-Length of body, read whole: a client may write them in two goes,
    the second late on a busy machine (within 30 s)."""
    connection.settimeout(30)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"^content-length:[ \t]*(\d+)", head, re.IGNORECASE | re.MULTILINE)
    missing = int(length.group(1)) - len(body) if length else 0
    while missing > 0:
        chunk = connection.recv(min(missing, 65536))
        if not chunk:
            return
        missing -= len(chunk)


@pytest.fixture
def hostile_http() -> Iterator[Callable[[bytes, bytes, float], str]]:
    """A one-shot HTTP server on loopback: sends ``head``, then ``body`` one byte per ``pace`` seconds."""
    servers: list[socket.socket] = []

    def start(head: bytes, body: bytes, pace: float) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        servers.append(listener)

        def serve() -> None:
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                with connection:
                    read_request(connection)
                    connection.sendall(head if pace else head + body)
                    for index in range(len(body) if pace else 0):
                        connection.sendall(body[index : index + 1])
                        time.sleep(pace)
                    # Closed with bytes of the client's unread, the socket would be reset, and the client could
                    # see the reset instead of the answer: the client hangs up first.
                    connection.shutdown(socket.SHUT_WR)
                    while connection.recv(65536):
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener in servers:
        listener.close()
