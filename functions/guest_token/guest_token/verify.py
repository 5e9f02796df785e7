"""Checks the guest token Genesys returned before it is handed to a browser.

Claims always: a JWT with an accepted algorithm (never ``none``), ``exp`` in the future, ``sub`` equal to the
guest id, and a ``scope`` claim (a list or a space-separated string) that covers every requested scope.
The signature too when GENESYS_JWKS_URL is set (pyjwt's PyJWKClient, keys cached per container).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .budget import Deadline
from .errors import TokenVerificationFailed, UpstreamUnavailable
from .observability import logger
from .settings import Settings

if TYPE_CHECKING:
    import jwt
    from jwt.types import Options

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class VerifiedToken:
    expires_at: int  # the token's exp, seconds since the epoch
    scopes: tuple[str, ...]


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    import jwt  # noqa: PLC0415

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)


@functools.cache
def _warn_claims_only() -> None:
    # Once per container: every cold start says plainly that signatures are not being checked.
    logger.warning(
        "GENESYS_JWKS_URL is not set: guest tokens are checked for claims only, not for their signature",
        extra={"event": "token_signature_unchecked"},
    )


def verify_guest_token(
    settings: Settings, token: str, *, guest_id: str, scopes: tuple[str, ...], deadline: Deadline
) -> VerifiedToken:
    # Imported by the first token to check, not with the handler: a container answering a preflight or a
    # refused request never needs pyjwt, nor cryptography, which pyjwt loads whenever it is installed (about
    # 50 ms; it is, with SignatureLayer, only when GENESYS_JWKS_URL is set).
    import jwt  # noqa: PLC0415

    # iat is not checked: a few seconds of clock skew at Genesys must not fail a good token.
    options: Options = {"require": ["exp", "sub"], "verify_iat": False, "verify_aud": False}
    try:
        if settings.jwks_url:
            _check_algorithm(jwt.get_unverified_header(token))
            deadline.check("fetching the JWKS")
            key: Any = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, options=options)
        else:
            _warn_claims_only()
            # One decode gives the header with the claims: pyjwt checks every base64url character in Python,
            # so decoding twice cost a tenth of the warm path.
            decoded = jwt.decode_complete(
                token, algorithms=ALGORITHMS, options={**options, "verify_signature": False, "verify_exp": True}
            )
            _check_algorithm(decoded["header"])
            claims = decoded["payload"]
    except jwt.PyJWKClientConnectionError:
        raise UpstreamUnavailable(log_detail=f"cannot fetch the JWKS from {settings.jwks_url}") from None
    except jwt.PyJWKClientError as exc:
        raise TokenVerificationFailed(log_detail=f"token signing key not usable: {exc}") from None
    except jwt.ExpiredSignatureError:
        raise TokenVerificationFailed(log_detail="token is already expired") from None
    except jwt.DecodeError as exc:
        if not isinstance(exc, jwt.InvalidSignatureError):  # the one DecodeError of a well-formed token
            raise TokenVerificationFailed(log_detail="Genesys returned a token that is not a JWT") from None
        raise TokenVerificationFailed(log_detail=f"token rejected: {type(exc).__name__}: {exc}") from None
    except jwt.InvalidTokenError as exc:
        raise TokenVerificationFailed(log_detail=f"token rejected: {type(exc).__name__}: {exc}") from None

    if str(claims["sub"]).lower() != guest_id.lower():
        raise TokenVerificationFailed(log_detail="token sub is not the requested guest id")
    granted = _scopes(claims.get("scope"))
    missing = [scope for scope in scopes if scope not in granted]
    if missing:
        raise TokenVerificationFailed(log_detail=f"token lacks requested scopes: {', '.join(missing)}")
    return VerifiedToken(expires_at=int(claims["exp"]), scopes=scopes)


def _check_algorithm(header: dict[str, Any]) -> None:
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenVerificationFailed(log_detail=f"token algorithm {algorithm!r} is not accepted")


def _scopes(claim: Any) -> set[str]:
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list):
        return {item for item in claim if isinstance(item, str)}
    return set()


def reset() -> None:
    """For tests: forget JWKS clients and the once-per-container warning."""
    _jwks_client.cache_clear()
    _warn_claims_only.cache_clear()
