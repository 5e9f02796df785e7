"""Genesys' Web Messaging Guest API (the guest WebSocket), served beside the HTTP emulator.

Guests connect to ``<webmessaging_url>/v1?deploymentId=<id>`` and exchange JSON text frames: ``configureSession``,
``configureAuthenticatedSession`` (a signed-in customer), ``getJwt``, ``echo`` (the health check), ``onMessage``
(texts, and events such as an autostart's Presence Join) and ``closeSession``. This module owns the sessions
and the socket; ``GuestApiHost`` (the HTTP emulator) counts requests, hands out faults, mints the session JWTs
and checks the auth JWTs of signed-in customers. It is built on websockets' threaded server, so no
framing is written by hand.

Frames are shaped as Genesys' own clients' test fixtures show them (MyPureCloud/
genesys-messenger-transport-mobile-sdk, transport/src/androidUnitTest/kotlin/transport/util/Response.kt; the
same frames are in tests/fixtures/genesys/sdk-frames.json): answers (``SessionResponse``, ``JwtResponse``) and
errors (class ``string`` with a code, ``TooManyRequestsErrorMessage``) carry no ``tracingId``; the echo of a
guest's own message or health check carries the request's; ``SessionExpiredEvent`` arrives as a response;
a Presence ``Disconnect`` carries ``metadata.readOnly: "true"`` when the conversation became read-only.
``WebMessagingState.tag_answers`` makes every answer echo the request's ``tracingId`` instead (the schema
allows it), so clients are tested against both.

Choices where Genesys' public documentation is silent (pinned by tests/integration/test_webmessaging_emulator.py):

* Handshake: a path other than ``/v1``, or a missing or unknown ``deploymentId``, is refused with HTTP 404;
  an ``Origin`` the deployment does not allow (a missing one included) with HTTP 403. How Genesys matches
  ``allowedDomains`` is not public: this emulator compares hosts and lets ``*.example.com`` admit subdomains.
* ``configureSession`` on a deployment whose status is not ``Active`` answers 4000 "Deployment is not
  active"; a ``deploymentId`` differing from the socket's answers 4000 too.
* A missing or malformed ``token`` (or ``deploymentId``) answers 4020; a frame that is not a JSON object, or
  an unknown action, answers 4000.
* ``getJwt``, ``echo``, ``onMessage`` and ``closeSession`` need the token configured on the same socket, else
  4007; an expired session answers 4006; ``onMessage`` on a read-only session answers 4000.
* ``startNew`` only matters on a read-only session; on a live one it is ignored (the session resumes).
* ``closeSession`` with ``closeAllConnections: true`` sends every other socket configured with the token a
  ``ConnectionClosedEvent`` and closes it; the caller's socket gets ``SessionResponse {connected: false}`` and
  must configure again.
* A session is keyed by (deployment, token); it expires after ``SESSION_DURATION_SECONDS`` without activity
  or when the harness calls ``expire``. Sockets configured with its token then get a ``SessionExpiredEvent``;
  when the harness ends the conversation they get a Presence ``Disconnect`` event.
* Nothing is pushed unprompted but the agent's events and those two: a new session gets no Join (Genesys'
  SDKs send Join themselves, as an autostart).
* The agent: each guest text gets, on every socket configured with the session's token, a Typing event after
  half of ``WebMessagingState.agent_reply_seconds`` and an Outbound text (kept in the history) after all of
  it; None turns the agent off.
* The session JWT is opaque to this module: the history call finds the session by the exact JWT getJwt
  handed out (``session_for_jwt``), whatever its shape.

Signed-in customers (authenticated web messaging; the auth JWTs come from the HTTP emulator's web deployments
token calls, which ``GuestApiHost.authenticated_user`` checks):

* ``configureAuthenticatedSession`` (``{"action", "token", "deploymentId", "startNew"?, "data": {"code": <auth
  JWT>}}``) is checked like ``configureSession`` (4020, then 4000), then ``data.code``: missing or not a
  non-empty string answers 4020 "data.code is required"; an auth JWT the emulator did not issue, or one expired,
  revoked, or issued for another deployment, answers the transport SDK fixture's
  ``{"type": "response", "class": "string", "code": 401, "body": "User is unauthorized"}``. Otherwise it is
  answered like ``configureSession`` and the session is authenticated as that customer.
* An anonymous session configured with an auth JWT becomes authenticated and keeps its conversation; a session
  authenticated as another customer (another ``sub``) is replaced by a new one (new guest identity, empty
  history) and the answer says ``clearedExistingSession: true``. A new conversation (``startNew`` on a read-only
  session) stays authenticated.
* ``configureSession`` on an authenticated session's token answers 4017 (CannotDowngradeToUnauthenticated),
  even after sign-out.
* Revoking the auth JWT (the sign-out; ``WebMessagingState.logout``) signs out every session configured with an
  auth JWT of that sign-in: each socket configured with such a session's token gets
  ``{"type": "message", "class": "LogoutEvent", "code": 200, "body": {}}`` and must configure again (follow-up
  actions answer 4007; the socket stays open: the transport SDK disconnects itself); the session's history
  answers 401 until the customer signs in on it again with ``configureAuthenticatedSession``.
* The agent greets a signed-in customer by name: "Thanks, Alex Example! You wrote: …".
* A replayed transcript reshapes ``configureAuthenticatedSession``'s answer as its recorded ``configureSession``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from devtools.genesys_faults import (
    ROUTE_CLOSE_SESSION,
    ROUTE_CONFIGURE_AUTHENTICATED_SESSION,
    ROUTE_CONFIGURE_SESSION,
    ROUTE_GET_JWT,
    ROUTE_WS_CONNECT,
    TOO_MANY_REQUESTS,
    Fault,
    RecordedRequest,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from devtools.genesys_transcript import Replay

__all__ = [
    "AGENT_REPLY_SECONDS",
    "CANNOT_DOWNGRADE",
    "DEMO_DEPLOYMENT_ID",
    "DEPLOYMENT_STATUSES",
    "FEATURE_UNAVAILABLE",
    "MISSING_PARAMETER",
    "SESSION_DURATION_SECONDS",
    "SESSION_EXPIRED",
    "SESSION_NOT_FOUND",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "UNEXPECTED_ERROR",
    "WEBMESSAGING_PATH",
    "AuthenticatedUser",
    "Deployment",
    "GuestApiHost",
    "WebMessagingServer",
    "WebMessagingState",
    "origin_host",
]

DEMO_DEPLOYMENT_ID: Final = "5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"
DEPLOYMENT_STATUSES: Final = ("Active", "Pending", "Inactive", "Error", "Deleting")
WEBMESSAGING_PATH: Final = "/v1"
# Genesys' default session inactivity TTL (three days); the harness expires sessions explicitly instead.
SESSION_DURATION_SECONDS: Final = 259200
# Long enough for a person to see the agent typing, short enough for browser tests.
AGENT_REPLY_SECONDS: Final = 0.8
MAX_SESSION_TOKEN_CHARS: Final = 2048
MAX_CUSTOM_DATA_BYTES: Final = 2048

FEATURE_UNAVAILABLE: Final = 4000
SESSION_EXPIRED: Final = 4006
SESSION_NOT_FOUND: Final = 4007
CANNOT_DOWNGRADE: Final = 4017
MISSING_PARAMETER: Final = 4020
UNEXPECTED_ERROR: Final = 5000
# An auth JWT refused by configureAuthenticatedSession: an HTTP-style code in a string frame (transport SDK).
UNAUTHORIZED: Final = 401
UNAUTHORIZED_MESSAGE: Final = "User is unauthorized"

# What a proxy error page looks like to a client expecting a JSON frame.
_NOT_JSON_FRAME: Final = "<html><body><h1>Oops</h1>upstream said no"


@dataclass(frozen=True)
class AuthenticatedUser:
    """The customer an auth JWT signs in: the sign-in it belongs to (revoking it signs the sessions out), the
    identity provider's ``sub`` and the customer's name."""

    sign_in: str
    sub: str
    name: str


class GuestApiHost(Protocol):
    """What the Guest API needs from the HTTP emulator: one count, fault queue and request log for both."""

    verbose: bool

    @property
    def stopping(self) -> threading.Event: ...

    def begin_ws_request(
        self, route: str, path: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[Fault | None, RecordedRequest | None]: ...

    def finish_ws_record(self, record: RecordedRequest | None, status: int | None) -> None: ...

    def mint_session_jwt(self, session_id: str, deployment_id: str, fault: Fault | None) -> tuple[str, int]: ...

    def authenticated_user(self, auth_jwt: str, deployment_id: str) -> AuthenticatedUser | None:
        """The customer of an auth JWT the host issued for ``deployment_id``, live (not expired or revoked)."""
        ...


# -- deployments ---------------------------------------------------------------------------------------


def origin_host(origin: str | None) -> str | None:
    """The lower-cased host of an Origin header: a full origin (browsers) or a bare host (mobile SDK)."""
    if not origin or origin == "null":
        return None
    if "://" in origin:
        return urlsplit(origin).hostname or None
    return urlsplit("//" + origin).hostname or None


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str = "Active"
    allow_all_domains: bool = True
    allowed_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Deployments also arrive as JSON from other processes, so check types instead of trusting hints.
        if not isinstance(self.id, str) or not self.id or "/" in self.id:
            raise ValueError("deployment id must be a non-empty string without '/'")
        if self.status not in DEPLOYMENT_STATUSES:
            raise ValueError(f"status must be one of {list(DEPLOYMENT_STATUSES)}, not {self.status!r}")
        if not isinstance(self.allow_all_domains, bool):
            raise TypeError("allowAllDomains must be a boolean")
        if not all(isinstance(domain, str) and domain for domain in self.allowed_domains):
            raise TypeError("allowedDomains must be a list of non-empty strings")

    def allows_origin(self, origin: str | None) -> bool:
        if self.allow_all_domains:
            return True
        host = origin_host(origin)
        if host is None:
            return False
        for entry in self.allowed_domains:
            domain = (origin_host(entry) or "").lower()
            if domain.startswith("*."):
                if host.endswith(domain[1:]):  # any subdomain, not the bare domain itself
                    return True
            elif host == domain:
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /api/v2/webdeployments/deployments/{id}``."""
        return {
            "id": self.id,
            "name": "Demo deployment" if self.id == DEMO_DEPLOYMENT_ID else f"Deployment {self.id}",
            "description": "Served by the Genesys emulator",
            "allowAllDomains": self.allow_all_domains,
            "allowedDomains": list(self.allowed_domains),
            "status": self.status,
            # Stable per deployment, so clients caching the configuration see the same one.
            "configuration": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.id)), "version": "1"},
            "selfUri": f"/api/v2/webdeployments/deployments/{self.id}",
        }


def make_deployment(
    deployment_id: str, status: str, allow_all_domains: bool, allowed_domains: Iterable[str]
) -> Deployment:
    if isinstance(allowed_domains, str):
        raise TypeError("allowedDomains must be a list of strings, not a string")
    return Deployment(deployment_id, status, allow_all_domains, tuple(allowed_domains))


# -- sessions ------------------------------------------------------------------------------------------


@dataclass
class _Session:
    id: str  # the guest JWT's sub; never the session token
    deployment_id: str
    expires_at: float
    new_session: bool = True
    read_only: bool = False
    expired: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    user: AuthenticatedUser | None = None  # set once configured with an auth JWT: the session is authenticated
    logged_out: bool = False  # its sign-in was revoked; a configureAuthenticatedSession signs it in again

    def is_expired(self, now: float) -> bool:
        return self.expired or now >= self.expires_at

    def public(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "deploymentId": self.deployment_id,
            "newSession": self.new_session,
            "readOnly": self.read_only,
            "expired": self.is_expired(now),
            "messages": len(self.messages),
            "authenticated": self.user is not None,
            # The customer's name is demo data, shown so a test or a person can see who chats; never the sub.
            "name": self.user.name if self.user is not None else None,
            "loggedOut": self.logged_out,
        }


@dataclass(frozen=True)
class Configured:
    """The outcome of a successful configureSession."""

    session_id: str
    new_session: bool
    read_only: bool
    expires_at: int
    cleared_existing_session: bool = False


@dataclass(frozen=True)
class GuestError:
    code: int
    message: str


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message(body: dict[str, Any]) -> dict[str, Any]:
    """A structured message's body with the id and channel Genesys gives every message."""
    message_id = str(uuid.uuid4())
    return {**body, "id": message_id, "channel": {"time": _now_iso(), "messageId": message_id}}


def _event(event_type: str, detail: dict[str, Any], direction: str = "Outbound", **metadata: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "Event", "direction": direction}
    if metadata:
        body["metadata"] = metadata
    body["events"] = [{"eventType": event_type, event_type.lower(): detail}]
    return _message(body)


SessionChange = Literal["expired", "ended"]
FrameType = Literal["response", "message"]


class WebMessagingState:
    """Deployments, guest sessions and the JWTs handed out; thread-safe. Session tokens are dictionary keys and
    nothing more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deployments: dict[str, Deployment] = {}
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._jwts: dict[str, tuple[str, int]] = {}  # JWT -> (session id, exp)
        self.agent_reply_seconds: float | None = AGENT_REPLY_SECONDS
        # Genesys' SDK fixtures show answers without a tracingId; True echoes it on every answer instead.
        self.tag_answers = False
        # A recorded Genesys whose answers the actions' frames are reshaped to; configuration, kept by reset().
        self.replay: Replay | None = None
        # The socket server's hook: tell the guests whose session the harness expired or ended.
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None
        # The socket server's hook: sign out the sockets configured with a (deployment, token) (LogoutEvent).
        self.on_logout: Callable[[str, str], None] | None = None
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._deployments = {DEMO_DEPLOYMENT_ID: Deployment(DEMO_DEPLOYMENT_ID)}
            self._sessions.clear()
            self._jwts.clear()
            self.tag_answers = False

    def set_deployment(self, deployment: Deployment) -> None:
        with self._lock:
            self._deployments[deployment.id] = deployment

    def deployment(self, deployment_id: str) -> Deployment | None:
        with self._lock:
            return self._deployments.get(deployment_id)

    def configure(
        self, deployment_id: str, token: str, start_new: bool, user: AuthenticatedUser | None = None
    ) -> Configured | GuestError:
        """configureSession, or with ``user`` configureAuthenticatedSession (its auth JWT already checked)."""
        now = time.time()
        with self._lock:
            deployment = self._deployments.get(deployment_id)
            if deployment is None or deployment.status != "Active":
                return GuestError(FEATURE_UNAVAILABLE, "Deployment is not active")
            session = self._sessions.get((deployment_id, token))
            if session is not None and session.is_expired(now):
                return GuestError(SESSION_EXPIRED, "Session has expired")
            if user is None and session is not None and session.user is not None:
                return GuestError(CANNOT_DOWNGRADE, "Cannot downgrade an authenticated session to unauthenticated")
            cleared = (
                user is not None and session is not None and session.user is not None and session.user.sub != user.sub
            )
            if session is None or cleared or (session.read_only and start_new):
                # A new conversation on the same token: a new guest identity and an empty history.
                signed_in = user if user is not None else (session.user if session is not None else None)
                session = _Session(str(uuid.uuid4()), deployment_id, now + SESSION_DURATION_SECONDS, user=signed_in)
                self._sessions[(deployment_id, token)] = session
            else:
                session.new_session = False
                session.expires_at = now + SESSION_DURATION_SECONDS
                if user is not None:
                    session.user = user
                    session.logged_out = False
            return Configured(session.id, session.new_session, session.read_only, int(session.expires_at), cleared)

    def live_session(self, deployment_id: str, token: str) -> _Session | GuestError:
        """The session for a follow-up action (its activity extends its life), or why there is none."""
        now = time.time()
        with self._lock:
            session = self._sessions.get((deployment_id, token))
            if session is None or session.logged_out:
                return GuestError(SESSION_NOT_FOUND, "Session not found")
            if session.is_expired(now):
                return GuestError(SESSION_EXPIRED, "Session has expired")
            session.expires_at = now + SESSION_DURATION_SECONDS
            return dataclasses.replace(session, messages=[])

    def add_message(self, session_id: str, message: dict[str, Any]) -> None:
        with self._lock:
            for session in self._sessions.values():
                if session.id == session_id:
                    session.messages.append(message)

    def history(self, session_id: str) -> list[dict[str, Any]] | None:
        """The messages of a live session, newest first; None when no live session has that id."""
        now = time.time()
        with self._lock:
            for session in self._sessions.values():
                if session.id == session_id and not session.is_expired(now) and not session.logged_out:
                    return [dict(message) for message in reversed(session.messages)]
            return None

    def customer_name(self, session_id: str) -> str | None:
        """The signed-in customer's name for a session, None for a guest's."""
        with self._lock:
            for session in self._sessions.values():
                if session.id == session_id and session.user is not None:
                    return session.user.name
            return None

    def logout(self, sign_in: str) -> int:
        """Sign out every session authenticated by ``sign_in`` (its auth JWT was revoked): their sockets get a
        LogoutEvent and must configure again. Returns how many sessions were signed out."""
        keys: list[tuple[str, str]] = []
        with self._lock:
            for key, session in self._sessions.items():
                if session.user is not None and session.user.sign_in == sign_in and not session.logged_out:
                    session.logged_out = True
                    keys.append(key)
        for deployment_id, token in keys:
            if self.on_logout is not None:
                self.on_logout(deployment_id, token)
        return len(keys)

    def remember_jwt(self, jwt: str, session_id: str, exp: int) -> None:
        with self._lock:
            self._jwts[jwt] = (session_id, exp)

    def session_for_jwt(self, jwt: str) -> str | None:
        """The session id a JWT handed out by getJwt opens, while it has not expired; else None."""
        with self._lock:
            found = self._jwts.get(jwt)
        return found[0] if found is not None and found[1] > time.time() else None

    def _matching(self, token: str) -> list[_Session]:
        matches = [session for (_, key), session in self._sessions.items() if key == token]
        if not matches:
            # Never put the token in the message: it may end up in logs or control API answers.
            raise KeyError("no session has that token")
        return matches

    def expire(self, token: str, frame_type: FrameType = "response", *, notify: bool = True) -> None:
        """Expire the session; with ``notify`` its sockets get a SessionExpiredEvent of ``frame_type`` (the SDK
        fixture's ``response`` by default)."""
        if frame_type not in ("response", "message"):
            raise ValueError("type must be 'response' or 'message'")
        with self._lock:
            for session in self._matching(token):
                session.expired = True
        if notify:
            self._changed(token, session_expired_event(frame_type))

    def end_conversation(self, token: str, *, read_only: bool = True) -> None:
        """The agent ends the conversation: a Presence Disconnect, with ``metadata.readOnly: "true"`` and a
        read-only session when ``read_only`` (the deployment shows the conversation as ended), else without it
        and the session stays writable."""
        if not isinstance(read_only, bool):
            raise TypeError("readOnly must be a boolean")
        disconnect = _event("Presence", {"type": "Disconnect"}, **({"readOnly": "true"} if read_only else {}))
        with self._lock:
            for session in self._matching(token):
                session.read_only = session.read_only or read_only
                session.messages.append(dict(disconnect))
        self._changed(token, structured(disconnect))

    def _changed(self, token: str, frame: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(token, frame)

    def state(self, token: str) -> str | None:
        now = time.time()
        with self._lock:
            sessions = [session for (_, key), session in self._sessions.items() if key == token]
        if not sessions:
            return None
        session = sessions[-1]
        if session.is_expired(now):
            return "expired"
        return "read-only" if session.read_only else "active"

    def sessions(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [session.public(now) for session in self._sessions.values()]


# -- frames --------------------------------------------------------------------------------------------


def _tagged(frame: dict[str, Any], tracing_id: object) -> dict[str, Any]:
    # A tracingId goes back only when the client sent one.
    if tracing_id is not None:
        frame["tracingId"] = tracing_id
    return frame


def error_frame(code: int, message: str, tracing_id: object = None, retry_after: int = 1) -> dict[str, Any]:
    """An error answer; untagged unless ``tracing_id`` is given (the SDK fixtures' errors have none)."""
    if code == TOO_MANY_REQUESTS:
        body = {"retryAfter": retry_after, "errorCode": code, "errorMessage": "Message rate too high for this session"}
        frame = {"type": "response", "class": "TooManyRequestsErrorMessage", "code": 429, "body": body}
    else:
        frame = {"type": "response", "class": "string", "code": code, "body": message}
    return _tagged(frame, tracing_id)


def answer_frame(cls: str, body: dict[str, Any], tracing_id: object = None) -> dict[str, Any]:
    return _tagged({"type": "response", "class": cls, "code": 200, "body": body}, tracing_id)


def structured(body: dict[str, Any], tracing_id: object = None, frame_type: FrameType = "message") -> dict[str, Any]:
    return _tagged({"type": frame_type, "class": "StructuredMessage", "code": 200, "body": body}, tracing_id)


def session_expired_event(frame_type: FrameType = "response") -> dict[str, Any]:
    return {"type": frame_type, "class": "SessionExpiredEvent", "code": 200, "body": {}}


def logout_event() -> dict[str, Any]:
    """What sockets of a signed-out session get (the transport SDK fixture's LogoutEvent)."""
    return {"type": "message", "class": "LogoutEvent", "code": 200, "body": {}}


_DEFAULT_ERROR_MESSAGES: Final = {
    FEATURE_UNAVAILABLE: "Feature unavailable",
    SESSION_EXPIRED: "Session has expired",
    SESSION_NOT_FOUND: "Session not found",
    CANNOT_DOWNGRADE: "Cannot downgrade an authenticated session to unauthenticated",
    MISSING_PARAMETER: "Missing parameter",
    UNEXPECTED_ERROR: "Unexpected error",
}


def _message_text(request: dict[str, Any]) -> str | None:
    """The text of an action's ``message`` ({"type": "Text", "text": ...}), or None when it has none."""
    message = request.get("message")
    text = message.get("text") if isinstance(message, dict) else None
    return text if isinstance(text, str) else None


def _message_events(request: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The events of an ``onMessage`` of type Event (an autostart's Presence Join), or None when it is not one."""
    message = request.get("message")
    if not isinstance(message, dict) or message.get("type") != "Event":
        return None
    events = message.get("events")
    if not isinstance(events, list) or not events:
        return None
    if not all(isinstance(event, dict) and isinstance(event.get("eventType"), str) for event in events):
        return None
    return [dict(event) for event in events]


def _token_problem(token: object) -> str | None:
    if not isinstance(token, str) or not token:
        return "token is required"
    if len(token) > MAX_SESSION_TOKEN_CHARS:
        return f"token must be at most {MAX_SESSION_TOKEN_CHARS} characters"
    return None


# -- the WebSocket server ------------------------------------------------------------------------------


class _GuestConnection(ServerConnection):
    """A guest socket: the deployment from its URL and the token configured on it (if any)."""

    deployment_id: str = ""
    configured_token: str | None = None


class WebMessagingServer:
    """websockets' threaded server on a loopback port, answering the Guest API for ``state`` and ``host``."""

    def __init__(self, host: GuestApiHost, state: WebMessagingState, address: str, port: int) -> None:
        self._host = host
        self._state = state
        self._connections: set[_GuestConnection] = set()
        self._connections_lock = threading.Lock()
        registry, registry_lock = self._connections, self._connections_lock
        state.on_change = self._push_to_session
        state.on_logout = self._log_out_sockets

        class _Tracked(_GuestConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                # Every accepted socket, handshake or not, so stop() can hang up on all of them.
                with registry_lock:
                    registry.add(self)

            def close_socket(self) -> None:
                super().close_socket()
                # websockets closes every socket this way in the end, refused handshakes included.
                with registry_lock:
                    registry.discard(self)

        self._server: Server = serve(
            self._serve_guest,
            address,
            port,
            process_request=self._process_request,
            process_response=_with_correlation_id,
            create_connection=_Tracked,
            server_header="GenesysEmulator",
            ping_interval=None,  # guests keep sessions alive with echo; Genesys does not ping them
            open_timeout=5,
            close_timeout=1,  # bounds stop() when a client does not answer the close frame
        )
        self.port: int = self._server.socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"genesys-webmessaging-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every socket; the host's stopping event has woken delayed work."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Sockets still in (or before) the handshake would otherwise wait for open_timeout.
            if connection.protocol.state is State.CONNECTING:
                connection.close_socket()
        if self._thread is None:
            # shutdown() waits for serve_forever() to exit, which never ran: release the sockets directly.
            for sock in (self._server.socket, self._server.shutdown_notifier, self._server.shutdown_watcher):
                sock.close()
            return
        self._server.shutdown()
        self._thread.join(timeout=5)

    # -- handshake ---------------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        assert isinstance(connection, _GuestConnection)
        headers = dict(request.headers.raw_items())
        fault, record = self._host.begin_ws_request(ROUTE_WS_CONNECT, request.path, headers)
        response = self._handshake_answer(connection, request, fault)
        status: int | None = int(response.status_code if response is not None else HTTPStatus.SWITCHING_PROTOCOLS)
        if fault is not None and fault.refuse:
            status = None  # never answered, like an HTTP request the emulator dropped
        self._host.finish_ws_record(record, status)
        self._log(f"GET {urlsplit(request.path).path}", status if status is not None else "refused", fault)
        return response

    def _handshake_answer(self, connection: _GuestConnection, request: Request, fault: Fault | None) -> Response | None:
        if fault is not None:
            if fault.delay and self._host.stopping.wait(fault.delay):
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Server is shutting down.\n")
            if fault.refuse:
                # Hang up without an HTTP answer; websockets then fails to send the response, quietly.
                connection.close_socket()
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "")
            if fault.status is not None:
                return connection.respond(fault.status, f"{_phrase(fault.status)}\n")
        url = urlsplit(request.path)
        deployment_id = parse_qs(url.query).get("deploymentId", [""])[0]
        deployment = self._state.deployment(deployment_id) if deployment_id else None
        if url.path != WEBMESSAGING_PATH or deployment is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if not deployment.allows_origin(request.headers.get("Origin")):
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        connection.deployment_id = deployment_id
        return None

    # -- frames ------------------------------------------------------------------------------------------

    def _serve_guest(self, connection: ServerConnection) -> None:
        assert isinstance(connection, _GuestConnection)
        try:
            for raw in connection:
                if self._host.stopping.is_set() or not self._on_frame(connection, raw):
                    return
        except ConnectionClosed:
            pass  # the guest went away; nothing to clean up

    def _on_frame(self, connection: _GuestConnection, raw: str | bytes) -> bool:
        """Answer one frame; False means the socket is done (dropped or stopping)."""
        try:
            request = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            request = None
        if not isinstance(request, dict):
            self._send(connection, error_frame(FEATURE_UNAVAILABLE, "Message is not a JSON object"))
            return True
        action = request.get("action")
        if action == "configureSession":
            return self._faulted(connection, ROUTE_CONFIGURE_SESSION, request, self._configure_session)
        if action == "configureAuthenticatedSession":
            return self._faulted(
                connection, ROUTE_CONFIGURE_AUTHENTICATED_SESSION, request, self._configure_authenticated_session
            )
        if action == "getJwt":
            return self._faulted(connection, ROUTE_GET_JWT, request, self._get_jwt)
        if action == "closeSession":
            return self._faulted(connection, ROUTE_CLOSE_SESSION, request, self._close_session)
        if action == "echo":
            self._send_answer(connection, [self._echo(connection, request)], request)
        elif action == "onMessage":
            self._send(connection, self._on_message(connection, request))
        else:
            self._send(connection, self._error(FEATURE_UNAVAILABLE, f"Unsupported action {action!r}", request))
        self._log(str(action), "answered", None)
        return True

    def _error(self, code: int, message: str, request: dict[str, Any], retry_after: int = 1) -> dict[str, Any]:
        return error_frame(code, message, self._answer_tag(request), retry_after)

    def _answer(self, cls: str, body: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return answer_frame(cls, body, self._answer_tag(request))

    def _answer_tag(self, request: dict[str, Any]) -> object:
        return request.get("tracingId") if self._state.tag_answers else None

    def _faulted(
        self,
        connection: _GuestConnection,
        route: str,
        request: dict[str, Any],
        answer: Callable[[_GuestConnection, dict[str, Any], Fault | None], list[dict[str, Any]]],
    ) -> bool:
        """Apply ``route``'s next fault around ``answer(connection, request, fault)`` -> frames to send."""
        fault, _ = self._host.begin_ws_request(route)
        action = str(request.get("action"))
        if fault is not None:
            if fault.delay and self._host.stopping.wait(fault.delay):
                return False
            if fault.noise:
                for frame in _noise(route):
                    self._send(connection, frame)
            if fault.drop:
                self._log(action, "dropped", fault)
                connection.close_socket()
                return False
            if fault.silent:
                self._log(action, "silent", fault)
                return True  # keep reading; the client gives up on its own
            if fault.body is not None:
                self._log(action, "not-json", fault)
                self._send_text(connection, _NOT_JSON_FRAME)
                return True
            if fault.session_expired:
                self._log(action, "SessionExpiredEvent", fault)
                token = request.get("token")
                if isinstance(token, str):
                    with contextlib.suppress(KeyError):  # a new guest's token has no session yet
                        self._state.expire(token, notify=False)
                self._send(connection, session_expired_event())
                return True
            if fault.code is not None:
                retry_after = fault.retry_after if isinstance(fault.retry_after, int) else 1
                message = _DEFAULT_ERROR_MESSAGES.get(fault.code, "Error")
                self._log(action, fault.code, fault)
                self._send(connection, self._error(fault.code, message, request, retry_after))
                return True
        frames = answer(connection, request, fault)
        self._log(action, frames[0].get("code"), fault)
        self._send_answer(connection, frames, request)
        return True

    def _send_answer(self, connection: ServerConnection, frames: list[dict[str, Any]], request: dict[str, Any]) -> None:
        """Send an action's answer; a replayed transcript first reshapes it to the frames it recorded."""
        if self._state.replay is not None:
            action = str(request.get("action"))
            # Answered like configureSession, so reshaped like the configureSession the transcript recorded.
            recorded_as = "configureSession" if action == "configureAuthenticatedSession" else action
            frames = self._state.replay.frames(recorded_as, frames, request.get("tracingId"))
        for frame in frames:
            self._send(connection, frame)

    def _configure_session(
        self, connection: _GuestConnection, request: dict[str, Any], fault: Fault | None
    ) -> list[dict[str, Any]]:
        return self._configure(connection, request, authenticated=False)

    def _configure_authenticated_session(
        self, connection: _GuestConnection, request: dict[str, Any], fault: Fault | None
    ) -> list[dict[str, Any]]:
        return self._configure(connection, request, authenticated=True)

    def _configure(
        self, connection: _GuestConnection, request: dict[str, Any], *, authenticated: bool
    ) -> list[dict[str, Any]]:
        deployment_id = request.get("deploymentId")
        problem = _token_problem(request.get("token"))
        if not isinstance(deployment_id, str) or not deployment_id:
            problem = "deploymentId is required"
        if problem is not None:
            return [self._error(MISSING_PARAMETER, problem, request)]
        if deployment_id != connection.deployment_id:
            return [self._error(FEATURE_UNAVAILABLE, "deploymentId does not match the connection", request)]
        user = None
        if authenticated:
            data = request.get("data")
            auth_jwt = data.get("code") if isinstance(data, dict) else None
            if not isinstance(auth_jwt, str) or not auth_jwt:
                return [self._error(MISSING_PARAMETER, "data.code is required", request)]
            user = self._host.authenticated_user(auth_jwt, deployment_id)
            if user is None:
                return [self._error(UNAUTHORIZED, UNAUTHORIZED_MESSAGE, request)]
        token: str = request["token"]
        outcome = self._state.configure(deployment_id, token, request.get("startNew") is True, user)
        if isinstance(outcome, GuestError):
            return [self._error(outcome.code, outcome.message, request)]
        connection.configured_token = token
        body = {
            "connected": True,
            "newSession": outcome.new_session,
            "readOnly": outcome.read_only,
            "maxCustomDataBytes": MAX_CUSTOM_DATA_BYTES,
            "clearedExistingSession": outcome.cleared_existing_session,
            "allowedMedia": {"inbound": {"fileTypes": [], "maxFileSizeKB": 0}},
            "blockedExtensions": [],
            "durationSeconds": SESSION_DURATION_SECONDS,
            "expirationDate": outcome.expires_at,
        }
        return [self._answer("SessionResponse", body, request)]

    def _session_for(
        self, connection: _GuestConnection, request: dict[str, Any]
    ) -> tuple[_Session, None] | tuple[None, dict[str, Any]]:
        """The session for a follow-up action on this socket, or the error frame to answer."""
        token = request.get("token")
        problem = _token_problem(token)
        if problem is not None:
            return None, self._error(MISSING_PARAMETER, problem, request)
        if connection.configured_token is None or token != connection.configured_token:
            return None, self._error(SESSION_NOT_FOUND, "Session not found", request)
        session = self._state.live_session(connection.deployment_id, connection.configured_token)
        if isinstance(session, GuestError):
            return None, self._error(session.code, session.message, request)
        return session, None

    def _get_jwt(
        self, connection: _GuestConnection, request: dict[str, Any], fault: Fault | None
    ) -> list[dict[str, Any]]:
        session, error = self._session_for(connection, request)
        if session is None:
            assert error is not None
            return [error]
        jwt, exp = self._host.mint_session_jwt(session.id, connection.deployment_id, fault)
        if fault is None or not fault.forges_token:
            self._state.remember_jwt(jwt, session.id, exp)
        return [self._answer("JwtResponse", {"jwt": jwt, "exp": exp}, request)]

    def _close_session(
        self, connection: _GuestConnection, request: dict[str, Any], fault: Fault | None
    ) -> list[dict[str, Any]]:
        session, error = self._session_for(connection, request)
        if session is None:
            assert error is not None
            return [error]
        close_all = request.get("closeAllConnections")
        if not isinstance(close_all, bool):
            return [self._error(MISSING_PARAMETER, "closeAllConnections is required", request)]
        token = connection.configured_token
        connection.configured_token = None  # the socket must configure again
        if close_all and token is not None:
            self._close_others(connection, token)
        body = {"connected": False, "newSession": False, "readOnly": session.read_only}
        return [self._answer("SessionResponse", body, request)]

    def _close_others(self, closing: _GuestConnection, token: str) -> None:
        """Tell every other socket of the session its connection is closed, then close it (off this thread:
        a close waits for the guest's close frame)."""
        with self._connections_lock:
            others = [c for c in self._connections if c is not closing and c.configured_token == token]
        closed = {"type": "message", "class": "ConnectionClosedEvent", "code": 200, "body": {}}
        for other in others:
            other.configured_token = None
            self._send(other, closed)
            threading.Thread(target=other.close, name="genesys-webmessaging-close", daemon=True).start()

    def _echo(self, connection: _GuestConnection, request: dict[str, Any]) -> dict[str, Any]:
        session, error = self._session_for(connection, request)
        if session is None:
            assert error is not None
            return error
        body = _message({"text": _message_text(request) or "", "type": "Text", "direction": "Inbound"})
        # The health check's answer is a response carrying the request's tracingId (the SDK fixture's echo).
        return structured(body, request.get("tracingId"), "response")

    def _on_message(self, connection: _GuestConnection, request: dict[str, Any]) -> dict[str, Any]:
        session, error = self._session_for(connection, request)
        if session is None:
            assert error is not None
            return error
        events = _message_events(request)
        text = _message_text(request)
        if events is None and not text:
            return self._error(MISSING_PARAMETER, "message.text is required", request)
        if session.read_only:
            return self._error(FEATURE_UNAVAILABLE, "Session is read-only", request)
        if events is not None:
            # An autostart's Presence Join, or another guest event: echoed as the guest's own event.
            body = _message({"type": "Event", "direction": "Inbound", "events": events})
            self._state.add_message(session.id, body)
            return structured(dict(body), request.get("tracingId"))
        assert text is not None
        body = _message({"text": text, "type": "Text", "direction": "Inbound"})
        self._state.add_message(session.id, body)
        if self._state.agent_reply_seconds is not None:
            threading.Thread(
                target=self._agent_reply,
                args=(connection.deployment_id, connection.configured_token, session.id, text),
                name="genesys-webmessaging-agent",
                daemon=True,
            ).start()
        # The echo of the guest's own message carries its tracingId (the SDK fixture's onMessage()).
        return structured(dict(body), request.get("tracingId"))

    # -- the agent and pushed events -----------------------------------------------------------------------

    def _agent_reply(self, deployment_id: str, token: str | None, session_id: str, text: str) -> None:
        delay = self._state.agent_reply_seconds or 0.0
        stopping = self._host.stopping
        if stopping.wait(delay / 2):
            return
        self._push(token, deployment_id, structured(_event("Typing", {"type": "On", "duration": 5000})))
        if stopping.wait(delay / 2) or self._state.history(session_id) is None:
            return  # stopping, or the session expired meanwhile
        name = self._state.customer_name(session_id)
        thanks = f"Thanks, {name}!" if name is not None else "Thanks!"
        reply = _message({"text": f"{thanks} You wrote: {text}", "type": "Text", "direction": "Outbound"})
        self._state.add_message(session_id, reply)
        self._push(token, deployment_id, structured(dict(reply)))

    def _push_to_session(self, token: str, frame: dict[str, Any]) -> None:
        self._push(token, None, frame)

    def _log_out_sockets(self, deployment_id: str, token: str) -> None:
        """The session's sign-in was revoked: every socket configured with its token gets a LogoutEvent and must
        configure again."""
        with self._connections_lock:
            targets = [
                c
                for c in self._connections
                if c.configured_token == token and c.deployment_id == deployment_id and c.protocol.state is State.OPEN
            ]
        for connection in targets:
            connection.configured_token = None
            self._send(connection, logout_event())
        self._log("LogoutEvent", len(targets), None)

    def _push(self, token: str | None, deployment_id: str | None, frame: dict[str, Any]) -> None:
        """Send an unsolicited frame to every socket configured with ``token`` (on ``deployment_id``)."""
        with self._connections_lock:
            targets = [
                c
                for c in self._connections
                if token is not None
                and c.configured_token == token
                and deployment_id in (None, c.deployment_id)
                and c.protocol.state is State.OPEN
            ]
        for connection in targets:
            self._send(connection, frame)

    # -- output ------------------------------------------------------------------------------------------

    def _send(self, connection: ServerConnection, frame: dict[str, Any]) -> None:
        self._send_text(connection, json.dumps(frame))

    @staticmethod
    def _send_text(connection: ServerConnection, text: str) -> None:
        # The guest may have hung up already; its loop then ends on the next read.
        with contextlib.suppress(ConnectionClosed):
            connection.send(text)

    def _log(self, what: str, outcome: object, fault: Fault | None) -> None:
        # Only the action and outcome: frames carry session tokens and JWTs.
        if self._host.verbose:
            marker = " [fault]" if fault is not None else ""
            print(f"genesys-emulator: ws {what} -> {outcome}{marker}", file=sys.stderr, flush=True)


def _noise(route: str) -> list[dict[str, Any]]:
    """Frames a client must skip before the answer: an agent's event, another socket's echo of the guest's
    message (a response without a tracingId), a class no SDK knows, and an answer of the awaited class that
    carries another request's tracingId."""
    typing = structured(_event("Typing", {"type": "On", "duration": 5000}))
    other_tab = structured(_message({"text": "sent from another tab", "type": "Text", "direction": "Inbound"}))
    other_tab["type"] = "response"
    unknown = {"type": "response", "class": "NotSupportedClassName", "code": 200, "body": {}}
    other = f"noise-{uuid.uuid4()}"
    if route == ROUTE_GET_JWT:
        mismatched = answer_frame("JwtResponse", {"jwt": "noise.not.yours", "exp": 0}, other)
    else:
        body = {"connected": True, "newSession": False, "readOnly": True, "durationSeconds": 0, "expirationDate": 0}
        mismatched = answer_frame("SessionResponse", body, other)
    return [typing, other_tab, unknown, mismatched]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _with_correlation_id(connection: ServerConnection, request: Request, response: Response) -> None:
    """Every Genesys answer carries an ININ-Correlation-Id, the handshake's too."""
    response.headers["ININ-Correlation-Id"] = str(uuid.uuid4())
