"""Signed-in customers (authenticated web messaging): the third kind of session, beside the two sources.

- Sign-in: the web deployment must be Active (as for any guest), then Genesys exchanges the company's identity
  provider's authorization code for an auth JWT and a refresh token, then the guest's session is configured
  with configureAuthenticatedSession and its JWT verified, exactly as sources.py does for a guest.
- Refresh: the refresh token (from the cookie) for a new auth JWT, then the same session steps.
- Sign-out: the refresh token for a current auth JWT, then Genesys revokes the sign-in.

The refresh token is handed back to app.py only to be sealed into the cookie (refresh_cookie.py); the auth JWT
goes to the widget, which needs it for its own socket. Every one of these values is registered as the request's
secret, so that no log line carries it, whatever Genesys echoes.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import observability, sources
from .budget import Deadline
from .errors import NotSignedIn, ServiceError
from .genesys import rest, web_deployments_token
from .models import AuthenticatedSessionBody, AuthenticatedSessionResponse
from .refresh_cookie import Sealed
from .settings import Settings


@dataclass(frozen=True)
class SignedIn:
    answer: AuthenticatedSessionResponse
    refresh_token: str = field(repr=False)


def sign_in(
    settings: Settings, body: AuthenticatedSessionBody, origin: str, deadline: Deadline, audit: dict[str, Any]
) -> SignedIn:
    observability.add_request_secrets(
        {body.code: "[authorization code]", body.codeVerifier: "[code verifier]", body.nonce: "[nonce]"}
    )
    guest_id = _guest(body.guestId, audit)
    deployment = sources.active_deployment(settings, origin, deadline)
    tokens = web_deployments_token.exchange_code(
        settings,
        deployment_id=deployment.id,
        code=body.code,
        redirect_uri=body.redirectUri,
        code_verifier=body.codeVerifier,
        nonce=body.nonce,
        deadline=deadline,
    )
    assert tokens.refresh_token is not None  # the exchange refuses an answer without one
    try:
        session = _session(settings, deployment, guest_id, origin, deadline, audit, tokens)
    except ServiceError:
        # Genesys has spent the code, and no cookie will hold the refresh token: revoke the sign-in rather than
        # leave it live with no holder (best effort, in the time left). The customer signs in again.
        with contextlib.suppress(ServiceError):
            web_deployments_token.revoke(settings, auth_jwt=tokens.jwt, deadline=deadline)
        raise
    return SignedIn(session, tokens.refresh_token)


def refresh(  # noqa: PLR0917
    settings: Settings, sealed: Sealed, guest_id: str | None, origin: str, deadline: Deadline, audit: dict[str, Any]
) -> SignedIn:
    """``guest_id``: the chat the widget holds, else the one sealed with the cookie, else a new one."""
    observability.add_request_secrets({sealed.refresh_token: "[refresh token]"})
    chosen = _guest(guest_id or sealed.guest_id, audit, new=guest_id is None and sealed.guest_id is None)
    deployment = sources.active_deployment(settings, origin, deadline)
    tokens = web_deployments_token.refresh_jwt(
        settings, deployment_id=deployment.id, refresh_token=sealed.refresh_token, deadline=deadline
    )
    return SignedIn(_session(settings, deployment, chosen, origin, deadline, audit, tokens), sealed.refresh_token)


def sign_out(settings: Settings, sealed: Sealed, deadline: Deadline) -> bool:
    """Revoke the sign-in; True when Genesys did, False when it was already over (the refresh token or the auth
    JWT refused)."""
    observability.add_request_secrets({sealed.refresh_token: "[refresh token]"})
    try:
        tokens = web_deployments_token.refresh_jwt(
            settings, deployment_id=sealed.deployment_id, refresh_token=sealed.refresh_token, deadline=deadline
        )
    except NotSignedIn:
        return False
    observability.add_request_secrets({tokens.jwt: "[auth JWT]"})
    return web_deployments_token.revoke(settings, auth_jwt=tokens.jwt, deadline=deadline)


def _guest(guest_id: str | None, audit: dict[str, Any], *, new: bool | None = None) -> str:
    chosen = guest_id or str(uuid.uuid4())
    observability.add_request_secrets({chosen: "[guest id]"})
    audit.update(guestRef=observability.guest_ref(chosen), newGuest=guest_id is None if new is None else new)
    observability.logger.append_keys(guestRef=audit["guestRef"])
    return chosen


def _session(  # noqa: PLR0917
    settings: Settings,
    deployment: rest.Deployment,
    guest_id: str,
    origin: str,
    deadline: Deadline,
    audit: dict[str, Any],
    tokens: web_deployments_token.AuthTokens,
) -> AuthenticatedSessionResponse:
    observability.add_request_secrets({tokens.jwt: "[auth JWT]"})
    session = sources.webmessaging_session(settings, deployment, guest_id, origin, deadline, audit, tokens.jwt)
    observability.add_request_secrets({session.token: "[guest JWT]", session.guestId: "[guest id]"})
    return AuthenticatedSessionResponse(
        **session.model_dump(exclude_none=True),
        authToken=tokens.jwt,
        authExpiresIn=web_deployments_token.seconds_left(tokens.jwt),
    )
