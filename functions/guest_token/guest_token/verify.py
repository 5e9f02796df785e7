"""Checks the token Genesys returned before it is handed to a browser: what can be verified, and no more.

- ``webmessaging`` without GENESYS_JWKS_URL: Genesys documents the session JWT only as ``JwtResponse {jwt,
  exp}``, its SDKs never decode it and it publishes no key for it, so the JWT is opaque: only the announced
  ``exp`` is checked (in the future, at most TOKEN_LIFETIME_CEILING_SECONDS away). pyjwt is not loaded.
- ``webmessaging`` with GENESYS_JWKS_URL (an operator's opt-in): the JWT is verified in full, as below, and its
  ``exp`` claim must equal the announced one.
- Every verified JWT: an asymmetric algorithm (never ``none`` or HMAC), a numeric ``exp`` in the future and at
  most TOKEN_LIFETIME_CEILING_SECONDS away, ``nbf`` (when present) not in the future, one CLOCK_LEEWAY; the
  signature when GENESYS_JWKS_URL is set, against a key of that JWKS (see _signing_key).
- ``rest`` (the tutorial's contract), verified always: ``sub`` equal to the guest id and a ``scope`` claim (a
  list or a space-separated string) that covers every requested scope.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import observability
from .budget import Deadline
from .errors import TokenVerificationFailed, UpstreamUnavailable
from .genesys import rest
from .observability import logger
from .settings import TOKEN_LIFETIME_CEILING_SECONDS, Settings

if TYPE_CHECKING:
    from jwt.types import Options

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
# JWS algorithm names registered with IANA (RFC 7518, RFC 8037, RFC 8812): the ones a log line may name.
REGISTERED_ALGORITHMS = frozenset({*ALGORITHMS, "HS256", "HS384", "HS512", "none", "EdDSA", "ES256K"})
JWKS_CACHE_SECONDS = 300
# A kid the keys in hand lack fetches the JWKS again (Genesys may have rotated its keys), unless those keys are
# younger than this: a stream of tokens with made-up kids cannot make every request fetch.
JWKS_REFETCH_SECONDS = 5
# Clock difference tolerated between Genesys and Lambda, for exp and nbf alike, with or without signatures.
CLOCK_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class VerifiedToken:
    expires_at: int  # the token's exp, seconds since the epoch
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, Any]  # kid -> the public key of a signing JWK of the JWKS
    fetched_at: float  # time.monotonic()


# GENESYS_JWKS_URL -> its keys, per container. An entry is replaced whole and nothing is locked: no request
# ever waits for another one's fetch.
_key_sets: dict[str, _KeySet] = {}


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
            header = jwt.get_unverified_header(token)
            _check_algorithm(header)
            key = _signing_key(settings.jwks_url, header, deadline)
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
    except jwt.ExpiredSignatureError:
        raise TokenVerificationFailed(log_detail="token is already expired") from None
    except jwt.DecodeError as exc:
        if not isinstance(exc, jwt.InvalidSignatureError):  # the one DecodeError of a well-formed token
            raise TokenVerificationFailed(log_detail="Genesys returned a token that is not a JWT") from None
        raise TokenVerificationFailed(log_detail=_rejected(exc)) from None
    except jwt.PyJWTError as exc:
        # InvalidTokenError and its kind; InvalidKeyError: a JWK whose key no accepted algorithm can use.
        raise TokenVerificationFailed(log_detail=_rejected(exc)) from None
    except (TypeError, ValueError) as exc:
        # A key of one family against a header naming another (ES256 against an RSA key), odd claim types.
        raise TokenVerificationFailed(log_detail=f"token rejected: {type(exc).__name__}") from None
    return claims


def _rejected(exc: Exception) -> str:
    # pyjwt's messages may quote the token (its kid, say): bounded like any value from outside.
    return f"token rejected: {type(exc).__name__}: {observability.redacted(str(exc))}"


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


def _signing_key(url: str, header: dict[str, Any], deadline: Deadline) -> Any:
    """The public key the token's kid names in the JWKS at ``url``: from the keys in hand while they are younger
    than JWKS_CACHE_SECONDS, else fetched. A kid the keys in hand lack fetches them again once (Genesys may have
    rotated its keys), unless they are younger than JWKS_REFETCH_SECONDS. So a request fetches the JWKS at
    most once, on its own thread and within its own deadline (see _fetch_key_set)."""
    kid = header.get("kid")  # pyjwt has checked that a kid, when present, is a string
    if not kid:
        raise TokenVerificationFailed(log_detail="token signing key not usable: the token names no kid")
    cached = _key_sets.get(url)
    if cached is not None:
        age = time.monotonic() - cached.fetched_at
        if age < JWKS_CACHE_SECONDS and (kid in cached.keys or age < JWKS_REFETCH_SECONDS):
            return _key_for(cached, kid)
    fetched = _fetch_key_set(url, deadline)
    _key_sets[url] = fetched
    return _key_for(fetched, kid)


def _key_for(key_set: _KeySet, kid: str) -> Any:
    key = key_set.keys.get(kid)
    if key is None:
        # The kid comes from the token and may hold anything (a secret, 600 KB once): logged by reference only,
        # beside the JWKS's own kids (bounded), which the operator can compare it with.
        reference = hashlib.sha256(kid.encode("utf-8", "replace")).hexdigest()[:12]
        kids = observability.bounded(", ".join(sorted(key_set.keys)))
        raise TokenVerificationFailed(
            log_detail=f"token signing key not usable: the JWKS (kids {kids}) has none for the token's kid "
            f"({len(kid)} characters, sha256 {reference}...)"
        )
    return key


def _fetch_key_set(url: str, deadline: Deadline) -> _KeySet:
    """The JWKS's signing keys by kid (a JWK with ``use`` "sig" or none, and a kid, as pyjwt's PyJWKClient
    takes them), fetched as every Genesys answer is: on the request's own thread, within its deadline (urllib3's
    total timeout, the body read in chunks until then) and at most rest.MAX_ANSWER_BYTES (rest.get_once). A
    failed fetch is not cached: the next request tries again."""
    import jwt  # noqa: PLC0415

    answer = rest.get_once("jwks", url, deadline=deadline)
    if answer.status != 200:
        raise UpstreamUnavailable(
            log_detail=f"cannot fetch the JWKS from {url}: it answered {answer.status}",
            genesys_correlation_id=answer.correlation_id,
        )
    try:
        document = json.loads(answer.data)
        # from_dict wants a JSON object; anything else has no "keys" either.
        key_set = jwt.PyJWKSet.from_dict(document if isinstance(document, dict) else {})
    except (jwt.PyJWTError, ValueError, TypeError, LookupError, RecursionError) as exc:
        # Not JSON, no keys array, or no key pyjwt can use (it skips the unusable ones, and says so if none is).
        raise TokenVerificationFailed(
            log_detail=f"token signing key not usable: the JWKS at {url} holds no usable key set "
            f"({type(exc).__name__})",
            genesys_correlation_id=answer.correlation_id,
        ) from None
    keys: dict[str, Any] = {}
    for jwk in key_set.keys:
        if jwk.public_key_use in ("sig", None) and isinstance(jwk.key_id, str) and jwk.key_id:
            keys.setdefault(jwk.key_id, jwk.key)
    return _KeySet(keys=keys, fetched_at=time.monotonic())


def _check_algorithm(header: dict[str, Any]) -> None:
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        # From the token: named only when it is a registered algorithm (a hostile header may hold a secret).
        shown = repr(algorithm) if algorithm in REGISTERED_ALGORITHMS else "an unregistered one"
        raise TokenVerificationFailed(log_detail=f"token algorithm {shown} is not accepted")


def _scopes(claim: Any) -> set[str]:
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list):
        return {item for item in claim if isinstance(item, str)}
    return set()


def reset() -> None:
    """For tests and SnapStart: forget the JWKS keys and the once-per-container warning."""
    _key_sets.clear()
    _warn_claims_only.cache_clear()
