"""A minimal OpenID provider: the company's identity provider that signed-in customers use, in the emulator.

Genesys' authenticated web messaging takes an OpenID Connect authorization code from the company's own
identity provider (the deployment's authentication integration) and exchanges it for an auth JWT. This module
is that identity provider; devtools/genesys_emulator.py serves it under ``{base_url}/oidc`` beside the Genesys
routes (its ``oidc_url``) and its web deployments token exchange redeems codes here, in-process, as Genesys
would redeem them at the real provider.

* ``GET /oidc/authorize?response_type=code&client_id=&redirect_uri=&state=&nonce=&code_challenge=
  &code_challenge_method=S256[&login_hint=]`` ("oidc-authorize"): with ``login_hint`` (tests) it answers ``302``
  to ``redirect_uri?code=…&state=…`` at once, signing in the customer of that name; without it, a small HTML
  page "Sign in to the emulator's identity provider" with a name field (default "Alex Example") whose button
  ``POST``s the same parameters back with ``login_hint`` (``POST /oidc/authorize`` is the same call as a form).
* ``POST /oidc/token`` ("oidc-token"), a form ``grant_type=authorization_code&code=&redirect_uri=
  [&code_verifier=][&client_id=]``: ``{"access_token", "token_type": "Bearer", "expires_in", "id_token",
  "scope"}``; the id_token is RS256 with the emulator's key (claims ``iss`` = ``oidc_url``, ``sub``, ``aud`` =
  the client id, ``iat``, ``exp``, ``auth_time``, ``name``, ``nonce`` when authorize had one).
* ``GET /oidc/jwks`` ("oidc-jwks"): the emulator's public key, the same set as ``/.well-known/jwks.json``.

Choices where OpenID Connect leaves room (pinned by tests/integration/test_emulator_signed_in.py):

* Codes are single-use and expire ``CODE_LIFETIME_SECONDS`` (60) after authorize. A code is used up by the
  first redemption that finds it, successful or not (a code shown with a wrong verifier may be stolen).
  Reusing a code is refused; tokens issued from its first use stay valid.
* PKCE: S256 only. ``code_challenge`` is optional at authorize (so a test can show a verifier for a code that
  had none); a ``code_challenge`` with another method (``plain``, or none given) is refused. At redemption a
  challenge without a verifier, a verifier without a challenge, a verifier that is not RFC 7636's 43-128
  unreserved characters, or one whose S256 differs from the challenge, is refused.
* ``client_id`` is optional (default ``DEMO_OIDC_CLIENT_ID``) and any value is accepted: it becomes the
  id_token's ``aud``; ``/oidc/token`` refuses a ``client_id`` other than authorize's. No client secret.
* A missing or unusable ``redirect_uri`` (not an absolute http(s) URL, or one with a fragment) is answered with
  a 400 page, never a redirect; other authorize errors redirect with ``error`` and ``error_description``
  (``unsupported_response_type``, ``invalid_request``), and ``state``.
* The customer: the name given (1 to ``MAX_NAME_CHARS`` characters, no control characters, trimmed) and a
  ``sub`` derived from it, stable across sign-ins and emulator restarts (a uuid5 of the name).
* Nothing here logs; messages for refusals say which check failed and never carry a code, verifier or token.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = [
    "AUTHORIZE_PATH",
    "CODE_LIFETIME_SECONDS",
    "DEFAULT_NAME",
    "DEMO_OIDC_CLIENT_ID",
    "ID_TOKEN_LIFETIME_SECONDS",
    "JWKS_PATH",
    "MAX_NAME_CHARS",
    "OIDC_PREFIX",
    "SIGN_IN_TITLE",
    "TOKEN_PATH",
    "OidcAnswer",
    "OidcGrant",
    "OidcProvider",
    "OidcUser",
    "pkce_challenge",
]

OIDC_PREFIX: Final = "/oidc"
AUTHORIZE_PATH: Final = OIDC_PREFIX + "/authorize"
TOKEN_PATH: Final = OIDC_PREFIX + "/token"
JWKS_PATH: Final = OIDC_PREFIX + "/jwks"

CODE_LIFETIME_SECONDS: Final = 60
ID_TOKEN_LIFETIME_SECONDS: Final = 300
DEFAULT_NAME: Final = "Alex Example"
DEMO_OIDC_CLIENT_ID: Final = "demo-oidc-client"
MAX_NAME_CHARS: Final = 100
SIGN_IN_TITLE: Final = "Sign in to the emulator's identity provider"

# RFC 7636: a verifier is 43-128 unreserved characters; an S256 challenge is 43 base64url characters.
_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE: Final = re.compile(r"[A-Za-z0-9\-_]{43}")
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SUB_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://genesys-emulator.invalid/oidc/users")
# Every answer of the provider carries codes, tokens or a sign-in form: no cache may keep one.
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The page has no scripts and loads nothing; form-action is left open (Chrome applies it to the redirect).
_PAGE_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
# The parameters the sign-in form carries back as hidden fields.
_AUTHORIZE_PARAMETERS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636's S256 challenge of ``verifier``: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OidcUser:
    """A signed-in customer: the name they gave and a ``sub`` stable for that name."""

    sub: str
    name: str

    @classmethod
    def named(cls, name: str) -> OidcUser:
        return cls(str(uuid.uuid5(_SUB_NAMESPACE, name)), name)


@dataclass(frozen=True)
class OidcAnswer:
    """An HTTP answer of the provider, for the emulator's server to write."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class OidcGrant:
    """What authorize remembers with a code."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    user: OidcUser
    expires_at: float
    auth_time: int
    used: bool = False


def _clean_name(raw: str) -> str | None:
    name = raw.strip()
    if not name or len(name) > MAX_NAME_CHARS or _CONTROL_CHARACTERS.search(name):
        return None
    return name


def _redirect_uri_problem(redirect_uri: object) -> str | None:
    if not isinstance(redirect_uri, str) or not redirect_uri:
        return "redirect_uri is required."
    try:
        parts = urlsplit(redirect_uri)
    except ValueError:
        return "redirect_uri must be an absolute http(s) URL."
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "redirect_uri must be an absolute http(s) URL."
    if parts.fragment or redirect_uri.endswith("#"):
        return "redirect_uri must not have a fragment."
    return None


def _with_query(url: str, params: Mapping[str, str]) -> str:
    separator = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    return url + separator + urlencode(params)


def _json(status: int, payload: object) -> OidcAnswer:
    return OidcAnswer(status, json.dumps(payload).encode(), headers=dict(_NO_STORE))


def _token_error(error: str, description: str) -> OidcAnswer:
    # RFC 6749 section 5.2: 400 with error and error_description.
    return _json(400, {"error": error, "error_description": description})


def _page(status: int, body: str) -> OidcAnswer:
    document = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(SIGN_IN_TITLE)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}"
        "main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;"
        "box-shadow:0 1px 4px #0002}h1{font-size:1.25rem;margin-top:0}label{display:block;font-weight:600}"
        "input{box-sizing:border-box;width:100%;padding:.5rem;margin:.25rem 0 1rem;font:inherit}"
        "button{padding:.5rem 1.25rem;font:inherit;cursor:pointer}.note{color:#5c6370;font-size:.875rem}"
        ".error{color:#b00020}</style>"
        f"</head><body><main>{body}</main></body></html>\n"
    )
    headers = {**_NO_STORE, "Content-Security-Policy": _PAGE_POLICY, "X-Frame-Options": "DENY"}
    return OidcAnswer(status, document.encode(), "text/html; charset=utf-8", headers)


def _error_page(message: str) -> OidcAnswer:
    return _page(
        400,
        f"<h1>{html.escape(SIGN_IN_TITLE)}</h1>"
        f'<p class="error" role="alert">The sign-in request is not valid: {html.escape(message)}</p>',
    )


class OidcProvider:
    """The provider's state (codes it issued) and its three routes; thread-safe.

    ``sign(claims)`` signs an id_token with the emulator's key (its ``kid`` in the header); ``jwks()`` is the
    emulator's public key set.
    """

    def __init__(
        self,
        issuer: str,
        sign: Callable[[dict[str, Any]], str],
        jwks: Callable[[], dict[str, Any]],
        *,
        code_lifetime: int = CODE_LIFETIME_SECONDS,
    ) -> None:
        self.issuer = issuer
        self._sign = sign
        self._jwks = jwks
        self.code_lifetime = code_lifetime
        self._lock = threading.Lock()
        self._grants: dict[str, OidcGrant] = {}

    # -- the Python API ----------------------------------------------------------------------------------

    def authorize(
        self,
        redirect_uri: str,
        code_challenge: str | None,
        nonce: str | None = None,
        name: str = DEFAULT_NAME,
        *,
        client_id: str | None = None,
    ) -> str:
        """Sign ``name`` in as authorize would and return the code its redirect would carry (S256 PKCE when
        ``code_challenge`` is given). ValueError for what authorize would refuse."""
        problem = _redirect_uri_problem(redirect_uri)
        if problem is None and code_challenge is not None:
            problem = self._challenge_problem(code_challenge, "S256")
        if problem is None and nonce is not None and not isinstance(nonce, str):
            problem = "nonce must be a string."
        clean = _clean_name(name) if isinstance(name, str) else None
        if problem is None and clean is None:
            problem = f"name must be 1 to {MAX_NAME_CHARS} characters without control characters."
        if problem is not None:
            raise ValueError(problem)
        assert clean is not None
        return self._issue(client_id or DEMO_OIDC_CLIENT_ID, redirect_uri, nonce or None, code_challenge, clean)

    def redeem(
        self,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
        *,
        nonce: str | None = None,
        check_nonce: bool = False,
        client_id: str | None = None,
    ) -> OidcGrant | str:
        """Use up ``code``: its grant (``user``: the customer it signed in), or a message saying which check
        failed.

        ``check_nonce`` (Genesys' exchange, which is given the nonce): when authorize had a nonce, ``nonce``
        must equal it.
        """
        now = time.time()
        with self._lock:
            grant = self._grants.get(code)
            if grant is None:
                return "The authorization code is not known."
            if grant.used:
                return "The authorization code has already been used."
            grant.used = True
            if now >= grant.expires_at:
                return "The authorization code has expired."
        if redirect_uri != grant.redirect_uri:
            return "The redirect URI differs from the one the code was issued for."
        if client_id is not None and client_id != grant.client_id:
            return "The client differs from the one the code was issued to."
        if grant.code_challenge is None and code_verifier is not None:
            return "A code verifier was given, but the authorization had no code challenge (PKCE)."
        if grant.code_challenge is not None:
            if code_verifier is None:
                return "The code verifier is missing: the authorization had a code challenge (PKCE)."
            if not _VERIFIER.fullmatch(code_verifier):
                return "The code verifier is not 43 to 128 unreserved characters (RFC 7636)."
            if not secrets.compare_digest(pkce_challenge(code_verifier), grant.code_challenge):
                return "The code verifier does not match the code challenge (PKCE S256)."
        if check_nonce and grant.nonce is not None and nonce != grant.nonce:
            return "The nonce differs from the one given at authorize."
        return grant

    def expire_codes(self) -> None:
        """Every code issued so far has expired."""
        with self._lock:
            for grant in self._grants.values():
                grant.expires_at = 0.0

    def reset(self) -> None:
        """Forget every code issued."""
        with self._lock:
            self._grants.clear()

    # -- the routes --------------------------------------------------------------------------------------

    def authorize_route(self, params: Mapping[str, list[str]]) -> OidcAnswer:
        """``GET /oidc/authorize`` (query) or ``POST /oidc/authorize`` (the sign-in form)."""
        values = {name: items[0] for name, items in params.items() if items}
        redirect_uri = values.get("redirect_uri", "")
        problem = _redirect_uri_problem(redirect_uri)
        if problem is not None:
            return _error_page(problem)
        state = values.get("state")

        def refuse(error: str, description: str) -> OidcAnswer:
            query = {"error": error, "error_description": description}
            if state is not None:
                query["state"] = state
            return OidcAnswer(302, headers={**_NO_STORE, "Location": _with_query(redirect_uri, query)})

        if values.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code.")
        challenge = values.get("code_challenge") or None
        if challenge is not None:
            challenge_problem = self._challenge_problem(challenge, values.get("code_challenge_method"))
            if challenge_problem is not None:
                return refuse("invalid_request", challenge_problem)
        hint = values.get("login_hint", "")
        if not hint.strip():
            return self._sign_in_page(values)
        name = _clean_name(hint)
        if name is None:
            return self._sign_in_page(values, f"The name must be 1 to {MAX_NAME_CHARS} characters.")
        client_id = values.get("client_id") or DEMO_OIDC_CLIENT_ID
        code = self._issue(client_id, redirect_uri, values.get("nonce") or None, challenge, name)
        query = {"code": code}
        if state is not None:
            query["state"] = state
        return OidcAnswer(302, headers={**_NO_STORE, "Location": _with_query(redirect_uri, query)})

    def token_route(self, content_type: str, body: bytes) -> OidcAnswer:
        """``POST /oidc/token``: the authorization code grant, answered with an id_token."""
        if content_type.split(";", maxsplit=1)[0].strip().lower() != "application/x-www-form-urlencoded":
            return _token_error("invalid_request", "The body must be application/x-www-form-urlencoded.")
        form = {name: items[0] for name, items in parse_qs(body.decode("utf-8", "replace")).items() if items}
        grant_type = form.get("grant_type", "")
        if grant_type != "authorization_code":
            return _token_error("unsupported_grant_type", "grant_type must be authorization_code.")
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        if not code or not redirect_uri:
            return _token_error("invalid_request", "code and redirect_uri are required.")
        outcome = self.redeem(code, redirect_uri, form.get("code_verifier"), client_id=form.get("client_id"))
        if isinstance(outcome, str):
            return _token_error("invalid_grant", outcome)
        return _json(
            200,
            {
                "access_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": ID_TOKEN_LIFETIME_SECONDS,
                "id_token": self.id_token(outcome),
                "scope": "openid profile",
            },
        )

    def jwks_route(self) -> OidcAnswer:
        return OidcAnswer(200, json.dumps(self._jwks()).encode())

    def id_token(self, grant: OidcGrant) -> str:
        """The id_token the provider answers for ``grant`` (what Genesys would check the code against)."""
        user = grant.user
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            "auth_time": grant.auth_time,
            "name": user.name,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        return self._sign(claims)

    # -- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _challenge_problem(challenge: str, method: str | None) -> str | None:
        if method != "S256":
            return "code_challenge_method must be S256 (the only method this provider supports)."
        if not isinstance(challenge, str) or not _S256_CHALLENGE.fullmatch(challenge):
            return "code_challenge must be 43 base64url characters (an S256 challenge)."
        return None

    def _issue(self, client_id: str, redirect_uri: str, nonce: str | None, challenge: str | None, name: str) -> str:
        code = secrets.token_urlsafe(32)
        now = time.time()
        user = OidcUser.named(name)
        grant = OidcGrant(client_id, redirect_uri, nonce, challenge, user, now + self.code_lifetime, int(now))
        with self._lock:
            # Spent and expired codes stay only as long as they can tell a reuse from an unknown code.
            horizon = now - 10 * self.code_lifetime
            for stale in [key for key, old in self._grants.items() if old.expires_at < horizon]:
                del self._grants[stale]
            self._grants[code] = grant
        return code

    def _sign_in_page(self, values: Mapping[str, str], error: str | None = None) -> OidcAnswer:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(values[name], quote=True)}">'
            for name in _AUTHORIZE_PARAMETERS
            if name in values
        )
        warning = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        body = (
            f"<h1>{html.escape(SIGN_IN_TITLE)}</h1>"
            "<p class=\"note\">The Genesys emulator's stand-in for your company's sign-in page: any name signs "
            "in, without a password.</p>"
            f"{warning}"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
            '<label for="login_hint">Name</label>'
            f'<input id="login_hint" name="login_hint" value="{html.escape(DEFAULT_NAME, quote=True)}" required '
            f'maxlength="{MAX_NAME_CHARS}" autocomplete="name">'
            '<button type="submit">Sign in</button></form>'
        )
        return _page(400 if error else 200, body)
