"""Where a guest's token comes from, chosen once per container by GUEST_TOKEN_SOURCE.

- ``webmessaging`` (the default, and the one real Genesys serves): the web deployment is looked up with the
  OAuth access token and must be Active (cached per container: DEPLOYMENT_CACHE_SECONDS when Active,
  DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS when not); then the Web Messaging Guest API configures the guest's
  session and hands out its JWT. Whether the widget's origin may open the session is Genesys' to decide on the
  WebSocket handshake: how it matches allowedDomains is not public, so the service does not guess.
- ``rest``: the tutorial's ``generate-token`` contract, with the OAuth access token.

Both answer a GuestTokenResponse whose token has been verified; app.py never branches on the source.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from . import oauth, observability, verify
from .budget import Deadline
from .errors import DeploymentUnavailable, OriginNotAllowed, SessionRefused
from .genesys import guest_api, guest_token_contract, rest
from .models import GuestTokenRequest, GuestTokenResponse
from .settings import SOURCE_REST, Settings

ACTIVE = "Active"


def issue(
    settings: Settings, request: GuestTokenRequest, origin: str, deadline: Deadline, audit: dict[str, Any]
) -> GuestTokenResponse:
    """The verified token for ``request``; Genesys' correlation id (and a replaced guest's reference) go
    into ``audit``."""
    source = _from_rest if settings.guest_token_source == SOURCE_REST else _from_webmessaging
    return source(settings, request, origin, deadline, audit)


def _from_rest(
    settings: Settings, request: GuestTokenRequest, origin: str, deadline: Deadline, audit: dict[str, Any]
) -> GuestTokenResponse:
    lifetime = request.duration_seconds
    assert lifetime is not None  # the rest source's requests always have one
    issued = oauth.call_with_access_token(
        settings,
        deadline,
        lambda access_token: guest_token_contract.generate_guest_token(
            settings,
            access_token,
            guest_id=request.guest_id,
            duration_seconds=lifetime,
            scopes=request.scopes,
            deadline=deadline,
        ),
    )
    audit["genesysCorrelationId"] = issued.correlation_id
    verified = verify.verify_guest_token(
        settings,
        issued.token,
        guest_id=request.guest_id,
        scopes=request.scopes,
        lifetime_seconds=lifetime,
        deadline=deadline,
    )
    return GuestTokenResponse(
        token=issued.token,
        guestId=request.guest_id,
        scopes=list(verified.scopes),
        expiresIn=_seconds_until(verified.expires_at),
        expiresAt=_iso(verified.expires_at),
    )


def _from_webmessaging(
    settings: Settings, request: GuestTokenRequest, origin: str, deadline: Deadline, audit: dict[str, Any]
) -> GuestTokenResponse:
    deployment = active_deployment(settings, origin, deadline)
    return webmessaging_session(settings, deployment, request.guest_id, origin, deadline, audit)


def active_deployment(settings: Settings, origin: str, deadline: Deadline) -> rest.Deployment:
    """The web deployment (webmessaging), cached, when it is Active; DeploymentUnavailable otherwise."""
    deployment_id = settings.deployment_id
    assert deployment_id is not None  # settings refuse the webmessaging source without one
    if not (origin.isascii() and origin.isprintable()):
        # Sent on as the socket's Origin header, which must be ASCII: a caller's mistake, not an outage.
        raise OriginNotAllowed(log_detail="the Origin header is not printable ASCII")
    deployment = _deployment(settings, deployment_id, deadline)
    if deployment.status is not None and deployment.status != ACTIVE:
        raise DeploymentUnavailable(
            log_detail=f"web deployment {deployment_id} is {deployment.status[:30]}, not {ACTIVE}",
            genesys_correlation_id=deployment.correlation_id,
            retry_after=_seconds_until_reread(),
        )
    return deployment


def webmessaging_session(  # noqa: PLR0917
    settings: Settings,
    deployment: rest.Deployment,
    guest_id: str,
    origin: str,
    deadline: Deadline,
    audit: dict[str, Any],
    auth_jwt: str | None = None,
) -> GuestTokenResponse:
    """The guest's session on ``deployment`` and its verified JWT; with ``auth_jwt`` (a signed-in customer's)
    the session is configured with configureAuthenticatedSession."""
    deployment_id = deployment.id
    try:
        session = guest_api.open_session(
            settings.webmessaging_base_url,
            deployment_id=deployment_id,
            session_token=guest_id,
            origin=origin,
            deadline=deadline,
            auth_jwt=auth_jwt,
        )
    except SessionRefused as refused:
        # A hint for the operator, from our own reading of allowedDomains (Genesys' rule is not public).
        verdict = "appear to admit" if allows_origin(deployment, origin) else "appear to leave out"
        refused.log_detail = (
            f"{refused.log_detail}; the deployment's allowed domains {verdict} origin "
            f"{observability.bounded(origin)!r} by exact host or *. wildcard"
        )
        raise
    # The session's own: a cached deployment's id names a call another request made.
    audit["genesysCorrelationId"] = session.correlation_id
    if session.session_token != guest_id:
        audit["guestRef"] = observability.guest_ref(session.session_token)
        observability.logger.append_keys(guestRef=audit["guestRef"])
    audit["newSession"] = session.new_session
    verified = verify.verify_session_jwt(settings, session.jwt, exp=session.exp, deadline=deadline)
    return GuestTokenResponse(
        token=session.jwt,
        guestId=session.session_token,
        expiresIn=_seconds_until(verified.expires_at),
        expiresAt=_iso(verified.expires_at),
        newSession=session.new_session,
        deploymentId=deployment_id,
        webSocketUrl=guest_api.websocket_url(settings.webmessaging_base_url, deployment_id),
    )


# ---- the web deployment, cached per container ------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    deployment: rest.Deployment
    fresh_until: float  # time.monotonic() value


_cached: _Cached | None = None


def _deployment(settings: Settings, deployment_id: str, deadline: Deadline) -> rest.Deployment:
    """The deployment, cached both ways: an Active one for DEPLOYMENT_CACHE_SECONDS, any other for the shorter
    DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS (a page with chat switched off must not spend Genesys' rate limit)."""
    global _cached
    if _cached is not None and _cached.deployment.id == deployment_id and time.monotonic() < _cached.fresh_until:
        return _cached.deployment
    deployment = oauth.call_with_access_token(
        settings, deadline, lambda access_token: rest.get_deployment(settings, access_token, deployment_id, deadline)
    )
    seconds = (
        settings.deployment_unavailable_cache_seconds
        if deployment.status is not None and deployment.status != ACTIVE
        else settings.deployment_cache_seconds
    )
    _cached = _Cached(deployment, time.monotonic() + seconds)
    return deployment


def _seconds_until_reread() -> int:
    """When the cached deployment is read again, in whole seconds: the widget's Retry-After (app.py keeps it
    within the range every 503 carries)."""
    left = _cached.fresh_until - time.monotonic() if _cached is not None else 0.0
    return math.ceil(left)


def _forget_deployment() -> None:
    global _cached
    _cached = None


def allows_origin(deployment: rest.Deployment, origin: str) -> bool:
    """Whether the deployment's allowed domains appear to admit the widget's origin: a hint for operators
    (log lines, devtools.check_genesys), never a reason to refuse a guest.

    Genesys documents allowedDomains only as "the list of domains approved to use this deployment" and checks
    the WebSocket's Origin itself; its matching rule is not public. This reading compares the origin's host
    with each entry's host, case-insensitively, and lets an entry ``*.example.com`` admit subdomains."""
    if deployment.allow_all_domains:
        return True
    host = _host(origin)
    if not host:
        return False
    for entry in deployment.allowed_domains:
        allowed = _host(entry.strip())
        if allowed.startswith("*."):
            if host.endswith(allowed[1:]):
                return True
        elif allowed and host == allowed:
            return True
    return False


def _host(value: str) -> str:
    text = value.lower()
    if "://" not in text:
        text = f"//{text}"
    try:
        return urlsplit(text).hostname or ""
    except ValueError:
        return ""


def _seconds_until(epoch_seconds: int) -> int:
    return max(0, epoch_seconds - int(time.time()))


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


def reset() -> None:
    """For tests (and a restored snapshot): forget the cached deployment."""
    _forget_deployment()
