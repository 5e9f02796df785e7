"""The Genesys OAuth access token, cached at module level so warm invocations reuse it.

Refreshed REFRESH_MARGIN_SECONDS before it expires; dropped and fetched again once when the API answers 401
(revoked or expired early). When Genesys rejects the client credentials, the secret is read again bypassing
its cache, once, because the usual cause is a rotation this container has not seen yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import credentials, observability
from .budget import Deadline
from .errors import AccessTokenRejected, InvalidClient
from .genesys import rest, retries
from .settings import Settings

REFRESH_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class _Cached:
    token: rest.AccessToken
    refresh_at: float  # time.monotonic() value


_cached: _Cached | None = None


def get_access_token(settings: Settings, deadline: Deadline) -> str:
    if _cached is not None and time.monotonic() < _cached.refresh_at:
        observability.oauth_access_token(cached=True)
        return _cached.token.value
    return _fetch(settings, deadline).value


def call_with_access_token[T](settings: Settings, deadline: Deadline, call: Callable[[str], T]) -> T:
    """Run ``call`` with a bearer token; on a 401 drop the token, fetch a new one and try once more."""
    try:
        return call(get_access_token(settings, deadline))
    except AccessTokenRejected as rejected:
        observability.audit(observability.ACCESS_TOKEN_REJECTED, genesysCorrelationId=rejected.genesys_correlation_id)
        invalidate()
        access_token = get_access_token(settings, deadline)
        with retries.single_attempt():  # the call's attempts were spent on the refused token
            return call(access_token)


def invalidate() -> None:
    global _cached
    _cached = None


def _fetch(settings: Settings, deadline: Deadline) -> rest.AccessToken:
    global _cached
    client = credentials.get_credentials(settings, deadline)
    try:
        token = rest.request_access_token(settings, client, deadline)
    except InvalidClient:
        rotated = credentials.get_credentials(settings, deadline, force_refresh=True)
        if rotated == client:
            raise InvalidClient(log_detail=_rejected(settings)) from None
        observability.audit(observability.CREDENTIALS_RELOADED, secretId=settings.credentials_secret_id)
        try:
            token = rest.request_access_token(settings, rotated, deadline)
        except InvalidClient:
            raise InvalidClient(log_detail=_rejected(settings)) from None
    observability.oauth_access_token(cached=False)
    margin = min(REFRESH_MARGIN_SECONDS, token.expires_in // 2)
    _cached = _Cached(token=token, refresh_at=time.monotonic() + token.expires_in - margin)
    return token


def _rejected(settings: Settings) -> str:
    return (
        f"Genesys rejected the OAuth client credentials in secret {settings.credentials_secret_id} "
        "(invalid_client): check clientId/clientSecret and that the OAuth client uses the Client Credentials grant"
    )


def reset() -> None:
    """For tests: forget the cached access token."""
    invalidate()
