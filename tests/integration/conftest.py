"""Shared by the integration tests: a scripted Guest API peer on a real loopback WebSocket, answering with the
frames Genesys' own SDK fixtures show (tests/fixtures/genesys/sdk-frames.json), and the handler pointed at it."""

from __future__ import annotations

import copy
import json
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

SDK_FRAMES = Path(__file__).parents[1] / "fixtures" / "genesys" / "sdk-frames.json"
# A session JWT as Genesys might hand it out for all its documentation says: HMAC-signed, no exp claim.
SESSION_JWT = jwt.encode({"sub": "guest"}, "a shared secret of 32 bytes or more!", algorithm="HS256")


def frames() -> dict[str, Any]:
    """The frames of Genesys' SDK fixtures, by name (tests/fixtures/genesys/sdk-frames.json)."""
    named: dict[str, Any] = json.loads(SDK_FRAMES.read_text())["frames"]
    return named


# Genesys' usual answer to each action, when a test scripts none.
DEFAULTS = {"configureSession": ["session-new"], "getJwt": ["jwt"], "closeSession": ["session-closed"]}


def frame(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Fixture ``name`` as an answer to ``request``: "<request>" becomes its tracingId; the JWT expires later."""
    shaped: dict[str, Any] = copy.deepcopy(frames()[name]["frame"])
    if shaped.get("tracingId") == "<request>":
        shaped["tracingId"] = request.get("tracingId")
    if shaped["class"] == "JwtResponse":
        shaped["body"] = {"jwt": SESSION_JWT, "exp": int(time.time()) + 900}
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
def webmessaging(env: pytest.MonkeyPatch, emulator: GenesysEmulator) -> pytest.MonkeyPatch:
    """The handler with the webmessaging source, against the emulator's Guest API."""
    env.setenv("GUEST_TOKEN_SOURCE", "webmessaging")
    env.setenv("GENESYS_DEPLOYMENT_ID", DEMO_DEPLOYMENT_ID)
    env.setenv("GENESYS_WEBMESSAGING_BASE_URL", emulator.webmessaging_url)
    return env


@pytest.fixture
def scripted(webmessaging: pytest.MonkeyPatch, guest_api: ScriptedGuestApi) -> ScriptedGuestApi:
    """The handler with the webmessaging source, against the scripted Guest API (the emulator's REST stays)."""
    webmessaging.setenv("GENESYS_WEBMESSAGING_BASE_URL", guest_api.url)  # type: ignore[attr-defined]
    return guest_api
