"""Request and response models for ``POST /guest-tokens``.

The pydantic model checks the shape of the body; ``parse_guest_token_request`` then applies the deployment's
policy (allowed scopes, maximum lifetime) and resolves defaults. Both report problems per field.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from .errors import InvalidJson, InvalidRequest
from .settings import DEFAULT_ALLOWED_SCOPES, DEFAULT_REQUEST_SCOPES, SOURCE_WEBMESSAGING, UUID_PATTERN, Settings

Duration = Literal["short", "standard", "extended", "max"]
DURATION_SECONDS: dict[str, int] = {"short": 3600, "standard": 7200, "extended": 14400, "max": 86400}
DEFAULT_DURATION: Duration = "standard"

_NIL_UUID = "00000000-0000-0000-0000-000000000000"


class _WithGuestId(BaseModel):
    """A body's optional guestId, as every route takes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # WithJsonSchema only describes the field in openapi.json (what the validators below enforce); it
    # validates nothing itself.
    guestId: Annotated[
        str | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": f"^(?!{_NIL_UUID}$){UUID_PATTERN.pattern}$"},
                    {"type": "null"},
                ],
                "description": "A returning guest's id, as an earlier answer gave it: a canonical UUID, not the "
                "nil UUID. Absent: a new guest. With the webmessaging source it is the guest's Web Messaging "
                "session token, the key to the guest's conversation.",
            }
        ),
    ] = None

    @field_validator("guestId")
    @classmethod
    def _canonical_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not UUID_PATTERN.fullmatch(value):
            raise ValueError("must be a UUID in canonical 8-4-4-4-12 hexadecimal form")
        if uuid.UUID(value).int == 0:
            raise ValueError("must not be the nil UUID")
        return value.lower()


class GuestTokenBody(_WithGuestId):
    """The JSON body a widget sends. Every field is optional; null means absent."""

    duration: Annotated[
        Duration | None,
        WithJsonSchema(
            {
                "anyOf": [{"enum": list(DURATION_SECONDS)}, {"type": "null"}],
                "description": "rest source only: the token's lifetime. The webmessaging source refuses it with "
                "422: Genesys decides how long a guest's JWT lives.",
            }
        ),
    ] = None
    scopes: Annotated[
        list[str] | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": {"enum": list(DEFAULT_ALLOWED_SCOPES)}, "minItems": 1},
                    {"enum": list(DEFAULT_ALLOWED_SCOPES)},
                    {"type": "null"},
                ],
                "description": "rest source only: scopes from the deployment's ALLOWED_SCOPES (by default "
                "these four); one scope may be sent as a string. The webmessaging source refuses it with 422.",
            }
        ),
    ] = None

    @field_validator("scopes", mode="before")
    @classmethod
    def _one_scope_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("scopes")
    @classmethod
    def _scope_list(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must name at least one scope")
        return list(dict.fromkeys(value))


class GuestTokenResponse(BaseModel):
    """What a widget gets; fields that one source does not give are absent, never null."""

    token: str = Field(description="The guest's JWT: a bearer token for Genesys' guest calls.")
    guestId: str = Field(
        description="The guest's id, to send back as guestId next time. webmessaging: the guest's session token, "
        "the key to the guest's conversation; it differs from the one sent when Genesys had ended that session."
    )
    expiresIn: int = Field(description="Seconds until the token expires.")
    expiresAt: str = Field(description="The token's exp, ISO-8601 UTC.")
    scopes: list[str] | None = Field(default=None, description="rest source only: the token's scopes.")
    newSession: bool | None = Field(
        default=None, description="webmessaging only: Genesys started a new session (no earlier conversation)."
    )
    deploymentId: str | None = Field(default=None, description="webmessaging only: the web deployment id.")
    webSocketUrl: str | None = Field(
        default=None, description="webmessaging only: the Web Messaging Guest API URL for this deployment."
    )


# Printable ASCII without spaces: what an authorization code or a nonce is made of (RFC 6749's VSCHAR, less space).
_VISIBLE_ASCII = r"^[!-~]+$"


class AuthenticatedSessionBody(_WithGuestId):
    """A signed-in customer's sign-in: what the company's identity provider's redirect gave the page."""

    code: str = Field(
        min_length=1,
        max_length=4096,
        pattern=_VISIBLE_ASCII,
        description="The authorization code from the identity provider's redirect (single-use).",
    )
    redirectUri: str = Field(
        max_length=2048,
        pattern=r'^https?://[!"$-~]+$',
        description="The redirect URI the authorization request named, exactly (an absolute http(s) URL).",
    )
    codeVerifier: str | None = Field(
        default=None,
        min_length=43,
        max_length=128,
        pattern=r"^[A-Za-z0-9._~-]+$",
        description="PKCE's code verifier (RFC 7636), when the authorization request had a code challenge.",
    )
    nonce: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=_VISIBLE_ASCII,
        description="The nonce the authorization request named, if any.",
    )


def _refresh_guest_id(schema: dict[str, Any]) -> None:
    schema["properties"]["guestId"]["description"] = (
        "The chat the widget holds, as an earlier answer gave it. Absent: the chat sealed with the cookie "
        "(a new one if none)."
    )


class RefreshBody(_WithGuestId):
    """A signed-in customer's refresh (the refresh token comes from the cookie): only the chat's guestId."""

    model_config = ConfigDict(json_schema_extra=_refresh_guest_id)


class AuthenticatedSessionResponse(GuestTokenResponse):
    """What a signed-in customer's widget gets: what /guest-tokens answers, authenticated."""

    authenticated: bool = Field(default=True, description="Always true: the session is a signed-in customer's.")
    authToken: str = Field(
        description="Genesys' auth JWT, for the widget's own configureAuthenticatedSession on the socket; "
        "short-lived, kept in memory only (the refresh token never reaches the page: it is in the cookie)."
    )
    authExpiresIn: int | None = Field(
        default=None, description="Seconds until the auth JWT expires, when its exp can be read (absent otherwise)."
    )


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    requestId: str | None
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    """The shape of every error answer (errors.py builds them); declared for openapi.json."""

    error: ErrorInfo


@dataclass(frozen=True)
class GuestTokenRequest:
    """A validated request with every default resolved."""

    guest_id: str
    new_guest: bool
    duration: str | None  # None with the webmessaging source: Genesys decides
    duration_seconds: int | None
    scopes: tuple[str, ...]


def parse_body[M: BaseModel](raw_body: str | None, model: type[M], *, optional: bool = False) -> M:
    """The body as ``model``: InvalidJson when it is not a JSON object (or missing, unless ``optional``: then
    it is ``{}``), InvalidRequest naming each field at fault."""
    if raw_body is None or not raw_body.strip():
        if not optional:
            raise InvalidJson("The request body is missing; send a JSON object.")
        raw_body = "{}"
    try:
        document: Any = json.loads(raw_body)
    except ValueError:
        raise InvalidJson("The request body is not valid JSON.") from None
    except RecursionError:  # nesting deeper than the parser's recursion limit: a caller's mistake, not a crash
        raise InvalidJson("The request body is nested too deeply.") from None
    if not isinstance(document, dict):
        raise InvalidJson("The request body must be a JSON object.")
    try:
        # pydantic directly: Powertools' parse() does the same for a bare model, but importing its parser
        # package builds models for every AWS event source, about 100 ms of each cold start.
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidRequest(details=[_detail(error) for error in exc.errors()]) from None


def parse_guest_token_request(raw_body: str | None, settings: Settings) -> GuestTokenRequest:
    body = parse_body(raw_body, GuestTokenBody)

    if settings.guest_token_source == SOURCE_WEBMESSAGING:
        # Genesys decides a guest JWT's lifetime and rights: a field this source cannot honour is refused.
        unsupported = [name for name in ("duration", "scopes") if getattr(body, name) is not None]
        if unsupported:
            raise InvalidRequest(
                details=[
                    {"field": name, "issue": "not supported with Genesys Web Messaging sessions; leave it out"}
                    for name in unsupported
                ]
            )
        return GuestTokenRequest(
            guest_id=body.guestId or str(uuid.uuid4()),
            new_guest=body.guestId is None,
            duration=None,
            duration_seconds=None,
            scopes=(),
        )

    duration = body.duration or default_duration(settings.max_token_lifetime_seconds)
    scopes = tuple(body.scopes) if body.scopes is not None else DEFAULT_REQUEST_SCOPES
    details = []
    unknown = [scope for scope in scopes if scope not in settings.allowed_scopes]
    if unknown:
        details.append({"field": "scopes", "issue": f"not allowed: {', '.join(unknown)}"})
    if DURATION_SECONDS[duration] > settings.max_token_lifetime_seconds:
        details.append(
            {
                "field": "duration",
                "issue": f"{duration} ({DURATION_SECONDS[duration]} s) is longer than this service allows "
                f"({settings.max_token_lifetime_seconds} s)",
            }
        )
    if details:
        raise InvalidRequest(details=details)

    return GuestTokenRequest(
        guest_id=body.guestId or str(uuid.uuid4()),
        new_guest=body.guestId is None,
        duration=duration,
        duration_seconds=DURATION_SECONDS[duration],
        scopes=scopes,
    )


def default_duration(max_lifetime_seconds: int) -> Duration:
    """What a request without a duration gets: ``standard``, or the longest that MAX_TOKEN_LIFETIME_SECONDS
    allows, so the widget's default request is valid under every allowed setting."""
    if DURATION_SECONDS[DEFAULT_DURATION] <= max_lifetime_seconds:
        return DEFAULT_DURATION
    allowed = [name for name, seconds in DURATION_SECONDS.items() if seconds <= max_lifetime_seconds]
    return allowed[-1] if allowed else "short"  # type: ignore[return-value]


def _detail(error: Any) -> dict[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    # Our own validators' messages come prefixed with "Value error, ".
    issue = "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"]).removeprefix("Value error, ")
    return {"field": field, "issue": issue}
