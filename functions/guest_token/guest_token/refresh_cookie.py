"""The signed-in customer's refresh cookie, ``guest_refresh``: the one module that seals, opens, sets and clears it.

The refresh token Genesys hands out at sign-in must never reach page JavaScript, and the service keeps no state:
so the browser holds it, sealed by the service, in an ``HttpOnly; Secure; SameSite=Strict`` cookie scoped to the
signed-in routes' path. Sealed with Fernet (AES-128-CBC and HMAC-SHA256, with its time of sealing) under the keys
of the secret AUTH_COOKIE_KEYS_SECRET_ID, ``{"keys": ["<Fernet key>", ...]}``: the first seals, every one opens
(MultiFernet), so a key is rotated by adding the new one, then putting it first, then dropping the old one.

What is sealed binds the refresh token to the deployment and the page's origin (and the guest's session token):
a cookie opens only for the origin and deployment it was sealed for, and only until AUTH_COOKIE_SECONDS after it
was sealed. Nothing of it is ever logged; a cookie that does not open says why in the log, never with its value.
cryptography is imported on first use (the layer the template attaches with CookieKeysSecretName).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import credentials
from .budget import Deadline
from .errors import ConfigurationError, NotSignedIn, SignedInElsewhere
from .settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

COOKIE_NAME = "guest_refresh"
# The signed-in routes' resource; the cookie's Path is the request's path up to and including it.
RESOURCE = "/authenticated-sessions"
# Browsers keep a cookie of at most 4096 bytes; a Cookie header holding more than a few of ours is not one.
MAX_COOKIE_CHARS = 4096
MAX_CANDIDATES = 8
# Keys in the secret: enough for a rotation with room to spare, few enough to try each on a bad cookie.
MAX_KEYS = 8


@dataclass(frozen=True)
class Sealed:
    """What the cookie carries: the refresh token, and what it is bound to."""

    refresh_token: str = field(repr=False)
    deployment_id: str
    origin: str
    guest_id: str | None = field(default=None, repr=False)  # the session token of the customer's chat


def keys(settings: Settings, deadline: Deadline) -> MultiFernet:
    """The keys of AUTH_COOKIE_KEYS_SECRET_ID (read through the credentials' cache); ConfigurationError when
    the secret is not ``{"keys": [<Fernet key>, ...]}`` (the error names the secret, never a key)."""
    secret_id = settings.auth_cookie_keys_secret_id
    assert secret_id is not None  # the routes answer 404 without it
    value: Any = credentials.read_json_secret(settings, secret_id, deadline)
    listed = value.get("keys") if isinstance(value, dict) else None
    if not (isinstance(listed, list) and 0 < len(listed) <= MAX_KEYS and all(isinstance(key, str) for key in listed)):
        raise ConfigurationError(
            log_detail=f'secret {secret_id} must be a JSON object {{"keys": [...]}} with 1 to {MAX_KEYS} Fernet keys'
        )
    try:
        return _multi_fernet(tuple(listed))
    except ValueError:
        raise ConfigurationError(
            log_detail=f"secret {secret_id} holds a key that is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


@functools.lru_cache(maxsize=4)
def _multi_fernet(listed: tuple[str, ...]) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet  # noqa: PLC0415

    return MultiFernet([Fernet(key) for key in listed])


def seal(fernet: MultiFernet, sealed: Sealed, *, now: int | None = None) -> str:
    """The cookie's value: ``sealed`` under the first key, stamped with ``now`` (the current time)."""
    payload = {"r": sealed.refresh_token, "d": sealed.deployment_id, "o": sealed.origin, "g": sealed.guest_id}
    data = json.dumps(payload, separators=(",", ":")).encode()
    return fernet.encrypt_at_time(data, int(time.time()) if now is None else now).decode("ascii")


def open_cookie(
    fernet: MultiFernet,
    cookie_headers: list[str],
    *,
    origin: str,
    deployment_id: str,
    max_age: int,
    now: int | None = None,
) -> Sealed:
    """What the request's cookie carries, when one opens with these keys, for this origin and deployment, and
    was sealed at most ``max_age`` seconds before ``now``; NotSignedIn (saying why, for the log) otherwise."""
    from cryptography.fernet import InvalidToken  # noqa: PLC0415

    candidates = _values(cookie_headers)
    if not candidates:
        raise NotSignedIn(log_detail="no refresh cookie")
    current = int(time.time()) if now is None else now
    reason = "the refresh cookie does not open (tampered, another key, or older than AUTH_COOKIE_SECONDS)"
    opened: list[Sealed] = []
    for candidate in candidates:
        try:
            data = fernet.decrypt_at_time(candidate.encode("ascii"), max_age, current)
        except (InvalidToken, UnicodeEncodeError):
            continue
        sealed = _parsed(data)
        if sealed is None:
            reason = "the refresh cookie opened but does not hold what the service seals"
        else:
            opened.append(sealed)
    mine = [sealed for sealed in opened if (sealed.origin, sealed.deployment_id) == (origin, deployment_id)]
    if len({sealed.refresh_token for sealed in mine}) > 1:
        # Two sign-ins for this page: one was set from elsewhere (a sibling subdomain can set a cookie the
        # browser sends here first). Taking either could sign the customer in as somebody else.
        raise NotSignedIn(log_detail="more than one refresh cookie opens for this page: refusing them all")
    if mine:
        return mine[0]
    if opened:
        raise SignedInElsewhere(log_detail="the refresh cookie was sealed for another origin or deployment")
    raise NotSignedIn(log_detail=reason)


def _parsed(data: bytes) -> Sealed | None:
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    refresh_token, deployment_id, origin, guest_id = (payload.get(key) for key in ("r", "d", "o", "g"))
    if not (isinstance(refresh_token, str) and refresh_token and isinstance(deployment_id, str)):
        return None
    if not isinstance(origin, str) or not (guest_id is None or isinstance(guest_id, str)):
        return None
    return Sealed(refresh_token, deployment_id, origin, guest_id)


def from_headers(headers: Any, multi_value_headers: Any) -> list[str]:
    """The request's Cookie header values, whatever their case, from API Gateway's event (its multiValueHeaders
    keep every value when a client sends the header more than once)."""
    for source in (multi_value_headers, headers):
        if isinstance(source, dict):
            values = [value for name, value in source.items() if isinstance(name, str) and name.lower() == "cookie"]
            flat = [item for value in values for item in (value if isinstance(value, list) else [value])]
            found = [item for item in flat if isinstance(item, str)]
            if found:
                return found
    return []


def _values(cookie_headers: list[str]) -> list[str]:
    """The values of every ``guest_refresh`` cookie the request carries (a browser may send several, from
    different paths), each at most a cookie's size. The name is matched exactly (RFC 6265 trims only spaces
    and tabs): a name padded with other white space is another cookie. More than MAX_CANDIDATES is refused
    whole, since reading only the first few would let planted ones push the page's own out of sight."""
    found = []
    for header in cookie_headers:
        for pair in header.split(";"):
            name, separator, value = pair.strip(" \t").partition("=")
            value = value.strip(" \t")
            if separator and name.strip(" \t") == COOKIE_NAME and 0 < len(value) <= MAX_COOKIE_CHARS:
                found.append(value.strip('"'))
    if len(found) > MAX_CANDIDATES:
        raise NotSignedIn(log_detail=f"more than {MAX_CANDIDATES} refresh cookies: refusing them all")
    return found


def path_for(request_path: str) -> str:
    """The cookie's Path: the path the browser used, up to and including the resource (``/v1/authenticated-
    sessions`` on API Gateway's own URL, ``/chat/authenticated-sessions`` behind a custom domain's mapping), so
    that the browser sends it to the refresh and sign-out routes and nowhere else."""
    index = request_path.find(RESOURCE)
    return request_path[: index + len(RESOURCE)] if index >= 0 else RESOURCE


def set_cookie(value: str, *, path: str, max_age: int) -> str:
    """The Set-Cookie header value that hands the browser the sealed cookie."""
    return f"{COOKIE_NAME}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"


def clear_cookie(*, path: str) -> str:
    """The Set-Cookie header value that makes the browser forget the cookie."""
    return f"{COOKIE_NAME}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"


def reset() -> None:
    """For tests: forget the keys built."""
    _multi_fernet.cache_clear()
