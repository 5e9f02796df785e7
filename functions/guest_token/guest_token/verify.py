"""Checks the token Genesys returned before it is handed to a browser: what can be verified, and no more.

- ``webmessaging`` without GENESYS_JWKS_URL: Genesys documents the session JWT only as ``JwtResponse {jwt,
  exp}``, its SDKs never decode it and it publishes no key for it, so the JWT is opaque: only the announced
  ``exp`` is checked (in the future, at most TOKEN_LIFETIME_CEILING_SECONDS away). pyjwt is not loaded.
- ``webmessaging`` with GENESYS_JWKS_URL (an operator's opt-in): the JWT is verified in full, as below, and its
  ``exp`` claim must equal the announced one.
- Every verified JWT: an asymmetric algorithm (never ``none`` or HMAC), a numeric ``exp`` in the future and at
  most TOKEN_LIFETIME_CEILING_SECONDS away, ``nbf`` (when present) not in the future, one CLOCK_LEEWAY; the
  signature when GENESYS_JWKS_URL is set (pyjwt's PyJWKClient, keys cached per container).
- ``rest`` (the tutorial's contract), verified always: ``sub`` equal to the guest id and a ``scope`` claim (a
  list or a space-separated string) that covers every requested scope.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .budget import Deadline
from .errors import TokenVerificationFailed, UpstreamTimeout, UpstreamUnavailable
from .observability import logger
from .settings import TOKEN_LIFETIME_CEILING_SECONDS, Settings

if TYPE_CHECKING:
    import jwt
    from jwt.types import Options

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 2
# Clock difference tolerated between Genesys and Lambda, for exp and nbf alike, with or without signatures.
CLOCK_LEEWAY_SECONDS = 30


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
        "GENESYS_JWKS_URL is not set: guest tokens' signatures are not checked (webmessaging: the session JWT is "
        "handed out as Genesys answered it, checked for its announced exp only)",
        extra={"event": "token_signature_unchecked"},
    )


def verify_guest_token(
    settings: Settings,
    token: str,
    *,
    guest_id: str,
    scopes: tuple[str, ...],
    lifetime_seconds: int,
    deadline: Deadline,
) -> VerifiedToken:
    """The ``rest`` source's token: sub is the guest, scope covers the request, and it lives no longer than
    the lifetime asked for (MAX_TOKEN_LIFETIME_SECONDS would be a control on paper otherwise)."""
    claims = _claims(settings, token, deadline, required=["exp", "sub"])
    if _expiry(claims) > time.time() + lifetime_seconds + CLOCK_LEEWAY_SECONDS:
        raise TokenVerificationFailed(log_detail=f"token lives longer than the {lifetime_seconds} s asked for")
    if str(claims["sub"]).lower() != guest_id.lower():
        raise TokenVerificationFailed(log_detail="token sub is not the requested guest id")
    granted = _scopes(claims.get("scope"))
    missing = [scope for scope in scopes if scope not in granted]
    if missing:
        raise TokenVerificationFailed(log_detail=f"token lacks requested scopes: {', '.join(missing)}")
    return VerifiedToken(expires_at=_expiry(claims), scopes=scopes)


def verify_session_jwt(settings: Settings, token: str, *, exp: int, deadline: Deadline) -> VerifiedToken:
    """The ``webmessaging`` source's JWT: opaque without a JWKS (the announced exp only); with one, verified in
    full and its exp claim the one getJwt announced."""
    if not settings.jwks_url:
        _warn_claims_only()
        _check_expiry(exp)
        return VerifiedToken(expires_at=exp, scopes=())
    claims = _claims(settings, token, deadline, required=["exp"])
    expires_at = _expiry(claims)
    if expires_at != exp:
        raise TokenVerificationFailed(log_detail="the JWT's exp differs from the exp Genesys announced with it")
    return VerifiedToken(expires_at=expires_at, scopes=())


def _claims(settings: Settings, token: str, deadline: Deadline, *, required: list[str]) -> dict[str, Any]:
    # Imported by the first token to check, not with the handler: a container answering a preflight or a
    # refused request never needs pyjwt, nor cryptography, which pyjwt loads whenever it is installed (about
    # 50 ms; it is, with SignatureLayer, only when GENESYS_JWKS_URL is set).
    import jwt  # noqa: PLC0415

    # iat is not checked: Genesys' clock may be ahead of ours, and exp and nbf say all that matters.
    options: Options = {"require": required, "verify_iat": False, "verify_aud": False}
    try:
        if settings.jwks_url:
            _check_algorithm(jwt.get_unverified_header(token))
            key: Any = _signing_key(_jwks_client(settings.jwks_url), token, deadline)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=ALGORITHMS, options=options, leeway=CLOCK_LEEWAY_SECONDS
            )
        else:
            _warn_claims_only()
            # One decode gives the header with the claims: pyjwt checks every base64url character in Python,
            # so decoding twice cost a tenth of the warm path.
            decoded = jwt.decode_complete(
                token,
                algorithms=ALGORITHMS,
                options={**options, "verify_signature": False, "verify_exp": True, "verify_nbf": True},
                leeway=CLOCK_LEEWAY_SECONDS,
            )
            _check_algorithm(decoded["header"])
            claims = decoded["payload"]
    except jwt.PyJWKClientConnectionError as exc:
        cause = exc.__cause__
        if isinstance(cause, TimeoutError) or isinstance(getattr(cause, "reason", None), TimeoutError):
            raise UpstreamTimeout(log_detail=f"the JWKS at {settings.jwks_url} did not answer in time") from None
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
    except (TypeError, ValueError) as exc:
        # A key of one family against a header naming another (ES256 against an RSA key), odd claim types.
        raise TokenVerificationFailed(log_detail=f"token rejected: {type(exc).__name__}") from None
    return claims


def _expiry(claims: dict[str, Any]) -> int:
    exp, nbf = claims["exp"], claims.get("nbf")
    # pyjwt accepts any number, and numbers as text for nbf.
    if not _is_number(exp):
        raise TokenVerificationFailed(log_detail="token exp is not a number")
    _check_expiry(exp)
    if nbf is not None and not _is_number(nbf):
        raise TokenVerificationFailed(log_detail="token nbf is not a number")
    return int(exp)


def _check_expiry(exp: float) -> None:
    # The leeway is for a clock ahead of ours (nbf), not for handing out a token that has already expired.
    now = time.time()
    if exp <= now:
        raise TokenVerificationFailed(log_detail="token is already expired")
    if exp > now + TOKEN_LIFETIME_CEILING_SECONDS:
        raise TokenVerificationFailed(log_detail="token exp is further away than any Genesys guest token lives")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _signing_key(client: jwt.PyJWKClient, token: str, deadline: Deadline) -> Any:
    """The token's signing key from the JWKS (cached by pyjwt; fetched on a miss or an unknown kid).

    urllib's timeout bounds the connect and each read, not the fetch as a whole, so the fetch runs on a worker
    and is waited for only as long as the request has left."""
    left = deadline.check("fetching the JWKS")
    client.timeout = min(JWKS_TIMEOUT_SECONDS, left)
    future = _jwks_workers().submit(client.get_signing_key_from_jwt, token)
    try:
        return future.result(timeout=left).key
    except concurrent.futures.TimeoutError:
        raise UpstreamTimeout(log_detail="the JWKS did not answer in the time left") from None


@functools.cache
def _jwks_workers() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="jwks")


def _check_algorithm(header: dict[str, Any]) -> None:
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenVerificationFailed(log_detail=f"token algorithm {str(algorithm)[:20]!r} is not accepted")


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
