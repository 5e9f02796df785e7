"""HTTP edge: the resolver, the routes, and the one table that turns domain errors into JSON responses.

One request: origin check -> request model -> deadline from the Lambda context -> the guest-token source
(sources.py: Genesys with bounded retries, then verification) -> 200, audit entry and metrics.

Signed-in customers (``/authenticated-sessions``, on only with AUTH_COOKIE_KEYS_SECRET_ID) go through the same
gates, then signed_in.py; their refresh token travels in the cookie refresh_cookie.py seals, and their answers
allow credentials for the exact origin.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import math
import re
import time
from collections.abc import Iterator
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import (  # noqa: F401  (snapstart registers its hooks)
    observability,
    refresh_cookie,
    signed_in,
    snapstart,
    sources,
    token_events,
)
from .budget import Deadline, DeadlineExceeded
from .errors import (
    ConfigurationError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    NotSignedIn,
    OriginNotAllowed,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    UpstreamTimeout,
)
from .models import (
    AuthenticatedSessionBody,
    AuthenticatedSessionResponse,
    ErrorBody,
    GuestTokenBody,
    GuestTokenResponse,
    RefreshBody,
    parse_body,
    parse_guest_token_request,
)
from .observability import logger, metrics
from .settings import Settings, configuration_problem, get_settings

GUEST_TOKENS_PATH = "/guest-tokens"
SIGNED_IN_PATH = refresh_cookie.RESOURCE  # /authenticated-sessions
REFRESH_PATH = f"{SIGNED_IN_PATH}/refresh"
ALLOWED_METHODS = "OPTIONS, POST"
SIGNED_IN_METHODS = {SIGNED_IN_PATH: "OPTIONS, POST, DELETE", REFRESH_PATH: "OPTIONS, POST"}
# The preflight of both signed-in paths names every method of the resource (the design's contract).
SIGNED_IN_PREFLIGHT_METHODS = "OPTIONS, POST, DELETE"
ALLOWED_HEADERS = "Content-Type"
PREFLIGHT_MAX_AGE_SECONDS = 600
# Every valid body is a few hundred bytes; JSON Schema (API Gateway's model) does not see whitespace, so the
# function caps the body itself.
MAX_BODY_BYTES = 16 * 1024
# A 503 or 504 tells the widget to wait at least as long as the service already spent trying, within bounds,
# so that retries do not multiply during a Genesys brownout.
MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS = 2, 30

# Behind a custom domain, API Gateway's path carries the base path mapping (/chat/guest-tokens): whatever
# precedes a resource is stripped, so routing does not depend on how the API is mounted.
_RESOURCE_AT_END = re.compile(rf"({GUEST_TOKENS_PATH}|{SIGNED_IN_PATH}|{REFRESH_PATH})/?$")
_MOUNTED = re.compile(rf"^.*?(?={_RESOURCE_AT_END.pattern})")
app = APIGatewayRestResolver(strip_prefixes=[_MOUNTED])


def _documented(description: str, model: type[Any] = ErrorBody) -> OpenAPIResponse:
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}


@app.post(
    GUEST_TOKENS_PATH,
    summary="Issue a Genesys Web Messaging guest token",
    responses={
        200: _documented("The guest token", GuestTokenResponse),
        400: _documented("invalid_json: the body is not a JSON object"),
        403: _documented("origin_not_allowed: Origin is missing or not allowed"),
        413: _documented("payload_too_large: a body over 16 KiB"),
        415: _documented("unsupported_media_type: a Content-Type other than application/json"),
        422: _documented("invalid_request: a field is invalid; details name it"),
        429: _documented("rate_limited: retry after the Retry-After header's seconds"),
        500: _documented("internal_error"),
        502: _documented("upstream_error: Genesys refused, or its token failed verification"),
        503: _documented(
            "upstream_unavailable: Genesys or Secrets Manager unavailable; deployment_unavailable: the web "
            "deployment is not active"
        ),
        504: _documented("upstream_timeout: the request ran out of time"),
    },
)
def create_guest_token(
    # For openapi.json only. Validation stays off: the body is parsed below so that every mistake, bad JSON
    # included, becomes one 400 or 422 in the service's error shape; Powertools never passes this argument.
    body: Annotated[GuestTokenBody, Body()] = None,  # type: ignore[assignment]
) -> Response[Any]:
    # The audit fields grow as the request is understood; the error handler reports whatever is known.
    audit: dict[str, Any] = {"origin": observability.bounded(_origin())}
    app.context.update(started=time.perf_counter(), audit=audit)
    observability.token_request_started(audit["origin"])
    settings = get_settings()
    origin = _require_allowed_origin(settings)
    _require_json_content_type()
    request = parse_guest_token_request(_body_text(), settings)
    # The guest id is a bearer value (with webmessaging, the key to the conversation): logs carry a
    # reference that follows one guest without revealing the id. From here on every line has it.
    audit.update(
        guestRef=observability.guest_ref(request.guest_id),
        newGuest=request.new_guest,
        duration=request.duration,
        scopes=list(request.scopes) or None,
    )
    logger.append_keys(guestRef=audit["guestRef"])

    deadline = Deadline.from_context(app.lambda_context)
    with _network_work(deadline):
        result = sources.issue(settings, request, origin, deadline, audit)
        _publish(settings, deadline, result, origin=origin, audit=audit)

    observability.token_outcome(audit, status=200, expires_at=result.expiresAt, latency_ms=_latency_ms())
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=result.model_dump(exclude_none=True),
        headers={"Cache-Control": "no-store", **_cors_headers(settings, origin)},
    )


def _publish(
    settings: Settings, deadline: Deadline, result: GuestTokenResponse, *, origin: str, audit: dict[str, Any]
) -> None:
    """The token event of an issued token, anonymous or signed in (from what the audit line knows)."""
    token_events.publish_token_issued(
        settings,
        deadline,
        guest_id=result.guestId,
        guest_ref=audit["guestRef"],
        new_guest=audit["newGuest"],
        new_session=result.newSession,
        scopes=result.scopes,
        duration=audit.get("duration"),
        authenticated=isinstance(result, AuthenticatedSessionResponse) or None,
        expires_at=result.expiresAt,
        origin=origin,
        correlation_id=logger.get_correlation_id(),
        genesys_correlation_id=audit.get("genesysCorrelationId"),
    )


@app.route(
    GUEST_TOKENS_PATH,
    method="OPTIONS",
    summary="CORS preflight",
    responses={
        204: {"description": "The origin may call POST /guest-tokens", "content": {}},  # {}: no body
        403: _documented("origin_not_allowed: Origin is missing or not allowed"),
        500: _documented("internal_error"),
    },
)
def preflight() -> Response[Any]:
    settings = get_settings()
    return _preflight_answer(settings, _require_allowed_origin(settings), ALLOWED_METHODS)


def _preflight_answer(settings: Settings, origin: str, methods: str, *, credentials: bool = False) -> Response[Any]:
    return Response(
        status_code=204,
        headers={
            **_cors_headers(settings, origin, credentials=credentials),
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        },
    )


# ---- signed-in customers ------------------------------------------------------------------------------------

_SET_COOKIE: dict[str, OpenAPIResponseHeader] = {
    "Set-Cookie": {
        "description": "guest_refresh: the sealed refresh token (HttpOnly; Secure; SameSite=Strict; Path up to "
        "/authenticated-sessions), or Max-Age=0 to clear it",
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}
}


def _with_headers(response: OpenAPIResponse, headers: dict[str, OpenAPIResponseHeader]) -> OpenAPIResponse:
    return {**response, "headers": headers}


_SIGNED_IN_ERRORS: dict[int, OpenAPIResponse] = {
    400: _documented("invalid_json: the body is not a JSON object"),
    403: _documented("origin_not_allowed: Origin is missing or not allowed"),
    404: _documented("not_found: signed-in customers are off (no AUTH_COOKIE_KEYS_SECRET_ID)"),
    413: _documented("payload_too_large: a body over 16 KiB"),
    415: _documented("unsupported_media_type: a Content-Type other than application/json"),
    422: _documented("invalid_request: a field is invalid; details name it"),
    429: _with_headers(_documented("rate_limited: retry after the Retry-After header's seconds"), _RETRY_AFTER),
    500: _documented("internal_error"),
    502: _documented("upstream_error: Genesys refused, or answered what it should not"),
    503: _with_headers(_documented("upstream_unavailable or deployment_unavailable"), _RETRY_AFTER),
    504: _with_headers(_documented("upstream_timeout: the request ran out of time"), _RETRY_AFTER),
}


@app.post(
    SIGNED_IN_PATH,
    summary="Sign a customer in: exchange the identity provider's code for an authenticated session",
    responses={
        200: _with_headers(
            _documented(
                "The authenticated session's token; Set-Cookie holds the sealed refresh token",
                AuthenticatedSessionResponse,
            ),
            _SET_COOKIE,
        ),
        401: _documented("sign_in_failed: Genesys refused the code (reused, expired, PKCE or redirect URI)"),
        **_SIGNED_IN_ERRORS,
    },
)
def sign_in(
    body: Annotated[AuthenticatedSessionBody, Body()] = None,  # type: ignore[assignment]  # openapi.json only
) -> Response[Any]:
    settings, origin, audit = _signed_in_request("sign-in")
    request = parse_body(_body_text(), AuthenticatedSessionBody)
    deadline = Deadline.from_context(app.lambda_context)
    with _network_work(deadline):
        keys = refresh_cookie.keys(settings, deadline)  # before the code is spent: a bad secret is a 500 now
        result = signed_in.sign_in(settings, request, origin, deadline, audit)
        _publish(settings, deadline, result.answer, origin=origin, audit=audit)
    return _signed_in_answer(settings, origin, keys, result, audit)


@app.post(
    REFRESH_PATH,
    summary="A signed-in customer's new token, through the refresh cookie",
    responses={
        200: _with_headers(
            _documented(
                "The authenticated session's new token; Set-Cookie renews the cookie", AuthenticatedSessionResponse
            ),
            _SET_COOKIE,
        ),
        401: _with_headers(
            _documented(
                "not_signed_in: no usable refresh cookie, or Genesys refused its refresh token; the answer "
                "clears the cookie (unless it is another origin's sign-in)"
            ),
            _SET_COOKIE,
        ),
        **_SIGNED_IN_ERRORS,
    },
)
def refresh(
    body: Annotated[RefreshBody, Body()] = None,  # type: ignore[assignment]  # openapi.json only
) -> Response[Any]:
    settings, origin, audit = _signed_in_request("refresh")
    request = parse_body(_body_text(), RefreshBody, optional=True)
    deadline = Deadline.from_context(app.lambda_context)
    with _network_work(deadline):
        keys = refresh_cookie.keys(settings, deadline)
        sealed = _opened(settings, keys, origin)
        result = signed_in.refresh(settings, sealed, request.guestId, origin, deadline, audit)
        _publish(settings, deadline, result.answer, origin=origin, audit=audit)
    return _signed_in_answer(settings, origin, keys, result, audit)


@app.delete(
    SIGNED_IN_PATH,
    summary="Sign the customer out: revoke the sign-in and forget the refresh cookie (idempotent)",
    responses={
        204: {"description": "Signed out; Set-Cookie clears the cookie", "content": {}, "headers": _SET_COOKIE},
        # No body is read: none of the body's errors. Once the origin is allowed, every answer clears the cookie.
        **{
            status: _with_headers(answer, {**answer.get("headers", {}), **_SET_COOKIE}) if status >= 429 else answer
            for status, answer in _SIGNED_IN_ERRORS.items()
            if status not in (400, 413, 415, 422)
        },
    },
)
def sign_out() -> Response[Any]:
    settings, origin, audit = _signed_in_request("sign-out", json_body=False)
    app.context["signing_out"] = True  # every answer, errors too, makes the browser forget the cookie
    deadline = Deadline.from_context(app.lambda_context)
    revoked = False
    with _network_work(deadline):
        keys = refresh_cookie.keys(settings, deadline)
        try:
            sealed = _opened(settings, keys, origin)
        except NotSignedIn as unusable:
            audit["detail"] = unusable.log_detail
            # Another page's sign-in on this API host stays that page's.
            app.context["signing_out"] = unusable.clears_refresh_cookie
        else:
            revoked = signed_in.sign_out(settings, sealed, deadline)
    observability.signed_out(audit, revoked=revoked, latency_ms=_latency_ms())
    forget = {"Set-Cookie": refresh_cookie.clear_cookie(path=app.context["cookie_path"])}
    return Response(
        status_code=204,
        headers={
            "Cache-Control": "no-store",
            **_cors_headers(settings, origin, credentials=True),
            **(forget if app.context["signing_out"] else {}),
        },
    )


def _signed_in_preflight() -> Response[Any]:
    settings = get_settings()
    if not settings.signed_in_customers:
        raise NotFound()
    app.context["credentials"] = True
    origin = _require_allowed_origin(settings)
    return _preflight_answer(settings, origin, SIGNED_IN_PREFLIGHT_METHODS, credentials=True)


# The preflight of both signed-in paths, each its own operation in openapi.json.
for _path, _operation in ((SIGNED_IN_PATH, "preflight_signed_in"), (REFRESH_PATH, "preflight_refresh")):
    app.route(
        _path,
        method="OPTIONS",
        summary="CORS preflight (with credentials)",
        operation_id=_operation,
        responses={
            204: {"description": "The origin may call POST and DELETE with credentials", "content": {}},
            403: _documented("origin_not_allowed: Origin is missing or not allowed"),
            404: _documented("not_found: signed-in customers are off"),
            500: _documented("internal_error"),
        },
    )(_signed_in_preflight)


def _signed_in_request(action: str, *, json_body: bool = True) -> tuple[Settings, str, dict[str, Any]]:
    """The gates every signed-in route shares: on (else 404), the origin allowed (the cookie endpoints' CSRF
    check, with SameSite=Strict), a JSON content type where a body is read. From here an error answer allows
    credentials."""
    settings = get_settings()
    if not settings.signed_in_customers:
        raise NotFound()
    request_context = app.current_event.request_context
    app.context.update(
        credentials=True,
        cookie_path=refresh_cookie.path_for(request_context.path or app.current_event.path),
    )
    audit: dict[str, Any] = {"origin": observability.bounded(_origin()), "action": action}
    app.context.update(started=time.perf_counter(), audit=audit)
    observability.token_request_started(audit["origin"])
    origin = _require_allowed_origin(settings)
    if json_body:
        _require_json_content_type()
    return settings, origin, audit


def _opened(settings: Settings, keys: Any, origin: str) -> refresh_cookie.Sealed:
    event = app.current_event
    cookies = refresh_cookie.from_headers(event.get("headers"), event.get("multiValueHeaders"))
    observability.add_request_secrets({cookie: "[cookie]" for cookie in cookies})
    deployment_id = settings.deployment_id
    assert deployment_id is not None  # signed-in customers need the webmessaging source
    return refresh_cookie.open_cookie(
        keys, cookies, origin=origin, deployment_id=deployment_id, max_age=settings.auth_cookie_seconds
    )


def _signed_in_answer(
    settings: Settings, origin: str, keys: Any, result: signed_in.SignedIn, audit: dict[str, Any]
) -> Response[Any]:
    answer = result.answer
    assert answer.deploymentId is not None  # a webmessaging session's
    sealed = refresh_cookie.Sealed(result.refresh_token, answer.deploymentId, origin, answer.guestId)
    cookie = refresh_cookie.seal(keys, sealed)
    audit["authenticated"] = True  # that it is a signed-in customer's session, never who
    observability.token_outcome(audit, status=200, expires_at=answer.expiresAt, latency_ms=_latency_ms())
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=answer.model_dump(exclude_none=True),
        headers={
            "Cache-Control": "no-store",
            **_cors_headers(settings, origin, credentials=True),
            "Set-Cookie": refresh_cookie.set_cookie(
                cookie, path=app.context["cookie_path"], max_age=settings.auth_cookie_seconds
            ),
        },
    )


@contextlib.contextmanager
def _network_work(deadline: Deadline) -> Iterator[None]:
    """The request's network work, under the deadline's alarm (as /guest-tokens')."""
    try:
        with deadline.enforced():
            yield
    except DeadlineExceeded:
        raise UpstreamTimeout(log_detail="the request's deadline passed during a network call") from None


# ---- the one error table ------------------------------------------------------------------------------


@app.exception_handler(ServiceError)
def handle_service_error(error: ServiceError) -> Response[Any]:
    return _error_response(error)


@app.not_found
def handle_not_found(_: NotFoundError) -> Response[Any]:
    found = _RESOURCE_AT_END.search(app.current_event.path)
    resource = found.group(1) if found else None
    if resource == GUEST_TOKENS_PATH:
        return _error_response(MethodNotAllowed(), {"Allow": ALLOWED_METHODS})
    if resource in SIGNED_IN_METHODS and _signed_in_customers():
        app.context["credentials"] = True  # as every answer of the signed-in routes
        return _error_response(MethodNotAllowed(), {"Allow": SIGNED_IN_METHODS[resource]})
    return _error_response(NotFound())


def _signed_in_customers() -> bool:
    with contextlib.suppress(ServiceError):  # misconfigured: as if off
        return get_settings().signed_in_customers
    return False


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response[Any]:
    # Never logger.exception: the exception's text may hold a credential (an HTTP library quoting a header).
    observability.unhandled_error(error)
    return _error_response(ServiceError())


def _error_response(error: ServiceError, extra_headers: dict[str, str] | None = None) -> Response[Any]:
    headers = {"Cache-Control": "no-store", **(extra_headers or {})}
    if error.status in (503, 504) and not isinstance(error, ConfigurationError):
        # The error's own wait (a deployment's next read) or the time spent, within the documented range.
        spent = time.perf_counter() - app.context.get("started", time.perf_counter())
        wait = error.retry_after if error.retry_after is not None else math.ceil(spent)
        error.retry_after = min(MAX_RETRY_AFTER_SECONDS, max(MIN_RETRY_AFTER_SECONDS, wait))
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
        # Cross-origin scripts see only CORS-safelisted headers unless told; the widget must read this one.
        headers["Access-Control-Expose-Headers"] = "Retry-After"
    with contextlib.suppress(ServiceError):  # misconfigured: no origin is known to be allowed
        headers.update(_cors_headers(get_settings(), _origin(), credentials=app.context.get("credentials", False)))
    cookie_path = app.context.get("cookie_path")
    if cookie_path is not None and (error.clears_refresh_cookie or app.context.get("signing_out")):
        headers["Set-Cookie"] = refresh_cookie.clear_cookie(path=cookie_path)

    audit = app.context.get("audit")
    if audit is not None:  # a token request, as opposed to a preflight or an unknown route
        if error.genesys_correlation_id:
            audit["genesysCorrelationId"] = error.genesys_correlation_id
        observability.token_outcome(
            audit, status=error.status, error_code=error.code, detail=error.log_detail, latency_ms=_latency_ms()
        )
    elif error.log_detail:
        logger.warning(error.log_detail, extra={"event": "request_failed", "errorCode": error.code})

    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=error.body(logger.get_correlation_id()),  # the request id, read once by lambda_handler
        headers=headers,
    )


# ---- request helpers -------------------------------------------------------------------------------------


def _origin() -> str | None:
    return app.current_event.headers.get("Origin")


def _require_allowed_origin(settings: Settings) -> str:
    origin = _origin()
    if origin is None or not settings.origin_allowed(origin):
        raise OriginNotAllowed(log_detail=f"origin {observability.bounded(origin)!r} is not in ALLOWED_ORIGINS")
    return origin


def _require_json_content_type() -> None:
    # API Gateway's body cap (the request model in template.yaml) checks JSON bodies only, and it treats a
    # request without Content-Type as JSON; anything else would slip past the cap.
    content_type = app.current_event.headers.get("Content-Type")
    if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            log_detail=f"Content-Type {observability.bounded(content_type)!r} is not application/json"
        )


def _cors_headers(settings: Settings, origin: str | None, *, credentials: bool = False) -> dict[str, str]:
    # The answer depends on Origin, so shared caches must key on it; the origin is echoed, never "*". Only the
    # signed-in routes allow credentials (their cookie), and only for the exact origin.
    if origin is not None and settings.origin_allowed(origin):
        allowed = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {**allowed, "Access-Control-Allow-Credentials": "true"} if credentials else allowed
    return {"Vary": "Origin"}


def _body_text() -> str | None:
    event = app.current_event
    if event.body is None:
        return None
    too_large = PayloadTooLarge(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
    # Base64 takes 4 characters for 3 bytes: refuse by the encoded size before decoding anything.
    if len(event.body) > (MAX_BODY_BYTES * 4 // 3 + 4 if event.is_base64_encoded else MAX_BODY_BYTES):
        raise too_large
    if not event.is_base64_encoded:
        if len(event.body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:  # characters of several bytes
            raise too_large
        return event.body
    try:
        data = base64.b64decode(event.body, validate=True)
    except binascii.Error:
        raise InvalidJson("The request body must be UTF-8 encoded JSON.") from None
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("The request body must be UTF-8 encoded JSON.") from None


def _latency_ms() -> float:
    started: float = app.context["started"]
    return round((time.perf_counter() - started) * 1000, 2)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the guest's id.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@observability.traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway's request id, where correlation_paths.API_GATEWAY_REST points: read as a key, since
    # Powertools' JMESPath query (correlation_id_path) built its function table on every invocation.
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    logger.set_correlation_id(request_context.get("requestId") if isinstance(request_context, dict) else None)
    try:
        return app.resolve(event, context)
    finally:
        observability.forget_request_secrets()


# A deployment whose settings cannot work says so once, at cold start, in one line; every token request then
# answers 500 (the settings are read again on each, so a fixed variable takes effect without a new container).
if (_problem := configuration_problem()) is not None:
    logger.error(_problem, extra={"event": observability.CONFIGURATION_INVALID})

# Everything loaded so far lives as long as the container. Frozen, the garbage collector stops scanning it:
# the first request then makes no full collection, which scanned the whole import (about 40 ms), and later
# ones are shorter too. Cycles already unreachable here are kept, a few kilobytes for the container's life.
gc.freeze()
