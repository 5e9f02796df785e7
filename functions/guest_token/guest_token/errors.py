"""Domain errors. Each carries its HTTP status and error code; app.py turns them into JSON in one place.

``message`` is what the caller sees and never contains upstream bodies or secrets. ``log_detail`` is for
operators (log lines only) and may name a Genesys error code or the secret's id, never a secret value.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "The service could not handle the request."
    # Whether the answer clears the signed-in customer's refresh cookie (refresh_cookie.py).
    clears_refresh_cookie: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        log_detail: str | None = None,
        genesys_correlation_id: str | None = None,
        details: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.log_detail = log_detail
        self.genesys_correlation_id = genesys_correlation_id
        self.details = details
        self.retry_after = retry_after

    def body(self, request_id: str | None) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "requestId": request_id}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidJson(ServiceError):
    status = 400
    code = "invalid_json"
    default_message = "The request body must be a JSON object."


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Send the request body as application/json."


class InvalidRequest(ServiceError):
    status = 422
    code = "invalid_request"
    default_message = "The request has invalid fields."


class OriginNotAllowed(ServiceError):
    status = 403
    code = "origin_not_allowed"
    default_message = "This origin may not request guest tokens."


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    default_message = "No such resource."


class MethodNotAllowed(ServiceError):
    status = 405
    code = "method_not_allowed"
    default_message = "Method not allowed on this resource."


class SignInFailed(ServiceError):
    """Genesys refused the code exchange (a reused or expired code, a PKCE or redirect URI mismatch: any 4xx but
    429). The widget starts the sign-in again."""

    status = 401
    code = "sign_in_failed"
    default_message = "The sign-in could not be completed; sign in again."


class NotSignedIn(ServiceError):
    """No refresh cookie, one that does not open (tampered, another key, origin or deployment, too old), or a
    refresh token Genesys refused. The answer clears the cookie."""

    status = 401
    code = "not_signed_in"
    default_message = "The customer is not signed in."
    clears_refresh_cookie: ClassVar[bool] = True


class SignedInElsewhere(NotSignedIn):
    """The cookie is a sign-in on another allowed origin (or deployment) that calls the same API host: not this
    page's, but not to be cleared either, or that page's customer would be signed out too."""

    clears_refresh_cookie: ClassVar[bool] = False


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
    default_message = "Genesys is rate limiting token requests; retry after the given delay."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **fields: Any) -> None:
        # The widget always gets a wait to honour: Genesys' own, or a second when it gave none.
        super().__init__(message, retry_after=max(1, retry_after or 1), **fields)


class UpstreamError(ServiceError):
    status = 502
    code = "upstream_error"
    default_message = "Genesys refused the token request."


class AccessTokenRejected(UpstreamError):
    """The Genesys API answered 401 to our OAuth access token (expired early or revoked)."""


class TokenVerificationFailed(UpstreamError):
    default_message = "Genesys returned a token that failed verification."


class SessionRefused(UpstreamError):
    """Genesys refused the guest's WebSocket (403 on the handshake). Genesys does not say why: the deployment
    id, its allowed domains, or its feature toggles and configuration. The caller is told no more than that."""

    default_message = "Genesys refused a chat session for this page."


class UpstreamUnavailable(ServiceError):
    status = 503
    code = "upstream_unavailable"
    default_message = "Genesys is unavailable; try again shortly."


class InvalidClient(UpstreamUnavailable):
    """Genesys rejected the OAuth client credentials (``invalid_client``)."""


class DeploymentUnavailable(ServiceError):
    """The web deployment is not active in Genesys (switched off, pending, in error or being deleted)."""

    status = 503
    code = "deployment_unavailable"
    default_message = "Chat is not available on this site at the moment."


class UpstreamTimeout(ServiceError):
    status = 504
    code = "upstream_timeout"
    default_message = "The token request ran out of time."


class ConfigurationError(ServiceError):
    """The deployment is misconfigured (environment, secret contents): the operator's to fix.

    What is wrong goes to the log only: the caller gets the generic 500, which names no setting, secret or
    deployment detail."""

    def __init__(self, problem: str | None = None, **fields: Any) -> None:
        fields.setdefault("log_detail", problem)
        super().__init__(None, **fields)
        self.args = (self.log_detail,)  # str() for operators and tests; the body keeps the generic message
