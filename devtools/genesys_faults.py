"""What the two emulator modules share: the routes, the faults a test queues on them, and the record of a request.

``genesys_emulator`` (the HTTP routes and the control API) and ``webmessaging_emulator`` (the Guest API's
WebSocket) both import this module and neither imports the other's internals through it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final, TypeGuard

__all__ = [
    "ACTION_ROUTES",
    "AUTH_ROUTES",
    "BODY_FAULTS",
    "ROUTES",
    "ROUTE_AUTH_EXCHANGE",
    "ROUTE_AUTH_REFRESH",
    "ROUTE_AUTH_REVOKE",
    "ROUTE_CLOSE_SESSION",
    "ROUTE_CONFIGURE_AUTHENTICATED_SESSION",
    "ROUTE_CONFIGURE_SESSION",
    "ROUTE_DEPLOYMENT",
    "ROUTE_GET_JWT",
    "ROUTE_GUEST_TOKEN",
    "ROUTE_JWKS",
    "ROUTE_MESSAGES",
    "ROUTE_OAUTH",
    "ROUTE_OIDC_AUTHORIZE",
    "ROUTE_OIDC_JWKS",
    "ROUTE_OIDC_TOKEN",
    "ROUTE_WS_CONNECT",
    "TOO_MANY_REQUESTS",
    "Fault",
    "RecordedRequest",
    "check_fault_for_route",
    "is_int",
]

ROUTE_OAUTH: Final = "oauth"
ROUTE_GUEST_TOKEN: Final = "guest-token"
ROUTE_JWKS: Final = "jwks"
ROUTE_DEPLOYMENT: Final = "deployment"
ROUTE_MESSAGES: Final = "messages"
ROUTE_WS_CONNECT: Final = "ws-connect"
ROUTE_CONFIGURE_SESSION: Final = "configure-session"
ROUTE_GET_JWT: Final = "get-jwt"
ROUTE_CLOSE_SESSION: Final = "close-session"
# Signed-in customers: Genesys' web deployments token calls, the Guest API's configureAuthenticatedSession, and
# the emulator's OpenID provider (the company's identity provider, devtools/oidc_emulator.py).
ROUTE_AUTH_EXCHANGE: Final = "auth-exchange"
ROUTE_AUTH_REFRESH: Final = "auth-refresh"
ROUTE_AUTH_REVOKE: Final = "auth-revoke"
ROUTE_CONFIGURE_AUTHENTICATED_SESSION: Final = "configure-authenticated-session"
ROUTE_OIDC_AUTHORIZE: Final = "oidc-authorize"
ROUTE_OIDC_TOKEN: Final = "oidc-token"
ROUTE_OIDC_JWKS: Final = "oidc-jwks"
AUTH_ROUTES: Final = (
    ROUTE_AUTH_EXCHANGE,
    ROUTE_AUTH_REFRESH,
    ROUTE_AUTH_REVOKE,
    ROUTE_CONFIGURE_AUTHENTICATED_SESSION,
    ROUTE_OIDC_AUTHORIZE,
    ROUTE_OIDC_TOKEN,
    ROUTE_OIDC_JWKS,
)
ROUTES: Final = (
    ROUTE_OAUTH,
    ROUTE_GUEST_TOKEN,
    ROUTE_JWKS,
    ROUTE_DEPLOYMENT,
    ROUTE_WS_CONNECT,
    ROUTE_CONFIGURE_SESSION,
    ROUTE_GET_JWT,
    ROUTE_CLOSE_SESSION,
    ROUTE_MESSAGES,
    *AUTH_ROUTES,
)
# Guest API actions a fault can be queued on.
ACTION_ROUTES: Final = (
    ROUTE_CONFIGURE_SESSION,
    ROUTE_GET_JWT,
    ROUTE_CLOSE_SESSION,
    ROUTE_CONFIGURE_AUTHENTICATED_SESSION,
)
# The signed-in customers' HTTP routes: Genesys' three token calls and the OpenID provider's.
_SIGNED_IN_HTTP_ROUTES: Final = (
    ROUTE_AUTH_EXCHANGE,
    ROUTE_AUTH_REFRESH,
    ROUTE_AUTH_REVOKE,
    ROUTE_OIDC_AUTHORIZE,
    ROUTE_OIDC_TOKEN,
    ROUTE_OIDC_JWKS,
)
# HTTP routes whose only body fault is a page that is not JSON.
_NOT_JSON_ONLY_ROUTES: Final = (ROUTE_DEPLOYMENT, ROUTE_MESSAGES, *_SIGNED_IN_HTTP_ROUTES)
TOO_MANY_REQUESTS: Final = 4029

BODY_FAULTS: Final = frozenset({"not-json", "no-token", "not-jwt", "no-access-token"})


@dataclass
class Fault:
    """How the emulator misbehaves for the next matching request(s) on one route.

    HTTP routes: ``delay`` is applied first; then ``body`` (answered with ``status`` or 200) or ``status``
    (a Genesys error body); otherwise the normal answer, with the token mutations applied to the JWT.
    A fault applies to every request that reaches its route with the right method, whether or not the
    request would otherwise succeed.

    "ws-connect" (the WebSocket handshake): ``delay``, then ``refuse`` (hang up with no HTTP answer) or
    ``status`` (refuse the upgrade with that HTTP status).

    "auth-exchange", "auth-refresh", "auth-revoke" (Genesys' web deployments token calls) and "oidc-authorize",
    "oidc-token", "oidc-jwks" (the emulator's OpenID provider) are HTTP routes with ``status``, ``retry_after``,
    ``delay`` and ``body="not-json"`` only; their ``status`` answers Genesys' error body (on "oidc-token", 400
    and 401 answer an OAuth ``invalid_grant`` error instead).

    "configure-session", "get-jwt", "close-session" and "configure-authenticated-session" (Guest API actions):
    ``delay``, then ``noise`` (frames a client must skip: an event, another socket's echo of the guest's
    message, a class no SDK knows, and a same-class answer carrying another tracingId), then one of ``drop``
    (close the socket), ``silent`` (never answer), ``body="not-json"`` (a frame that is not JSON), ``code``
    (that error code; 4029 answers the TooManyRequestsErrorMessage shape with ``retry_after`` seconds, default
    1) or ``session_expired`` (the session expires as the action arrives: a ``SessionExpiredEvent`` instead of
    the answer); otherwise the normal answer, for "get-jwt" with the token mutations and ``exp_mismatch`` (the
    answer's ``exp`` is 600 s later than the JWT's).

    ``token`` ("guest-token" and "get-jwt"): answer exactly this string as the token (the body's ``token``,
    or the JwtResponse's ``jwt``, whose ``exp`` is then the string's ``exp`` claim when that is an integer,
    else the usual one), for hostile tokens crafted by a test; see ``signing_key``.
    """

    status: int | None = None
    retry_after: str | int | None = None
    delay: float = 0.0
    body: str | None = None
    sub: str | None = None
    expired: bool = False
    scopes: list[str] | None = None
    alg_none: bool = False
    bad_signature: bool = False
    unknown_kid: bool = False
    token_lifetime: int | None = None
    code: int | None = None
    drop: bool = False
    silent: bool = False
    noise: bool = False
    refuse: bool = False
    exp_mismatch: bool = False
    session_expired: bool = False
    token: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        # Faults also arrive as JSON from other processes, so check types instead of trusting hints.
        if self.status is not None and not (is_int(self.status) and 400 <= self.status <= 599):
            raise ValueError(f"status must be an HTTP error status (400..599), not {self.status!r}")
        if self.retry_after is not None and not (
            isinstance(self.retry_after, str) or (is_int(self.retry_after) and self.retry_after >= 0)
        ):
            raise ValueError(f"retry_after must be a string or seconds >= 0, not {self.retry_after!r}")
        if not (is_int(self.delay) or isinstance(self.delay, float)) or self.delay < 0:
            raise ValueError(f"delay must be seconds >= 0, not {self.delay!r}")
        if self.body is not None and self.body not in BODY_FAULTS:
            raise ValueError(f"body must be one of {sorted(BODY_FAULTS)}, not {self.body!r}")
        if self.sub is not None and not isinstance(self.sub, str):
            raise TypeError(f"sub must be a string, not {self.sub!r}")
        if self.scopes is not None and not (
            isinstance(self.scopes, list) and all(isinstance(scope, str) for scope in self.scopes)
        ):
            raise TypeError(f"scopes must be a list of strings, not {self.scopes!r}")
        for flag in _FLAGS:
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a boolean")
        if self.token is not None and not isinstance(self.token, str):
            raise TypeError(f"token must be a string, not {type(self.token).__name__}")
        if self.token_lifetime is not None and not is_int(self.token_lifetime):
            raise ValueError(f"token_lifetime must be whole seconds, not {self.token_lifetime!r}")
        if self.code is not None and not (is_int(self.code) and 4000 <= self.code <= 5999):
            raise ValueError(f"code must be a Guest API error code (4000..5999), not {self.code!r}")
        outcomes = [
            name
            for name in ("drop", "silent", "body", "code", "session_expired", "token")
            if getattr(self, name) not in (None, False)
        ]
        if len(outcomes) > 1:
            raise ValueError(f"{' and '.join(outcomes)} are alternatives; pick one")
        if self.token is not None and self.status is not None:
            raise ValueError("token and status are alternatives; pick one")
        if self.refuse and self.status is not None:
            raise ValueError("refuse and status are alternatives; pick one")
        if self.times is not None and not (is_int(self.times) and self.times >= 1):
            raise ValueError(f"times must be >= 1 or None (until cleared), not {self.times!r}")

    @property
    def forges_token(self) -> bool:
        """Whether the token answered is one Genesys would not have issued (it opens nothing)."""
        return self.token is not None or self.alg_none or self.bad_signature or self.unknown_kid or self.expired


_FLAGS: Final = (
    "expired",
    "alg_none",
    "bad_signature",
    "unknown_kid",
    "drop",
    "silent",
    "noise",
    "refuse",
    "exp_mismatch",
    "session_expired",
)
_TOKEN_MUTATIONS: Final = frozenset({"expired", "alg_none", "bad_signature", "unknown_kid", "token_lifetime"})
_HTTP_FIELDS: Final = frozenset({"status", "retry_after", "delay", "body"})
_ACTION_FIELDS: Final = frozenset(
    {"code", "retry_after", "drop", "silent", "body", "noise", "delay", "session_expired"}
)
# Which fault fields mean something on each route; the original routes keep accepting every original field.
_FIELDS_BY_ROUTE: Final = {
    ROUTE_OAUTH: _HTTP_FIELDS | {"sub", "scopes"} | _TOKEN_MUTATIONS,
    ROUTE_GUEST_TOKEN: _HTTP_FIELDS | {"sub", "scopes", "token"} | _TOKEN_MUTATIONS,
    ROUTE_JWKS: _HTTP_FIELDS | {"sub", "scopes"} | _TOKEN_MUTATIONS,
    ROUTE_DEPLOYMENT: _HTTP_FIELDS,
    ROUTE_MESSAGES: _HTTP_FIELDS,
    ROUTE_WS_CONNECT: frozenset({"status", "refuse", "delay"}),
    ROUTE_CONFIGURE_SESSION: _ACTION_FIELDS,
    ROUTE_GET_JWT: _ACTION_FIELDS | _TOKEN_MUTATIONS | {"exp_mismatch", "token"},
    ROUTE_CLOSE_SESSION: _ACTION_FIELDS,
    ROUTE_CONFIGURE_AUTHENTICATED_SESSION: _ACTION_FIELDS,
    **dict.fromkeys(
        _SIGNED_IN_HTTP_ROUTES,
        _HTTP_FIELDS,
    ),
}
# What an exact token replaces: it cannot also be minted with changes.
_MINTING_FIELDS: Final = _TOKEN_MUTATIONS | {"sub", "scopes"}


def check_fault_for_route(route: str, fault: Fault) -> None:
    used = {
        spec.name
        for spec in dataclasses.fields(Fault)
        if spec.name != "times" and getattr(fault, spec.name) != spec.default
    }
    unsupported = sorted(used - _FIELDS_BY_ROUTE[route])
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} cannot apply to route {route!r}")
    if fault.token is not None and used & _MINTING_FIELDS:
        raise ValueError(f"token is answered as it is; {', '.join(sorted(used & _MINTING_FIELDS))} cannot apply")
    if route in ACTION_ROUTES:
        if fault.body is not None and fault.body != "not-json":
            raise ValueError(f"body on route {route!r} can only be 'not-json'")
        if fault.retry_after is not None and not (fault.code == TOO_MANY_REQUESTS and is_int(fault.retry_after)):
            raise ValueError(f"retry_after on route {route!r} needs code={TOO_MANY_REQUESTS} and whole seconds")
    if route in _NOT_JSON_ONLY_ROUTES and fault.body not in (None, "not-json"):
        raise ValueError(f"body on route {route!r} can only be 'not-json'")


@dataclass
class RecordedRequest:
    """One request received on a Genesys route; ``status`` is None until answered (or if never answered)."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    time: float


def is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, and True is never a sensible status or count.
    return isinstance(value, int) and not isinstance(value, bool)
