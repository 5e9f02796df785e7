"""Genesys' web deployments token calls for signed-in customers (authenticated web messaging), and nothing else.

All three on the API host, "Requires NO permissions" (no OAuth access token); docs/genesys-calls.md names the
public source of each fact:

- ``POST /api/v2/webdeployments/token/oauthcodegrantjwtexchange`` ``{"deploymentId", "oauth": {"code",
  "redirectUri", "codeVerifier"?, "nonce"?}}``: the company's identity provider's authorization code for an auth
  JWT and a refresh token, ``{"jwt", "refreshToken"}``.
- ``POST /api/v2/webdeployments/token/refresh`` ``{"refreshToken", "deploymentId"}``: a new auth JWT, ``{"jwt"}``.
- ``DELETE /api/v2/webdeployments/token/revoke`` with ``Authorization: Bearer <auth JWT>``: the sign-out.

Which 4xx Genesys answers for a refused code or refresh token is not public: any 4xx but 429 is a refusal
(SignInFailed, NotSignedIn). 429 and 5xx are retried and passed on as every other Genesys call's (rest.send).
The code, verifier, nonce, refresh token and auth JWT are the request's secrets: Genesys' error text never brings
them to the log.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..budget import Deadline
from ..errors import NotSignedIn, SignInFailed, UpstreamError
from ..settings import Settings
from . import rest

EXCHANGE_PATH = "/api/v2/webdeployments/token/oauthcodegrantjwtexchange"
REFRESH_PATH = "/api/v2/webdeployments/token/refresh"
REVOKE_PATH = "/api/v2/webdeployments/token/revoke"
CALL_EXCHANGE, CALL_REFRESH, CALL_REVOKE = "auth-exchange", "auth-refresh", "auth-revoke"
# An auth JWT goes back to Genesys as a bearer and to the widget; far above any JWT Genesys issues.
MAX_AUTH_JWT_CHARS = 8192
# The refresh token travels sealed in a cookie, which browsers keep up to 4096 bytes with its name and
# attributes: Fernet's sealing makes it about a third longer. Its format is not public (unverified).
MAX_REFRESH_TOKEN_CHARS = 2400
# An auth JWT's exp further away than this is not read as one (the widget is then told no lifetime).
MAX_AUTH_JWT_SECONDS = 7 * 86400


@dataclass(frozen=True)
class AuthTokens:
    jwt: str = field(repr=False)
    refresh_token: str | None = field(repr=False)  # None from the refresh call
    correlation_id: str | None


def exchange_code(
    settings: Settings,
    *,
    deployment_id: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    nonce: str | None,
    deadline: Deadline,
) -> AuthTokens:
    """The auth JWT and refresh token for an authorization code; SignInFailed when Genesys refuses the code."""
    oauth: dict[str, str] = {"code": code, "redirectUri": redirect_uri}
    secrets = {code: "[authorization code]"}
    if code_verifier is not None:
        oauth["codeVerifier"] = code_verifier
        secrets[code_verifier] = "[code verifier]"
    if nonce is not None:
        oauth["nonce"] = nonce
        secrets[nonce] = "[nonce]"
    payload = {"deploymentId": deployment_id, "oauth": oauth}
    # The code works once: an exchange Genesys may have acted on (a 5xx, a timeout) is not sent again.
    answer = _post(settings, CALL_EXCHANGE, EXCHANGE_PATH, payload, secrets, deadline, single_use=True)
    if answer.status != 200:
        raise _refused(CALL_EXCHANGE, answer, SignInFailed)
    data = answer.json()
    refresh_token = data.get("refreshToken")
    if not (isinstance(refresh_token, str) and 0 < len(refresh_token) <= MAX_REFRESH_TOKEN_CHARS):
        raise UpstreamError(
            log_detail=f"Genesys {CALL_EXCHANGE} answered 200 without a refreshToken of at most "
            f"{MAX_REFRESH_TOKEN_CHARS} characters",
            genesys_correlation_id=answer.correlation_id,
        )
    if not refresh_token.isascii() or not refresh_token.isprintable():
        raise UpstreamError(
            log_detail=f"Genesys {CALL_EXCHANGE} answered a refreshToken that is not printable ASCII",
            genesys_correlation_id=answer.correlation_id,
        )
    return AuthTokens(_auth_jwt(CALL_EXCHANGE, answer, data), refresh_token, answer.correlation_id)


def refresh_jwt(settings: Settings, *, deployment_id: str, refresh_token: str, deadline: Deadline) -> AuthTokens:
    """A new auth JWT for the refresh token; NotSignedIn when Genesys refuses it (expired, revoked)."""
    # The platform SDK's model requires both fields; the transport SDK sends only the refresh token.
    payload = {"refreshToken": refresh_token, "deploymentId": deployment_id}
    answer = _post(settings, CALL_REFRESH, REFRESH_PATH, payload, {refresh_token: "[refresh token]"}, deadline)
    if answer.status != 200:
        raise _refused(CALL_REFRESH, answer, NotSignedIn)
    return AuthTokens(_auth_jwt(CALL_REFRESH, answer, answer.json()), None, answer.correlation_id)


def revoke(settings: Settings, *, auth_jwt: str, deadline: Deadline) -> bool:
    """Revoke the sign-in of ``auth_jwt``: True when Genesys did, False when it says the JWT is no longer valid
    (401: already revoked or expired, nothing left to do)."""
    answer = rest.send(
        CALL_REVOKE,
        "DELETE",
        f"{settings.api_base_url}{REVOKE_PATH}",
        headers={"Authorization": f"Bearer {auth_jwt}"},
        body=None,
        deadline=deadline,
    )
    if 200 <= answer.status < 300:
        return True
    if answer.status == 401:
        return False
    raise rest.failure(CALL_REVOKE, answer)


def seconds_left(auth_jwt: str) -> int | None:
    """Seconds until the auth JWT's ``exp``, when its payload can be read and the value makes sense; None
    otherwise (Genesys documents no claims: the auth JWT is opaque to the service, which never trusts it)."""
    parts = auth_jwt.split(".")
    if len(parts) != 3:
        return None
    try:
        payload: Any = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, float) and math.isfinite(exp):
        exp = math.floor(exp)
    # In integers: a 400-digit exp is valid JSON, but no float (math.isfinite would raise OverflowError).
    if not isinstance(exp, int) or isinstance(exp, bool):
        return None
    left = exp - int(time.time())
    return left if 0 < left <= MAX_AUTH_JWT_SECONDS else None


def _post(  # noqa: PLR0917
    settings: Settings,
    call: str,
    path: str,
    payload: dict[str, Any],
    secrets: dict[str, str],
    deadline: Deadline,
    *,
    single_use: bool = False,
) -> rest.Answer:
    """A JSON POST to the API host without an access token (these calls "require NO permissions")."""
    return rest.send(
        call,
        "POST",
        f"{settings.api_base_url}{path}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(payload),
        deadline=deadline,
        secrets=secrets,
        single_use=single_use,
    )


def _auth_jwt(call: str, answer: rest.Answer, data: dict[str, Any]) -> str:
    value = data.get("jwt")
    if not rest.is_bearer_token(value, MAX_AUTH_JWT_CHARS):
        raise UpstreamError(
            log_detail=f"Genesys {call} answered 200 without a jwt that can be sent as a bearer token",
            genesys_correlation_id=answer.correlation_id,
        )
    return value


def _refused(call: str, answer: rest.Answer, refusal: type[SignInFailed] | type[NotSignedIn]) -> Exception:
    """A 4xx but 429 (which send retried and raised itself) is Genesys refusing the code or refresh token."""
    error = rest.failure(call, answer)
    if 400 <= answer.status < 500:
        return refusal(log_detail=error.log_detail, genesys_correlation_id=answer.correlation_id)
    return error
