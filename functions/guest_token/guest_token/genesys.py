"""The Genesys Cloud contract, and nothing else: URLs, payloads, the retry policy and error mapping.

Two calls:
- ``POST {oauth base}/oauth/token``: OAuth client credentials (HTTP Basic, ``grant_type=client_credentials``).
- ``POST {api base}{GENESYS_GUEST_TOKEN_PATH}``: the Web Messaging guest token. This call is not in Genesys'
  public API reference; its path, payload and answer are the contract our service specifies, kept here alone.

Retries: urllib3's ``Retry`` decides what is retryable, parses ``Retry-After`` (seconds or an HTTP date) and
computes the backoff with jitter; this module runs the attempts itself so that no wait and no socket timeout
outlives the request's deadline (Genesys' own SDK lets urllib3 sleep on Retry-After up to ten times).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError, NewConnectionError, TimeoutError
from urllib3.util import Retry

from . import observability
from .budget import Deadline
from .credentials import ClientCredentials
from .errors import (
    AccessTokenRejected,
    InvalidClient,
    RateLimited,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .settings import Settings

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 8.0
CORRELATION_HEADER = "ININ-Correlation-Id"
_RETRY_POLICY = Retry(
    total=MAX_ATTEMPTS - 1,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=None,  # both calls are POSTs that are safe to repeat: they create nothing lasting
    backoff_factor=0.25,
    backoff_jitter=0.25,
    backoff_max=2.0,
    respect_retry_after_header=True,
    raise_on_status=False,
    redirect=False,
)
_USER_AGENT = "genesys-guest-token-service/1"


def _new_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=4, maxsize=2, retries=False, headers={"User-Agent": _USER_AGENT})


_http = _new_pool()


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_in: int
    correlation_id: str | None


@dataclass(frozen=True)
class GuestToken:
    token: str = field(repr=False)
    correlation_id: str | None


@dataclass(frozen=True)
class _Answer:
    status: int
    data: bytes = field(repr=False)
    correlation_id: str | None
    retry_after: int | None  # whole seconds, from the Retry-After header

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.data)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}


def request_access_token(settings: Settings, credentials: ClientCredentials, deadline: Deadline) -> AccessToken:
    answer = _send(
        "oauth",
        f"{settings.oauth_base_url}/oauth/token",
        headers={
            **urllib3.make_headers(basic_auth=f"{credentials.client_id}:{credentials.client_secret}"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=urlencode({"grant_type": "client_credentials"}),
        deadline=deadline,
    )
    data = answer.json()
    if answer.status == 200:
        value, expires_in = data.get("access_token"), data.get("expires_in")
        # Genesys lets each OAuth client set its token lifetime (5 min to 48 h): read it, never assume it.
        if not (isinstance(value, str) and value and isinstance(expires_in, int) and expires_in > 0):
            raise UpstreamError(
                log_detail="Genesys OAuth answered 200 without access_token and a positive integer expires_in",
                genesys_correlation_id=answer.correlation_id,
            )
        return AccessToken(value=value, expires_in=expires_in, correlation_id=answer.correlation_id)
    if answer.status in (400, 401) and (answer.status == 401 or data.get("error") == "invalid_client"):
        raise InvalidClient(
            log_detail=f"Genesys OAuth answered {answer.status} {data.get('error', '')}".rstrip(),
            genesys_correlation_id=answer.correlation_id,
        )
    raise _failure("oauth", answer)


def generate_guest_token(
    settings: Settings,
    access_token: str,
    *,
    guest_id: str,
    duration_seconds: int,
    scopes: tuple[str, ...],
    deadline: Deadline,
) -> GuestToken:
    answer = _send(
        "guest-token",
        f"{settings.api_base_url}{settings.guest_token_path}",
        headers={"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"},
        body=json.dumps({"guestId": guest_id, "expirationDurationSeconds": duration_seconds, "scopes": list(scopes)}),
        deadline=deadline,
    )
    if answer.status == 200:
        token = answer.json().get("token")
        if not isinstance(token, str) or not token:
            raise UpstreamError(
                log_detail="Genesys answered 200 without a token", genesys_correlation_id=answer.correlation_id
            )
        return GuestToken(token=token, correlation_id=answer.correlation_id)
    if answer.status == 401:
        raise AccessTokenRejected(
            log_detail="Genesys answered 401 to the OAuth access token", genesys_correlation_id=answer.correlation_id
        )
    raise _failure("guest-token", answer)


def _failure(call: str, answer: _Answer) -> ServiceError:
    data = answer.json()
    # Genesys' error code and message go to the log only; the caller never sees an upstream body.
    detail = f"Genesys {call} answered {answer.status} {data.get('code') or data.get('error') or ''}".rstrip()
    if data.get("message"):
        detail += f": {data['message']}"
    if answer.status == 429:
        return RateLimited(
            retry_after=max(1, answer.retry_after or 1),
            log_detail=detail,
            genesys_correlation_id=answer.correlation_id,
        )
    if answer.status >= 500:
        return UpstreamUnavailable(log_detail=detail, genesys_correlation_id=answer.correlation_id)
    return UpstreamError(log_detail=detail, genesys_correlation_id=answer.correlation_id)


def _send(call: str, url: str, *, headers: dict[str, str], body: str, deadline: Deadline) -> _Answer:
    """POST with at most MAX_ATTEMPTS attempts, each wait and timeout bounded by the deadline."""
    retry = _RETRY_POLICY
    answer: _Answer | None = None
    error: HTTPError | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        left = deadline.check(f"Genesys {call}")
        started = time.perf_counter()
        response: urllib3.BaseHTTPResponse | None = None
        error = None
        with observability.upstream_segment(call):
            try:
                response = _http.request(
                    "POST",
                    url,
                    headers=headers,
                    body=body,
                    timeout=urllib3.Timeout(
                        connect=min(CONNECT_TIMEOUT_SECONDS, left), read=min(READ_TIMEOUT_SECONDS, left)
                    ),
                    retries=False,
                    redirect=False,
                )
            except HTTPError as exc:
                error = exc
            answer = _answer(response, retry) if response is not None else None
            observability.upstream_call(
                call,
                attempt=attempt,
                status=answer.status if answer else None,
                error=type(error).__name__ if error else None,
                latencyMs=round((time.perf_counter() - started) * 1000, 2),
                genesysCorrelationId=answer.correlation_id if answer else None,
            )
        if answer is not None and not retry.is_retry("POST", answer.status):
            return answer
        try:
            retry = retry.increment("POST", url, response=response, error=error)
        except MaxRetryError:
            break
        wait = _wait(retry, answer)
        if wait >= deadline.remaining():
            observability.audit(observability.RETRY_ABANDONED, warning=True, call=call, waitSeconds=wait)
            break
        time.sleep(wait)

    if answer is not None:
        return answer
    # urllib3 makes a refused connection a subclass of ConnectTimeoutError; it is not a timeout.
    if isinstance(error, TimeoutError) and not isinstance(error, NewConnectionError):
        raise UpstreamTimeout(log_detail=f"Genesys {call} did not answer in time ({type(error).__name__})")
    raise UpstreamUnavailable(log_detail=f"Genesys {call} unreachable ({type(error).__name__})")


def _answer(response: urllib3.BaseHTTPResponse, retry: Retry) -> _Answer:
    try:
        retry_after = retry.get_retry_after(response)
    except InvalidHeader:
        retry_after = None
    return _Answer(
        status=response.status,
        data=response.data,
        correlation_id=response.headers.get(CORRELATION_HEADER),
        retry_after=math.ceil(retry_after) if retry_after is not None else None,
    )


def _wait(retry: Retry, answer: _Answer | None) -> float:
    if answer is not None and answer.retry_after is not None:
        return answer.retry_after
    return retry.get_backoff_time()


def reset() -> None:
    """For tests: a fresh connection pool."""
    global _http
    _http.clear()
    _http = _new_pool()
