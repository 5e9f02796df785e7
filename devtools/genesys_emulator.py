"""A loopback HTTP server that behaves like Genesys Cloud for the calls the service makes.

It is a peer of Genesys, not a mock of our code: the Lambda talks to it over real sockets exactly as it
talks to Genesys, so retries, timeouts, header handling and JWT checks are exercised for real.

Routes (the same base URL serves the login and the API hosts):

* ``POST /oauth/token`` ("oauth"): OAuth 2 client credentials with HTTP Basic auth.
* ``POST /api/v2/webmessaging/guests/generate-token`` ("guest-token"): an RS256 guest JWT.
* ``GET /.well-known/jwks.json`` ("jwks"): the public key that verifies those JWTs.
* ``GET /api/v2/webdeployments/deployments/{id}`` ("deployment"): a Messenger deployment (access token).
* ``GET /api/v2/webmessaging/messages`` ("messages"): a guest's history (guest JWT from ``getJwt``).

Signed-in customers (authenticated web messaging), as far as Genesys documents them: its web deployments token
calls, which need no access token, and the company's identity provider whose codes they take:

* ``POST /api/v2/webdeployments/token/oauthcodegrantjwtexchange`` ("auth-exchange"): ``{"deploymentId",
  "oauth": {"code", "redirectUri", "codeVerifier"?, "nonce"?}}`` (``journeyContext``, ``oauth.maxAge`` and
  ``oauth.iss`` are ignored; ``oauth.idToken``, the implicit flow, is not supported) -> 200 ``{"jwt", "refreshToken"}``.
  The code is redeemed at the emulator's OpenID provider: known, unused, not expired, ``redirectUri`` equal to
  authorize's, PKCE (S256 of ``codeVerifier`` equal to the challenge; a challenge without verifier or the
  reverse fails), ``nonce`` equal to authorize's when authorize had one; and ``deploymentId`` must be a known
  deployment. Every failure, a malformed body included, answers 400 ``bad.request`` with a message saying
  which check failed (checked in that order: body, deployment, then the code, which is used up by the attempt).
* ``POST /api/v2/webdeployments/token/refresh`` ("auth-refresh"): ``{"refreshToken", "deploymentId"?}`` -> 200
  ``{"jwt"}``, a new auth JWT for the same customer (the refresh token is not rotated; older auth JWTs stay valid
  until they expire). ``deploymentId`` is optional (the transport SDK sends none) but must be the refresh token's
  when given. An unknown, expired or revoked refresh token, or a malformed body: 400 ``bad.request``.
* ``DELETE /api/v2/webdeployments/token/revoke`` ("auth-revoke"), ``Authorization: Bearer <auth JWT>``: 204
  without a body; the sign-in is revoked: that auth JWT, every other one issued from its code or refresh token,
  and its refresh token stop working, and sockets configured with them get a ``LogoutEvent``. A missing,
  unknown, expired or revoked auth JWT: 401 ``bad.credentials``.
* The auth JWT: RS256 with the emulator's key (``kid``, the JWKS), claims ``iss`` (``issuer``), ``aud`` and
  ``deploymentId`` (the deployment), ``sub`` (the provider's stable id of the customer), ``name``, ``iat``,
  ``exp`` = ``iat`` + ``auth_jwt_lifetime`` (default 900 s), ``jti``. The refresh token is opaque and valid
  ``refresh_token_lifetime`` (default 86400 s). Both lifetimes: constructor arguments, ``set_auth_lifetimes``,
  ``POST /__emulator/auth/lifetimes {"authJwtSeconds"?, "refreshTokenSeconds"?}`` or ``--auth-jwt-lifetime`` and
  ``--refresh-token-lifetime``; they apply to tokens issued from then on, and 0 issues expired ones.
* ``/oidc/authorize``, ``/oidc/token`` and ``/oidc/jwks`` ("oidc-authorize", "oidc-token", "oidc-jwks"): the
  OpenID provider (``oidc_url``), see devtools/oidc_emulator.py. ``authorize(redirect_uri, code_challenge,
  nonce=None, name="Alex Example")`` returns the code its redirect would carry, for tests.
* Control: ``POST /__emulator/auth/expire-codes`` (every code issued so far has expired),
  ``/auth/expire-refresh-tokens``, ``/auth/expire-auth-jwts`` (the same for those), and the lifetimes above.
  Counts of these routes, "configure-authenticated-session" included, are under ``authCounts`` in
  ``GET /__emulator/requests``. Verbose output never shows a code, verifier, token or name (paths only).

A second, WebSocket port (``webmessaging_url``) serves the Web Messaging Guest API: the handshake
("ws-connect") and the ``configureSession`` ("configure-session"), ``getJwt`` ("get-jwt") and ``closeSession``
("close-session") actions, ``configureAuthenticatedSession`` ("configure-authenticated-session"), plus ``echo``
and ``onMessage``, with frames shaped as Genesys' SDK fixtures show them; see devtools/webmessaging_emulator.py.
Both modules share devtools/genesys_faults.py (routes, faults).

Tests drive it in-process::

    with GenesysEmulator().start() as genesys:
        genesys.add_fault("guest-token", status=429, retry_after=3)
        ...
        assert genesys.count("guest-token") == 2

Other processes (``make run``, browser tests) drive it over HTTP under ``/__emulator/`` and start it with
``python -m devtools.genesys_emulator --port 8080``.

Genesys' rate limits can be switched on (off by default): API requests per access token, and access tokens
issued per OAuth client, each counted in a fixed window (``RateLimits``, ``set_rate_limits`` or the
``--limit-*`` options). Over a limit the answer is ``429`` with ``Retry-After``, the seconds left in the window.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import math
import secrets
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final, Self, override
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from devtools.genesys_faults import (
    AUTH_ROUTES,
    BODY_FAULTS,
    ROUTE_AUTH_EXCHANGE,
    ROUTE_AUTH_REFRESH,
    ROUTE_AUTH_REVOKE,
    ROUTE_CLOSE_SESSION,
    ROUTE_CONFIGURE_AUTHENTICATED_SESSION,
    ROUTE_CONFIGURE_SESSION,
    ROUTE_DEPLOYMENT,
    ROUTE_GET_JWT,
    ROUTE_GUEST_TOKEN,
    ROUTE_JWKS,
    ROUTE_MESSAGES,
    ROUTE_OAUTH,
    ROUTE_OIDC_AUTHORIZE,
    ROUTE_OIDC_JWKS,
    ROUTE_OIDC_TOKEN,
    ROUTE_WS_CONNECT,
    ROUTES,
    Fault,
    RecordedRequest,
    check_fault_for_route,
    is_int,
)
from devtools.genesys_transcript import Replay
from devtools.oidc_emulator import AUTHORIZE_PATH as OIDC_AUTHORIZE_PATH
from devtools.oidc_emulator import DEFAULT_NAME, OIDC_PREFIX, OidcAnswer, OidcProvider, OidcUser
from devtools.oidc_emulator import JWKS_PATH as OIDC_JWKS_PATH
from devtools.oidc_emulator import TOKEN_PATH as OIDC_TOKEN_PATH
from devtools.webmessaging_emulator import (
    DEMO_DEPLOYMENT_ID,
    AuthenticatedUser,
    WebMessagingServer,
    WebMessagingState,
    make_deployment,
)

__all__ = [
    "AUTH_EXCHANGE_PATH",
    "AUTH_REFRESH_PATH",
    "AUTH_REVOKE_PATH",
    "BODY_FAULTS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_DEPLOYMENT_ID",
    "DEPLOYMENT_PATH_PREFIX",
    "GUEST_TOKEN_PATH",
    "JWKS_PATH",
    "MESSAGES_PATH",
    "OAUTH_PATH",
    "OIDC_AUTHORIZE_PATH",
    "OIDC_JWKS_PATH",
    "OIDC_TOKEN_PATH",
    "ROUTES",
    "Fault",
    "GenesysEmulator",
    "RecordedRequest",
    "SlowConnectProxy",
    "main",
]

DEMO_CLIENT_ID: Final = "demo-client-id"
DEMO_CLIENT_SECRET: Final = "demo-client-secret"

# The control API's "counts" keeps its original shape for existing readers; the others go under their own keys.
_REST_ROUTES: Final = (ROUTE_OAUTH, ROUTE_GUEST_TOKEN, ROUTE_JWKS)
_WEBMESSAGING_ROUTES: Final = (
    ROUTE_DEPLOYMENT,
    ROUTE_WS_CONNECT,
    ROUTE_CONFIGURE_SESSION,
    ROUTE_GET_JWT,
    ROUTE_CLOSE_SESSION,
    ROUTE_MESSAGES,
)
# The signed-in customers' HTTP routes (configure-authenticated-session is the Guest API's).
_AUTH_HTTP_ROUTES: Final = frozenset(AUTH_ROUTES) - {ROUTE_CONFIGURE_AUTHENTICATED_SESSION}
# Requests to paths Genesys would not serve are recorded under this pseudo-route to make typos visible.
UNKNOWN_ROUTE: Final = "unknown"

OAUTH_PATH: Final = "/oauth/token"
GUEST_TOKEN_PATH: Final = "/api/v2/webmessaging/guests/generate-token"
JWKS_PATH: Final = "/.well-known/jwks.json"
DEPLOYMENT_PATH_PREFIX: Final = "/api/v2/webdeployments/deployments/"
MESSAGES_PATH: Final = "/api/v2/webmessaging/messages"
AUTH_EXCHANGE_PATH: Final = "/api/v2/webdeployments/token/oauthcodegrantjwtexchange"
AUTH_REFRESH_PATH: Final = "/api/v2/webdeployments/token/refresh"
AUTH_REVOKE_PATH: Final = "/api/v2/webdeployments/token/revoke"
CONTROL_PREFIX: Final = "/__emulator/"

# path -> (route, the methods accepted there: one for every Genesys route)
_ROUTE_BY_PATH: Final = {
    OAUTH_PATH: (ROUTE_OAUTH, ("POST",)),
    GUEST_TOKEN_PATH: (ROUTE_GUEST_TOKEN, ("POST",)),
    JWKS_PATH: (ROUTE_JWKS, ("GET",)),
    MESSAGES_PATH: (ROUTE_MESSAGES, ("GET",)),
    AUTH_EXCHANGE_PATH: (ROUTE_AUTH_EXCHANGE, ("POST",)),
    AUTH_REFRESH_PATH: (ROUTE_AUTH_REFRESH, ("POST",)),
    AUTH_REVOKE_PATH: (ROUTE_AUTH_REVOKE, ("DELETE",)),
    # The sign-in page's form posts back to authorize.
    OIDC_AUTHORIZE_PATH: (ROUTE_OIDC_AUTHORIZE, ("GET", "POST")),
    OIDC_TOKEN_PATH: (ROUTE_OIDC_TOKEN, ("POST",)),
    OIDC_JWKS_PATH: (ROUTE_OIDC_JWKS, ("GET",)),
}

_MESSAGES_PAGE_SIZE: Final = 25
_MAX_MESSAGES_PAGE_SIZE: Final = 100

MAX_GUEST_TOKEN_SECONDS: Final = 86400
DEFAULT_AUTH_JWT_LIFETIME: Final = 900
DEFAULT_REFRESH_TOKEN_LIFETIME: Final = 86400
_MAX_BODY_BYTES: Final = 1 << 20
# The handler reads one chunk-size line at a time; anything longer is not HTTP a client would send.
_MAX_LINE_BYTES: Final = 65536

_ERROR_CODES: Final = {
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.any.permissions",
    404: "not.found",
    408: "request.timeout",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}
_ERROR_MESSAGES: Final = {
    401: "Invalid login credentials.",
    403: "Unable to perform the requested action. You are missing the following permission(s): []",
    429: "Rate limit exceeded the maximum. Retry the request later.",
    500: "The server encountered an unexpected condition.",
}


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _from_oidc(answer: OidcAnswer) -> _Response:
    return _Response(answer.status, answer.body, answer.content_type, dict(answer.headers))


@dataclass
class _SignIn:
    """One code exchanged: its customer, deployment and refresh token. Revoking it ends its auth JWTs too."""

    id: str
    user: OidcUser
    deployment_id: str
    refresh_token: str
    refresh_expires_at: float
    revoked: bool = False


class _BadBodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, payload: object) -> _Response:
    return _Response(status, json.dumps(payload).encode())


def _genesys_error(status: int, message: str | None = None) -> _Response:
    response = _Response(status)
    payload = {
        "message": message or _ERROR_MESSAGES.get(status) or _phrase(status),
        "code": _ERROR_CODES.get(status, "error"),
        "status": status,
        # Genesys reports the correlation id of the failed request as its contextId.
        "contextId": response.correlation_id,
        "details": [],
        "errors": [],
    }
    response.body = json.dumps(payload).encode()
    return response


def _rate_limited(retry_after: int) -> _Response:
    response = _genesys_error(429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _oauth_error(status: int, error: str, description: str) -> _Response:
    return _json(status, {"error": error, "description": description, "error_description": description})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _body_fault(kind: str, status: int) -> _Response:
    if kind == "not-json":
        # What a proxy or load balancer error page looks like to a JSON client.
        return _Response(status, b"<html><body><h1>Oops</h1>upstream said no", content_type="text/html")
    payloads: dict[str, object] = {
        "no-token": {},
        "not-jwt": {"token": "not-a-jwt"},
        "no-access-token": {"token_type": "bearer"},
    }
    return _json(status, payloads[kind])


def _parse_json_object(body: bytes) -> dict[str, Any] | str:
    """The body as a JSON object, or a message saying why it is not one."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "The request body is not valid JSON."
    if not isinstance(value, dict):
        return "The request body must be a JSON object."
    return value


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, client_secret = decoded.partition(":")
    return (client_id, client_secret) if colon else None


def _bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _exp_claim(token: str) -> int | None:
    """The integer ``exp`` claim of a JWT-shaped string, read without any check; None when there is none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return exp if is_int(exp) else None


def _jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: a stable kid derived from the key itself."""
    members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _loopback_ip(host: str) -> str:
    """The loopback IP to bind for ``host``; anything else is refused (this server issues tokens freely)."""
    if host == "localhost":
        # Bind an explicit address so the advertised URL never resolves to a different loopback family.
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be a loopback IP address or localhost, not {host!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"host must be a loopback address, not {host!r}")
    return str(ip)


@dataclass(frozen=True)
class RateLimits:
    """Genesys-like limits, each off when None: API requests (deployment lookup, guest-token) per access token,
    and access tokens issued per OAuth client, counted in fixed windows of ``window_seconds`` (Genesys: 300
    requests per minute per token; token creations per client are limited too)."""

    per_access_token: int | None = None
    per_client: int | None = None
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        for limit in (self.per_access_token, self.per_client):
            if limit is not None and not (is_int(limit) and limit >= 1):
                raise ValueError(f"a rate limit must be a whole number >= 1, not {limit!r}")
        if not 0 < self.window_seconds < math.inf:
            raise ValueError(f"window_seconds must be a finite number > 0, not {self.window_seconds!r}")


class GenesysEmulator:
    """A Genesys Cloud stand-in: the HTTP routes on one loopback port, the Guest API WebSocket on another.

    Both sockets are bound at construction (so ``base_url`` and ``webmessaging_url`` are known at once);
    ``start()`` serves them.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clients: dict[str, str] | None = None,
        access_token_ttl: int = 86400,
        verbose: bool = False,
        webmessaging_port: int = 0,
        jwt_lifetime: int = 900,
        rate_limits: RateLimits | None = None,
        transcript: Path | None = None,
        auth_jwt_lifetime: int = DEFAULT_AUTH_JWT_LIFETIME,
        refresh_token_lifetime: int = DEFAULT_REFRESH_TOKEN_LIFETIME,
    ) -> None:
        bind_ip = _loopback_ip(host)
        _check_lifetime("auth_jwt_lifetime", auth_jwt_lifetime)
        _check_lifetime("refresh_token_lifetime", refresh_token_lifetime)
        # A recorded Genesys (devtools/genesys_transcript.py) reshapes the Guest API's answers and session JWTs.
        self._replay = Replay.from_file(transcript) if transcript is not None else None
        _check_ttl(access_token_ttl)
        if not (is_int(jwt_lifetime) and jwt_lifetime >= 1):
            raise ValueError(f"jwt_lifetime must be whole seconds >= 1, not {jwt_lifetime!r}")
        self.jwt_lifetime = jwt_lifetime
        self._webmessaging = WebMessagingState()
        self._webmessaging.replay = self._replay
        self.verbose = verbose
        self._lock = threading.Lock()
        # Set on stop() so delayed answers wake up instead of holding their threads (and stop()) hostage.
        self._stopping = threading.Event()
        self._clients = dict(clients) if clients is not None else {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self._initial_access_token_ttl = access_token_ttl
        self._access_token_ttl = access_token_ttl
        self._access_tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._revoked: set[str] = set()
        self._faults: dict[str, deque[Fault]] = {route: deque() for route in ROUTES}
        self._counts: dict[str, int] = dict.fromkeys((*ROUTES, UNKNOWN_ROUTE), 0)
        self._requests: list[RecordedRequest] = []
        self._rate_limits = rate_limits or RateLimits()
        self._windows: dict[str, tuple[float, int]] = {}  # "token:…" or "client:…" -> (window start, count)
        self._rate_limited = 0
        # Signed-in customers: the lifetimes of what the token calls issue, and what they issued.
        self._initial_auth_lifetimes = (auth_jwt_lifetime, refresh_token_lifetime)
        self._auth_jwt_lifetime, self._refresh_token_lifetime = self._initial_auth_lifetimes
        self._sign_ins: dict[str, _SignIn] = {}
        self._sign_in_by_refresh_token: dict[str, str] = {}
        self._auth_jwts: dict[str, tuple[str, float]] = {}  # auth JWT -> (sign-in id, expiry, epoch seconds)

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rogue_key: rsa.RSAPrivateKey | None = None  # made on first bad_signature fault
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.kid = _jwk_thumbprint(jwk)
        self._public_jwk = {
            "kty": "RSA",
            "n": jwk["n"],
            "e": jwk["e"],
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
        }

        server_class = _Server6 if ":" in bind_ip else _Server
        self._server = server_class((bind_ip, port), self)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.host = bind_ip
        self.port: int = self._server.server_address[1]
        url_host = f"[{bind_ip}]" if ":" in bind_ip else bind_ip
        self.base_url = f"http://{url_host}:{self.port}"
        self.jwks_url = self.base_url + JWKS_PATH
        self.issuer = self.base_url
        self.oidc_url = self.base_url + OIDC_PREFIX
        self._oidc = OidcProvider(self.oidc_url, self._sign_id_token, self.public_jwks)
        try:
            self._ws_server = WebMessagingServer(self, self._webmessaging, bind_ip, webmessaging_port)
        except OSError:
            self._server.server_close()
            raise
        self.webmessaging_port = self._ws_server.port
        self.webmessaging_url = f"ws://{url_host}:{self.webmessaging_port}"

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None or self._stopped:
            raise RuntimeError("the emulator can only be started once")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most one poll for the accept loop
            name=f"genesys-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._ws_server.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server.drop_connections()
        self._ws_server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- control -------------------------------------------------------------------------------------

    def add_fault(self, route: str, fault: Fault | None = None, **fields: Any) -> None:
        """Queue a fault for ``route`` (FIFO); ``fields`` build a Fault or override fields of ``fault``."""
        _check_route(route)
        queued = Fault(**fields) if fault is None else dataclasses.replace(fault, **fields)
        check_fault_for_route(route, queued)
        with self._lock:
            self._faults[route].append(queued)

    def clear_faults(self) -> None:
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    def set_client(self, client_id: str, client_secret: str) -> None:
        """Add a client or rotate its secret (the previous secret stops working)."""
        if not all(isinstance(value, str) and value for value in (client_id, client_secret)):
            raise ValueError("client id and secret must be non-empty strings")
        with self._lock:
            self._clients[client_id] = client_secret

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Genesys' rate limits from now on, with fresh windows (``RateLimits()`` switches them off)."""
        with self._lock:
            self._rate_limits = limits
            self._windows.clear()

    @property
    def rate_limited(self) -> int:
        """Requests answered 429 because of a rate limit (not a fault) since the last reset."""
        with self._lock:
            return self._rate_limited

    def _over_limit(self, kind: str, key: str) -> int | None:
        """Count one request against ``kind``'s limit for ``key``; the Retry-After seconds when over it."""
        with self._lock:
            limit = getattr(self._rate_limits, kind)
            if limit is None:
                return None
            window = self._rate_limits.window_seconds
            now = time.monotonic()
            started, count = self._windows.get(f"{kind}:{key}", (now, 0))
            if now - started >= window:
                started, count = now, 0
            self._windows[f"{kind}:{key}"] = (started, count + 1)
            if count < limit:
                return None
            self._rate_limited += 1
            return max(1, math.ceil(started + window - now))

    def revoke_access_tokens(self) -> None:
        """Invalidate every access token issued so far; the API answers 401 to them."""
        with self._lock:
            self._revoked.update(self._access_tokens)

    def set_access_token_ttl(self, seconds: int) -> None:
        """The ``expires_in`` (and real lifetime) of access tokens issued from now on."""
        _check_ttl(seconds)
        with self._lock:
            self._access_token_ttl = seconds

    def set_deployment(
        self,
        deployment_id: str,
        *,
        status: str = "Active",
        allow_all_domains: bool = True,
        allowed_domains: Iterable[str] = (),
    ) -> None:
        """Add or replace a Messenger deployment (``allowed_domains``: bare hosts or ``*.example.com``)."""
        self._webmessaging.set_deployment(make_deployment(deployment_id, status, allow_all_domains, allowed_domains))

    def expire_session(self, token: str, frame_type: str = "response") -> None:
        """Expire the guest session(s) with this token: its sockets get a ``SessionExpiredEvent`` (a
        ``response``, as Genesys' SDK fixtures show, or a ``message``) and configureSession then answers 4006.
        KeyError if none."""
        if frame_type not in ("response", "message"):
            raise ValueError("type must be 'response' or 'message'")
        self._webmessaging.expire(token, "response" if frame_type == "response" else "message")

    def end_conversation(self, token: str, *, read_only: bool = True) -> None:
        """End the session's conversation with a Presence ``Disconnect``: with ``read_only`` its metadata says
        ``readOnly: "true"`` and the session stays read-only until a configureSession with startNew; without,
        the session stays writable (a deployment that does not show conversations as ended)."""
        self._webmessaging.end_conversation(token, read_only=read_only)

    @property
    def tag_answers(self) -> bool:
        """Whether Guest API answers and errors echo the request's tracingId (off: as Genesys' SDK fixtures)."""
        return self._webmessaging.tag_answers

    @tag_answers.setter
    def tag_answers(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("tagAnswers must be a boolean")
        self._webmessaging.tag_answers = value

    def session_state(self, token: str) -> str | None:
        """One of "active", "read-only" and "expired"; None for a token no guest has configured."""
        return self._webmessaging.state(token)

    def sessions(self) -> list[dict[str, Any]]:
        """The guest sessions, oldest first, without their tokens.

        Each is ``{"id" (the JWT sub), "deploymentId", "newSession", "readOnly", "expired", "messages"}``,
        ``messages`` being how many the history holds.
        """
        return self._webmessaging.sessions()

    def count(self, route: str) -> int:
        """Requests received on ``route`` so far, faulted and rejected ones included."""
        if route != UNKNOWN_ROUTE:
            _check_route(route)
        with self._lock:
            return self._counts[route]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received on Genesys routes, oldest first."""
        with self._lock:
            return [dataclasses.replace(request) for request in self._requests]

    def reset(self) -> None:
        """Forget counts, recorded requests, faults, revocations, guest sessions, authorization codes and
        sign-ins (their auth JWTs and refresh tokens stop working); restore the access token TTL, the auth
        lifetimes and the demo deployment alone.

        Clients, keys and issued access tokens are kept, so a caller caching a token stays signed in.
        Open guest sockets stay open, but their sessions are gone (follow-up actions answer 4007).
        """
        self._webmessaging.reset()
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)
            self._requests.clear()
            for queue in self._faults.values():
                queue.clear()
            self._revoked.clear()
            self._access_token_ttl = self._initial_access_token_ttl
            self._windows.clear()
            self._rate_limited = 0
            self._auth_jwt_lifetime, self._refresh_token_lifetime = self._initial_auth_lifetimes
            self._sign_ins.clear()
            self._sign_in_by_refresh_token.clear()
            self._auth_jwts.clear()
        self._oidc.reset()

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The private key behind ``kid`` and the JWKS, for tests that craft tokens (``Fault.token``)."""
        return self._key

    # -- signed-in customers ---------------------------------------------------------------------------

    def authorize(
        self,
        redirect_uri: str,
        code_challenge: str | None,
        nonce: str | None = None,
        name: str = DEFAULT_NAME,
        *,
        client_id: str | None = None,
    ) -> str:
        """Sign ``name`` in at the emulator's OpenID provider as ``GET /oidc/authorize`` would, and return the
        code its redirect would carry (single-use, expiring in 60 s). ``code_challenge``: an S256 challenge
        (``devtools.oidc_emulator.pkce_challenge(verifier)``), or None for an authorization without PKCE."""
        return self._oidc.authorize(redirect_uri, code_challenge, nonce, name, client_id=client_id)

    def expire_codes(self) -> None:
        """Every authorization code issued so far has expired."""
        self._oidc.expire_codes()

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far has expired (the refresh call refuses it)."""
        with self._lock:
            for sign_in in self._sign_ins.values():
                sign_in.refresh_expires_at = 0.0

    def expire_auth_jwts(self) -> None:
        """Every auth JWT issued so far has expired (configureAuthenticatedSession answers 401, revoke 401);
        their refresh tokens still work."""
        with self._lock:
            for auth_jwt, (sign_in, _) in self._auth_jwts.items():
                self._auth_jwts[auth_jwt] = (sign_in, 0.0)

    def set_auth_lifetimes(self, *, auth_jwt: int | None = None, refresh_token: int | None = None) -> None:
        """The lifetimes, in seconds, of auth JWTs and refresh tokens issued from now on (None: unchanged)."""
        for name, seconds in (("auth_jwt", auth_jwt), ("refresh_token", refresh_token)):
            if seconds is not None:
                _check_lifetime(name, seconds)
        with self._lock:
            if auth_jwt is not None:
                self._auth_jwt_lifetime = auth_jwt
            if refresh_token is not None:
                self._refresh_token_lifetime = refresh_token

    @property
    def auth_jwt_lifetime(self) -> int:
        with self._lock:
            return self._auth_jwt_lifetime

    @property
    def refresh_token_lifetime(self) -> int:
        with self._lock:
            return self._refresh_token_lifetime

    def authenticated_user(self, auth_jwt: str, deployment_id: str) -> AuthenticatedUser | None:
        """The customer of an auth JWT this emulator issued for ``deployment_id``, while it is live (neither
        expired nor revoked); None otherwise. The Guest API's configureAuthenticatedSession asks this."""
        with self._lock:
            found = self._auth_jwts.get(auth_jwt)
            sign_in = self._sign_ins.get(found[0]) if found is not None else None
            if found is None or sign_in is None or sign_in.revoked or found[1] <= time.time():
                return None
            if sign_in.deployment_id != deployment_id:
                return None
            return AuthenticatedUser(sign_in.id, sign_in.user.sub, sign_in.user.name)

    # -- request handling (called from handler threads) ----------------------------------------------

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: str = ""
    ) -> _Response | None:
        """Answer one Genesys-route request; None means drop the connection unanswered (stopping)."""
        route, allowed_methods = _route_for(path)
        record = RecordedRequest(route, method, path, headers, body, None, time.time())
        with self._lock:
            self._counts[route] += 1
            self._requests.append(record)
            fault = self._take_fault(route) if method in allowed_methods else None

        response = self._answer(route, allowed_methods, method, path, headers, body, fault, query)
        if response is not None:
            with self._lock:
                record.status = response.status
        if self.verbose:
            status = response.status if response is not None else "dropped"
            marker = " [fault]" if fault is not None else ""
            print(
                f"genesys-emulator: {method} {path} -> {status} ({route}){marker}",
                file=sys.stderr,
                flush=True,
            )
        return response

    def _take_fault(self, route: str) -> Fault | None:
        queue = self._faults.get(route)
        if not queue:
            return None
        fault = queue[0]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
        return fault

    def _answer(
        self,
        route: str,
        allowed_methods: tuple[str, ...],
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
        query: str = "",
    ) -> _Response | None:
        if route == UNKNOWN_ROUTE:
            return _genesys_error(404, f"Unable to find a route for {method} {path}.")
        if method not in allowed_methods:
            response = _genesys_error(405, f"{method} is not supported on {path}.")
            response.headers["Allow"] = ", ".join(allowed_methods)
            return response
        if fault is None:
            return self._normal_answer(route, path, headers, body, None, query, method)

        if fault.delay and self._stopping.wait(fault.delay):
            return None
        if fault.body is not None:
            response = _body_fault(fault.body, fault.status or 200)
        elif fault.status is not None:
            if route == ROUTE_OAUTH and fault.status in (400, 401):
                response = _oauth_error(fault.status, "invalid_client", "client not found")
            elif route == ROUTE_OIDC_TOKEN and fault.status in (400, 401):
                response = _json(fault.status, {"error": "invalid_grant", "error_description": "refused (a fault)"})
            else:
                response = _genesys_error(fault.status)
        else:
            response = self._normal_answer(route, path, headers, body, fault, query, method)
        # Only when asked: a 429 without Retry-After is a case clients must handle too.
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def _normal_answer(
        self,
        route: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
        query: str = "",
        method: str = "GET",
    ) -> _Response:
        lowered = {name.lower(): value for name, value in headers.items()}
        if route in _AUTH_HTTP_ROUTES:
            return self._auth_answer(route, method, lowered, body, query)
        if route == ROUTE_OAUTH:
            return self._issue_access_token(lowered, body)
        if route == ROUTE_GUEST_TOKEN:
            return self._issue_guest_token(lowered, body, fault or Fault())
        if route == ROUTE_DEPLOYMENT:
            return self._get_deployment(lowered, path.removeprefix(DEPLOYMENT_PATH_PREFIX))
        if route == ROUTE_MESSAGES:
            return self._list_messages(lowered, query)
        return _json(200, self.public_jwks())

    def _access_token_valid(self, headers: dict[str, str]) -> bool:
        token = _bearer_token(headers.get("authorization"))
        with self._lock:
            expiry = self._access_tokens.get(token) if token is not None else None
            return expiry is not None and expiry > time.time() and token not in self._revoked

    def _refused_access_token(self, headers: dict[str, str]) -> _Response | None:
        """401 for an unknown, expired or revoked access token; 429 over the per-token rate limit."""
        if not self._access_token_valid(headers):
            return _genesys_error(401)
        retry_after = self._over_limit("per_access_token", str(_bearer_token(headers.get("authorization"))))
        return _rate_limited(retry_after) if retry_after is not None else None

    def _get_deployment(self, headers: dict[str, str], deployment_id: str) -> _Response:
        if (refused := self._refused_access_token(headers)) is not None:
            return refused
        deployment = self._webmessaging.deployment(deployment_id)
        if deployment is None:
            return _genesys_error(404, f"Deployment {deployment_id} not found.")
        return _json(200, deployment.to_json())

    def _list_messages(self, headers: dict[str, str], query: str) -> _Response:
        guest_jwt = _bearer_token(headers.get("authorization"))
        session_id = self._webmessaging.session_for_jwt(guest_jwt) if guest_jwt is not None else None
        history = self._webmessaging.history(session_id) if session_id is not None else None
        if history is None:
            return _genesys_error(401)
        params = parse_qs(query)
        try:
            page_size = int(params.get("pageSize", [str(_MESSAGES_PAGE_SIZE)])[0])
            page_number = int(params.get("pageNumber", ["1"])[0])
        except ValueError:
            return _genesys_error(400, "pageSize and pageNumber must be integers.")
        if not (1 <= page_size <= _MAX_MESSAGES_PAGE_SIZE and page_number >= 1):
            return _genesys_error(400, f"pageSize must be 1..{_MAX_MESSAGES_PAGE_SIZE} and pageNumber >= 1.")
        start = (page_number - 1) * page_size
        return _json(
            200,
            {
                "entities": history[start : start + page_size],
                "pageSize": page_size,
                "pageNumber": page_number,
                "total": len(history),
                "pageCount": -(-len(history) // page_size),
            },
        )

    # -- signed-in customers: the token calls and the OpenID provider ----------------------------------

    def _auth_answer(self, route: str, method: str, headers: dict[str, str], body: bytes, query: str) -> _Response:
        if route == ROUTE_AUTH_EXCHANGE:
            return self._auth_exchange(body)
        if route == ROUTE_AUTH_REFRESH:
            return self._auth_refresh(body)
        if route == ROUTE_AUTH_REVOKE:
            return self._auth_revoke(headers)
        if route == ROUTE_OIDC_AUTHORIZE:
            is_form = headers.get("content-type", "").split(";")[0].strip().lower() == (
                "application/x-www-form-urlencoded"
            )
            if method == "POST":
                params = parse_qs(body.decode("utf-8", "replace")) if is_form else {}
            else:
                params = parse_qs(query)
            return _from_oidc(self._oidc.authorize_route(params))
        if route == ROUTE_OIDC_TOKEN:
            return _from_oidc(self._oidc.token_route(headers.get("content-type", ""), body))
        return _from_oidc(self._oidc.jwks_route())

    def _auth_exchange(self, body: bytes) -> _Response:
        request = _parse_json_object(body)
        if isinstance(request, str):
            return _genesys_error(400, request)
        problem = _exchange_request_problem(request)
        if problem is not None:
            return _genesys_error(400, problem)
        deployment_id: str = request["deploymentId"]
        oauth: dict[str, Any] = request["oauth"]
        if self._webmessaging.deployment(deployment_id) is None:
            return _genesys_error(400, f"Deployment {deployment_id} not found.")
        grant = self._oidc.redeem(
            oauth["code"], oauth["redirectUri"], oauth.get("codeVerifier"), nonce=oauth.get("nonce"), check_nonce=True
        )
        if isinstance(grant, str):
            return _genesys_error(400, grant)
        refresh_token = secrets.token_urlsafe(48)
        with self._lock:
            sign_in = _SignIn(
                str(uuid.uuid4()),
                grant.user,
                deployment_id,
                refresh_token,
                time.time() + self._refresh_token_lifetime,
            )
            self._sign_ins[sign_in.id] = sign_in
            self._sign_in_by_refresh_token[refresh_token] = sign_in.id
        return _json(200, {"jwt": self._mint_auth_jwt(sign_in), "refreshToken": refresh_token})

    def _auth_refresh(self, body: bytes) -> _Response:
        request = _parse_json_object(body)
        if isinstance(request, str):
            return _genesys_error(400, request)
        refresh_token = request.get("refreshToken")
        deployment_id = request.get("deploymentId")
        if not isinstance(refresh_token, str) or not refresh_token:
            return _genesys_error(400, "refreshToken is required and must be a non-empty string.")
        if deployment_id is not None and not isinstance(deployment_id, str):
            return _genesys_error(400, "deploymentId must be a string.")
        with self._lock:
            sign_in_id = self._sign_in_by_refresh_token.get(refresh_token)
            sign_in = self._sign_ins.get(sign_in_id) if sign_in_id is not None else None
            if sign_in is None:
                problem: str | None = "The refresh token is not valid."
            elif sign_in.revoked:
                problem = "The refresh token has been revoked."
            elif sign_in.refresh_expires_at <= time.time():
                problem = "The refresh token has expired."
            elif deployment_id is not None and deployment_id != sign_in.deployment_id:
                problem = "The refresh token was issued for another deployment."
            else:
                problem = None
        if problem is not None:
            return _genesys_error(400, problem)
        assert sign_in is not None
        return _json(200, {"jwt": self._mint_auth_jwt(sign_in)})

    def _auth_revoke(self, headers: dict[str, str]) -> _Response:
        auth_jwt = _bearer_token(headers.get("authorization"))
        with self._lock:
            found = self._auth_jwts.get(auth_jwt) if auth_jwt is not None else None
            sign_in = self._sign_ins.get(found[0]) if found is not None else None
            if found is None or sign_in is None or sign_in.revoked or found[1] <= time.time():
                return _genesys_error(401)
            sign_in.revoked = True
        self._webmessaging.logout(sign_in.id)
        return _Response(204)

    def _mint_auth_jwt(self, sign_in: _SignIn) -> str:
        now = int(time.time())
        with self._lock:
            exp = now + self._auth_jwt_lifetime
        claims = {
            "iss": self.issuer,
            "aud": sign_in.deployment_id,
            "sub": sign_in.user.sub,
            "name": sign_in.user.name,
            "deploymentId": sign_in.deployment_id,
            "iat": now,
            "exp": exp,
            "jti": str(uuid.uuid4()),
        }
        auth_jwt = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        with self._lock:
            self._auth_jwts[auth_jwt] = (sign_in.id, float(exp))
        return auth_jwt

    def _sign_id_token(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    # -- Guest API support (called from WebSocket handler threads) --------------------------------------

    @property
    def stopping(self) -> threading.Event:
        """Set once stop() begins: delayed answers wait on it."""
        return self._stopping

    def begin_ws_request(
        self, route: str, path: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[Fault | None, RecordedRequest | None]:
        """Count one handshake or action and take its fault; handshakes (HTTP requests) are recorded too."""
        with self._lock:
            self._counts[route] += 1
            record = None
            if path is not None:
                # No body: a handshake has none. Its headers carry no session token.
                record = RecordedRequest(route, "GET", path, dict(headers or {}), b"", None, time.time())
                self._requests.append(record)
            return self._take_fault(route), record

    def finish_ws_record(self, record: RecordedRequest | None, status: int | None) -> None:
        if record is not None:
            with self._lock:
                record.status = status

    def mint_session_jwt(self, session_id: str, deployment_id: str, fault: Fault | None) -> tuple[str, int]:
        """A guest session JWT and the ``exp`` to report beside it (they differ only under exp_mismatch)."""
        fault = fault or Fault()
        now = int(time.time())
        shift = 600 if fault.exp_mismatch else 0
        if fault.token is not None:
            exp = _exp_claim(fault.token)
            return fault.token, (exp if exp is not None else now + self.jwt_lifetime) + shift
        if fault.expired:
            iat, exp = now - 7200, now - 3600
        else:
            iat = now
            exp = now + (fault.token_lifetime if fault.token_lifetime is not None else self.jwt_lifetime)
        claims = {
            "iss": self.issuer,
            "aud": deployment_id,
            "sub": session_id,
            "iat": iat,
            "exp": exp,
            "jti": str(uuid.uuid4()),
            "deploymentId": deployment_id,
        }
        if self._replay is not None:
            # The recorded alg and claim names; of the token mutations only the expiry's still apply.
            return self._replay.jwt(claims, self._key, {"kid": self.kid}), exp + shift
        return self._sign(claims, fault), exp + shift

    def _issue_access_token(self, headers: dict[str, str], body: bytes) -> _Response:
        credentials = _basic_credentials(headers.get("authorization"))
        with self._lock:
            known = credentials is not None and self._clients.get(credentials[0]) == credentials[1]
            ttl = self._access_token_ttl
        if not known:
            return _oauth_error(401, "invalid_client", "client not found")

        # Like Genesys, only a form body counts; a JSON body simply has no grant_type.
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_form = content_type == "application/x-www-form-urlencoded"
        form = parse_qs(body.decode("utf-8", "replace")) if is_form else {}
        grant_type = form.get("grant_type", [""])[0]
        if grant_type != "client_credentials":
            description = "grant_type is required"
            if grant_type:
                description = f"grant type {grant_type!r} is not supported"
            return _oauth_error(400, "unsupported_grant_type", description)
        assert credentials is not None  # known
        if (retry_after := self._over_limit("per_client", credentials[0])) is not None:
            return _rate_limited(retry_after)

        token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[token] = time.time() + ttl
        return _json(200, {"access_token": token, "token_type": "bearer", "expires_in": ttl})

    def _issue_guest_token(self, headers: dict[str, str], body: bytes, fault: Fault) -> _Response:
        if (refused := self._refused_access_token(headers)) is not None:
            return refused

        request = _parse_json_object(body)
        if isinstance(request, str):
            return _genesys_error(400, request)
        problem = _guest_token_request_problem(request)
        if problem:
            return _genesys_error(400, problem)
        if fault.token is not None:
            return _json(200, {"token": fault.token})
        jwt_token = self._mint_guest_token(
            request["guestId"], request["expirationDurationSeconds"], request["scopes"], fault
        )
        return _json(200, {"token": jwt_token})

    def _mint_guest_token(self, guest_id: str, duration: int, scopes: list[str], fault: Fault) -> str:
        now = int(time.time())
        if fault.expired:
            iat, exp = now - 7200, now - 3600
        else:
            iat = now
            exp = now + (fault.token_lifetime if fault.token_lifetime is not None else duration)
        claims = {
            "sub": fault.sub if fault.sub is not None else guest_id,
            "scope": " ".join(fault.scopes if fault.scopes is not None else scopes),
            "iat": iat,
            "exp": exp,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
        }
        return self._sign(claims, fault)

    def _sign(self, claims: dict[str, Any], fault: Fault) -> str:
        header = {"kid": f"unknown-{uuid.uuid4().hex}" if fault.unknown_kid else self.kid}
        if fault.alg_none:
            return jwt.encode(claims, "", algorithm="none", headers=header)
        return jwt.encode(
            claims, self._rogue() if fault.bad_signature else self._key, algorithm="RS256", headers=header
        )

    def _rogue(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._rogue_key is None:
                self._rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._rogue_key

    # -- HTTP control routes ---------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        action = path.removeprefix(CONTROL_PREFIX).rstrip("/")
        allowed = {
            "faults": ("POST", "DELETE"),
            "requests": ("GET",),
            "reset": ("POST",),
            "revoke": ("POST",),
            "clients": ("POST",),
            "access-token-ttl": ("POST",),
            "deployments": ("POST",),
            "sessions": ("GET",),
            "sessions/expire": ("POST",),
            "sessions/end": ("POST",),
            "webmessaging": ("POST",),
            "health": ("GET",),
            "auth/expire-codes": ("POST",),
            "auth/expire-refresh-tokens": ("POST",),
            "auth/expire-auth-jwts": ("POST",),
            "auth/lifetimes": ("POST",),
        }.get(action)
        if allowed is None:
            return _genesys_error(404, f"Unknown emulator control route {path}.")
        if method not in allowed:
            response = _genesys_error(405, f"{method} is not supported on {path}.")
            response.headers["Allow"] = ", ".join(allowed)
            return response

        if action == "faults" and method == "DELETE":
            self.clear_faults()
        elif action == "requests":
            return _json(200, self._control_snapshot())
        elif action == "reset":
            self.reset()
        elif action == "revoke":
            self.revoke_access_tokens()
        elif action == "auth/expire-codes":
            self.expire_codes()
        elif action == "auth/expire-refresh-tokens":
            self.expire_refresh_tokens()
        elif action == "auth/expire-auth-jwts":
            self.expire_auth_jwts()
        elif action == "health":
            return _json(200, {"status": "ok", "webmessagingUrl": self.webmessaging_url})
        elif action == "sessions":
            return _json(200, {"sessions": self.sessions()})
        else:
            request = _parse_json_object(body)
            if isinstance(request, str):
                return _genesys_error(400, request)
            try:
                self._control_update(action, request)
            except LookupError as exc:
                # An unknown session token: the message never contains the token.
                if action.startswith("sessions/"):
                    return _genesys_error(404, "No guest session has that token.")
                return _genesys_error(400, f"Invalid {action} request: {exc}")
            except (TypeError, ValueError) as exc:
                return _genesys_error(400, f"Invalid {action} request: {exc}")
        return _Response(204)

    def _control_update(self, action: str, request: dict[str, Any]) -> None:
        if action == "faults":
            route = request.pop("route", None)
            if not isinstance(route, str):
                raise ValueError(f"route must be one of {list(ROUTES)}")
            self.add_fault(route, **request)
        elif action == "clients":
            self.set_client(request["clientId"], request["clientSecret"])
        elif action == "deployments":
            unknown = set(request) - {"id", "status", "allowAllDomains", "allowedDomains"}
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}")
            allowed_domains = request.get("allowedDomains", [])
            if not isinstance(allowed_domains, list):
                raise TypeError("allowedDomains must be a list of strings")
            self.set_deployment(
                request["id"],
                status=request.get("status", "Active"),
                allow_all_domains=request.get("allowAllDomains", True),
                allowed_domains=allowed_domains,
            )
        elif action in ("sessions/expire", "sessions/end"):
            token = request.get("token")
            if not isinstance(token, str) or not token:
                raise TypeError("token must be a non-empty string")
            if action == "sessions/expire":
                self.expire_session(token, request.get("type", "response"))
            else:
                self.end_conversation(token, read_only=request.get("readOnly", True))
        elif action == "webmessaging":
            unknown = set(request) - {"tagAnswers"}
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}")
            self.tag_answers = request.get("tagAnswers", False)
        elif action == "auth/lifetimes":
            unknown = set(request) - {"authJwtSeconds", "refreshTokenSeconds"}
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}")
            self.set_auth_lifetimes(
                auth_jwt=request.get("authJwtSeconds"), refresh_token=request.get("refreshTokenSeconds")
            )
        else:
            self.set_access_token_ttl(request["seconds"])

    def _control_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": {route: self._counts[route] for route in _REST_ROUTES},
                "webMessagingCounts": {route: self._counts[route] for route in _WEBMESSAGING_ROUTES},
                "authCounts": {route: self._counts[route] for route in AUTH_ROUTES},
                # No headers or bodies: they carry credentials and tokens.
                "requests": [
                    {"route": r.route, "method": r.method, "path": r.path, "status": r.status, "time": r.time}
                    for r in self._requests
                ],
            }


def _route_for(path: str) -> tuple[str, tuple[str, ...]]:
    """(route, the methods accepted there) for a request path."""
    if path in _ROUTE_BY_PATH:
        return _ROUTE_BY_PATH[path]
    deployment_id = path.removeprefix(DEPLOYMENT_PATH_PREFIX)
    if deployment_id != path and deployment_id and "/" not in deployment_id:
        return ROUTE_DEPLOYMENT, ("GET",)
    return UNKNOWN_ROUTE, ()


def _check_route(route: str) -> None:
    if route not in ROUTES:
        raise ValueError(f"route must be one of {list(ROUTES)}, not {route!r}")


def _check_ttl(seconds: int) -> None:
    if not (is_int(seconds) and seconds >= 0):
        raise ValueError(f"access token TTL must be whole seconds >= 0, not {seconds!r}")


def _check_lifetime(name: str, seconds: object) -> None:
    if not (is_int(seconds) and 0 <= seconds <= 10 * 365 * 86400):
        raise ValueError(f"{name} must be whole seconds from 0 to ten years, not {seconds!r}")


def _exchange_request_problem(request: dict[str, Any]) -> str | None:
    """Why an oauthcodegrantjwtexchange body is malformed, or None."""
    deployment_id = request.get("deploymentId")
    if not isinstance(deployment_id, str) or not deployment_id:
        return "deploymentId is required and must be a non-empty string."
    oauth = request.get("oauth")
    if not isinstance(oauth, dict):
        return "oauth is required and must be an object."
    code = oauth.get("code")
    if not isinstance(code, str) or not code:
        if "idToken" in oauth:
            return "oauth.code is required: the emulator supports the authorization code flow only."
        return "oauth.code is required and must be a non-empty string."
    redirect_uri = oauth.get("redirectUri")
    if not isinstance(redirect_uri, str) or not redirect_uri:
        return "oauth.redirectUri is required and must be a non-empty string."
    for optional in ("codeVerifier", "nonce"):
        if oauth.get(optional) is not None and not isinstance(oauth[optional], str):
            return f"oauth.{optional} must be a string."
    return None


def _guest_token_request_problem(request: dict[str, Any]) -> str | None:
    guest_id = request.get("guestId")
    if not isinstance(guest_id, str) or not guest_id:
        return "guestId is required and must be a non-empty string."
    duration = request.get("expirationDurationSeconds")
    if not is_int(duration) or not 1 <= duration <= MAX_GUEST_TOKEN_SECONDS:
        return f"expirationDurationSeconds must be an integer from 1 to {MAX_GUEST_TOKEN_SECONDS}."
    scopes = request.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        return "scopes must be a non-empty list of non-empty strings."
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default joins every handler thread on close, which would wait on idle keep-alive connections.
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: GenesysEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on hosts without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Wake handler threads blocked reading idle keep-alive connections so they exit now."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (read timeouts against a delayed answer) are expected, not errors.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GenesysEmulator"
    sys_version = ""
    timeout = 60  # idle keep-alive connections release their thread eventually
    # Buffer each answer into one write and send it at once: a separate header write plus Nagle and
    # delayed ACKs costs ~40 ms per request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    @override
    def log_message(self, format: str, *args: Any) -> None:
        # Silent by default; verbose mode logs its own credential-free line per request.
        pass

    @override
    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    @override
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests and unsupported methods still get a Genesys-shaped answer with a correlation id.
        self.close_connection = True
        self._write(_genesys_error(code, message))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            body = self._read_body()
        except _BadBodyError as exc:
            # The rest of the body is unread, so this connection cannot carry another request.
            self.close_connection = True
            self._write(_genesys_error(exc.status, exc.message))
            return
        emulator = self.server.emulator
        try:
            if path.startswith(CONTROL_PREFIX):
                response: _Response | None = emulator._control(self.command, path, body)
            else:
                headers = {name: value for name, value in self.headers.items()}
                response = emulator._handle(self.command, path, headers, body, url.query)
        except Exception:  # a bug in the emulator must still produce an answer
            traceback.print_exc()
            response = _genesys_error(500, "The Genesys emulator failed; see its stderr.")
        if response is None:
            self.close_connection = True
            return
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise _BadBodyError(400, "Invalid Content-Length header.") from None
        if length < 0:
            raise _BadBodyError(400, "Invalid Content-Length header.")
        if length > _MAX_BODY_BYTES:
            raise _BadBodyError(413, "The request body is too large.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE_BYTES)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadBodyError(400, "Invalid chunked request body.") from None
            if size == 0:
                while self.rfile.readline(_MAX_LINE_BYTES) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY_BYTES:
                raise _BadBodyError(413, "The request body is too large.")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE_BYTES)  # the CRLF closing the chunk

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("ININ-Correlation-Id", response.correlation_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        # RFC 9110 forbids Content-Length (and a body) on 204.
        has_body = response.status != HTTPStatus.NO_CONTENT
        if has_body:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if has_body and self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()


class SlowConnectProxy:
    """A loopback TCP proxy in front of one of the emulator's URLs whose connects can be made slow.

    ``hold(seconds)`` fills the listening socket's accept queue and stops accepting for ``seconds``: a client
    connecting meanwhile has its SYN dropped by the kernel and sends it again, as after a packet lost on the
    way to Genesys. Linux sends it again 1 s later (then every second or with doubling gaps, depending on
    the kernel), so a connect started during a hold of under 1 s completes after about 1 s. Accepted
    connections pass bytes through unchanged, so faults queued on the emulator still apply::

        with SlowConnectProxy(genesys.base_url) as proxy:
            proxy.hold(0.5)
            ...  # the client connects to proxy.url
    """

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        if target.hostname is None or target.port is None:
            raise ValueError(f"target_url needs a host and a port, not {target_url!r}")
        self._target = (target.hostname, target.port)
        # A few connections nobody accepts fill the accept queue; a few, so that connects in quick
        # succession outside a hold do not find it full before the proxy accepts the previous one.
        self._listener = socket.create_server((_loopback_ip(target.hostname), 0), backlog=8)
        self._listener.setblocking(False)
        port = self._listener.getsockname()[1]
        self.url = f"{target.scheme}://{target.netloc.rsplit(':', 1)[0]}:{port}"
        self._lock = threading.Lock()
        self._held_until = 0.0
        self._plugged = threading.Event()
        self._stopping = threading.Event()
        self._plugs: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._serve, name=f"slow-connect-proxy-{port}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._unplug()
        self._listener.close()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def release(self) -> None:
        """End a hold now."""
        with self._lock:
            self._held_until = 0.0

    def hold(self, seconds: float) -> None:
        """Drop the SYN of every connect for ``seconds`` from now (a hold under way is extended or cut short
        to that); returns once the accept queue is full."""
        if not (isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0):
            raise ValueError(f"seconds must be > 0, not {seconds!r}")
        if not self._thread.is_alive():
            raise RuntimeError("start the proxy first")
        with self._lock:
            self._plugged.clear()
            self._held_until = time.monotonic() + seconds
        if not self._plugged.wait(timeout=5):
            raise RuntimeError("the accept queue could not be filled")

    def _serve(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                held = time.monotonic() < self._held_until
            if held:
                if not self._plugs:
                    self._plug()
                self._plugged.set()
                self._stopping.wait(0.01)
                continue
            self._unplug()
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if ready:
                self._accept()

    def _plug(self) -> None:
        # Connect until a connect stays pending: its SYN was dropped, so the queue is full.
        for _ in range(32):
            plug = socket.socket(self._listener.family, socket.SOCK_STREAM)
            plug.setblocking(False)
            plug.connect_ex(self._listener.getsockname()[:2])
            self._plugs.append(plug)
            _, connected, _ = select.select([], [plug], [], 0.05)
            if not connected:
                return
        raise RuntimeError("the accept queue never filled (SYNs are dropped that way on Linux)")

    def _unplug(self) -> None:
        if not self._plugs:
            return
        ports = {plug.getsockname()[1] for plug in self._plugs}
        for plug in self._plugs:
            plug.close()
        self._plugs = []
        # The queue holds the plugs alone: a client's dropped SYN is only sent again a second later.
        while self._accept(plug_ports=ports):
            pass

    def _accept(self, plug_ports: Collection[int] = ()) -> bool:
        try:
            client, address = self._listener.accept()
        except OSError:  # nothing queued, or the client gave up
            return False
        if address[1] in plug_ports:
            client.close()
        else:
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()
        return True

    def _relay(self, client: socket.socket) -> None:
        client.setblocking(True)
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        other = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        other.start()
        _pump(client, upstream)
        other.join()
        with self._lock:
            self._open.difference_update((client, upstream))
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.genesys_emulator",
        description="Serve a Genesys Cloud emulator (OAuth, guest tokens, JWKS, Web Messaging) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--webmessaging-port",
        type=int,
        help="port of the Web Messaging WebSocket (default 8180, or a free one when --port is 0)",
    )
    parser.add_argument("--client-id", help=f"OAuth client id to accept (default {DEMO_CLIENT_ID})")
    parser.add_argument("--client-secret", help="its secret (required with --client-id)")
    parser.add_argument("--access-token-ttl", type=int, default=86400, help="access token lifetime, seconds")
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    parser.add_argument("--limit-per-access-token", type=int, help="API requests per access token per window")
    parser.add_argument("--limit-per-client", type=int, help="access tokens issued per OAuth client per window")
    parser.add_argument("--limit-window", type=float, default=60.0, help="the rate limits' window, seconds")
    parser.add_argument(
        "--auth-jwt-lifetime",
        type=int,
        default=DEFAULT_AUTH_JWT_LIFETIME,
        help="lifetime of the auth JWTs of signed-in customers, seconds",
    )
    parser.add_argument(
        "--refresh-token-lifetime",
        type=int,
        default=DEFAULT_REFRESH_TOKEN_LIFETIME,
        help="lifetime of the refresh tokens of signed-in customers, seconds",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="answer the Guest API as the transcript FILE recorded (devtools.check_genesys --session)",
    )
    args = parser.parse_args(argv)

    if (args.client_id is None) != (args.client_secret is None):
        parser.error("--client-id and --client-secret go together")
    clients = {args.client_id: args.client_secret} if args.client_id is not None else None
    # --port 0 (tests) must not collide on a fixed WebSocket port with a running `make run`.
    webmessaging_port = args.webmessaging_port
    if webmessaging_port is None:
        webmessaging_port = 0 if args.port == 0 else 8180
    try:
        emulator = GenesysEmulator(
            args.host,
            args.port,
            clients=clients,
            access_token_ttl=args.access_token_ttl,
            verbose=args.verbose,
            webmessaging_port=webmessaging_port,
            rate_limits=RateLimits(args.limit_per_access_token, args.limit_per_client, args.limit_window),
            transcript=args.replay,
            auth_jwt_lifetime=args.auth_jwt_lifetime,
            refresh_token_lifetime=args.refresh_token_lifetime,
        )
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        ports = f"{args.port} and {webmessaging_port}"
        print(f"genesys-emulator: cannot listen on {args.host} ports {ports}: {exc}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with emulator.start():
        print(f"Genesys emulator listening on {emulator.base_url}", flush=True)
        print(f"Genesys Web Messaging emulator listening on {emulator.webmessaging_url}", flush=True)
        print(f"Identity provider (OpenID) of the emulator at {emulator.oidc_url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
