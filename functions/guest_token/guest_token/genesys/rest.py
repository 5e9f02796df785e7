"""Genesys' HTTP API behind OAuth: the client-credentials token and the web deployment lookup, and the
one way every HTTP call is sent (urllib3, attempts from ``retries``, Genesys' error shape mapped once).

- ``POST {oauth base}/oauth/token``: OAuth client credentials (HTTP Basic, ``grant_type=client_credentials``).
- ``GET {api base}/api/v2/webdeployments/deployments/{id}``: status and allowed domains of a web deployment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, InvalidHeader, NewConnectionError, TimeoutError
from urllib3.util import Retry

from .. import observability
from ..budget import Deadline
from ..credentials import ClientCredentials
from ..errors import (
    AccessTokenRejected,
    ConfigurationError,
    InvalidClient,
    RateLimited,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..settings import Settings
from . import net, retries

CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 8.0
CORRELATION_HEADER = "ININ-Correlation-Id"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DEPLOYMENTS_PATH = "/api/v2/webdeployments/deployments/"
USER_AGENT = "genesys-guest-token-service/1"
# Genesys' answers here are small JSON documents; anything larger is not one, and is not read on.
MAX_ANSWER_BYTES = 1 << 20
READ_CHUNK_BYTES = 64 * 1024
# Far above any access token Genesys issues, far below what an HTTP server takes in one header.
MAX_ACCESS_TOKEN_CHARS = 4096
# Genesys lets an OAuth client choose 5 minutes to 48 hours; an answer outside any sense is not Genesys'.
MAX_ACCESS_TOKEN_SECONDS = 7 * 86400
# A wait passed on to the widget is at most this long, whatever Genesys asked (the widget's timer needs sense).
MAX_RETRY_AFTER_SECONDS = 3600
# Parses Retry-After (seconds or an HTTP date); the attempts themselves are run by retries.attempt.
_RETRY_AFTER = Retry(respect_retry_after_header=True)
# RFC 6750's b64token: what an OAuth bearer token may be, and so what may go into an Authorization header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


# ---- headers of an upstream answer: the one way they are read ----------------------------------------------


def header_values(headers: Any, name: str) -> list[str]:
    """Every value of header ``name`` in an upstream answer, in order: a proxy may repeat any header.
    ``headers`` is urllib3's HTTPHeaderDict or websockets' Headers, whose get() joins or raises on repeats."""
    if hasattr(headers, "get_all"):  # websockets
        return [str(value) for value in headers.get_all(name)]
    if hasattr(headers, "getlist"):  # urllib3
        return [str(value) for value in headers.getlist(name)]
    value = headers.get(name)
    return [] if value is None else [str(value)]


def first_header(headers: Any, name: str) -> str | None:
    values = header_values(headers, name)
    return values[0] if values else None


def retry_after(headers: Any) -> int | None:
    """Retry-After in whole seconds (seconds or an HTTP date), at most MAX_RETRY_AFTER_SECONDS; the longest wait
    when the header is repeated (the most conservative reading), None when no value parses."""
    waits = []
    for value in header_values(headers, "Retry-After"):
        try:
            waits.append(_RETRY_AFTER.parse_retry_after(value.strip()))
        except (InvalidHeader, ValueError, OverflowError):  # a value no Genesys sends: as if absent
            continue
    return math.ceil(min(max(waits), MAX_RETRY_AFTER_SECONDS)) if waits else None


def correlation_id(headers: Any) -> str | None:
    """Genesys' ININ-Correlation-Id (the first, if repeated), as logged and put in traces and events: bounded,
    since a hostile or broken peer can send a header of any length."""
    return observability.bounded(first_header(headers, CORRELATION_HEADER))


def _new_pool() -> urllib3.PoolManager:
    # Its DNS lookups are bounded by the connect timeout too (net.py).
    return net.BoundedLookupPoolManager(num_pools=4, maxsize=2, retries=False, headers={"User-Agent": USER_AGENT})


_http = _new_pool()


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_in: int
    correlation_id: str | None


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str | None  # None: Genesys' answer stated none
    allow_all_domains: bool
    allowed_domains: tuple[str, ...]
    correlation_id: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes = field(repr=False)
    correlation_id: str | None
    retry_after: int | None  # whole seconds, from the Retry-After header
    # What the request carried that Genesys' error text must never bring to the log (value -> stand-in).
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.data)
        except (ValueError, RecursionError):
            return {}
        return document if isinstance(document, dict) else {}


def request_access_token(settings: Settings, credentials: ClientCredentials, deadline: Deadline) -> AccessToken:
    answer = send(
        "oauth",
        "POST",
        f"{settings.oauth_base_url}/oauth/token",
        headers={
            **urllib3.make_headers(basic_auth=f"{credentials.client_id}:{credentials.client_secret}"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=urlencode({"grant_type": "client_credentials"}),
        deadline=deadline,
        secrets={credentials.client_secret: "[client secret]", credentials.client_id: "[client id]"},
    )
    data = answer.json()
    if answer.status == 200:
        value, expires_in = data.get("access_token"), data.get("expires_in")
        # Genesys lets each OAuth client set its token lifetime (5 min to 48 h): read it, never assume it.
        if not (
            isinstance(value, str) and value and _is_int(expires_in) and 0 < expires_in <= MAX_ACCESS_TOKEN_SECONDS
        ):
            raise UpstreamError(
                log_detail="Genesys OAuth answered 200 without access_token and a positive integer expires_in",
                genesys_correlation_id=answer.correlation_id,
            )
        # Only a token that can be sent as a bearer (RFC 6750) is cached: one with CR/LF would fail every later
        # request of the container in http.client, with the token in the exception's text, and one of megabytes
        # every later request at Genesys (431).
        if not is_bearer_token(value):
            raise UpstreamError(
                log_detail="Genesys OAuth answered an access_token that is not an RFC 6750 bearer token",
                genesys_correlation_id=answer.correlation_id,
            )
        return AccessToken(value=value, expires_in=expires_in, correlation_id=answer.correlation_id)
    if answer.status in (400, 401) and (answer.status == 401 or data.get("error") == "invalid_client"):
        raise InvalidClient(
            log_detail=f"Genesys OAuth answered {answer.status} {_code(data, answer.secrets)}".rstrip(),
            genesys_correlation_id=answer.correlation_id,
        )
    raise failure("oauth", answer)


def is_bearer_token(value: object, max_chars: int = MAX_ACCESS_TOKEN_CHARS) -> TypeGuard[str]:
    """Whether ``value`` can go into an Authorization header as a bearer: RFC 6750's b64token, bounded."""
    return isinstance(value, str) and 0 < len(value) <= max_chars and _B64TOKEN.fullmatch(value) is not None


def get_deployment(settings: Settings, access_token: str, deployment_id: str, deadline: Deadline) -> Deployment:
    answer = send(
        "deployment",
        "GET",
        f"{settings.api_base_url}{DEPLOYMENTS_PATH}{quote(deployment_id, safe='')}",
        headers={"Authorization": f"Bearer {access_token}"},
        body=None,
        deadline=deadline,
    )
    check_access_token_accepted("deployment", answer)
    if answer.status == 404:
        raise ConfigurationError(
            log_detail=f"Genesys has no web deployment {deployment_id} (GENESYS_DEPLOYMENT_ID) in region "
            f"{settings.region}",
            genesys_correlation_id=answer.correlation_id,
        )
    if answer.status != 200:
        raise failure("deployment", answer)
    data = answer.json()
    if not data:  # not a JSON object: no answer Genesys gives (a proxy's error page, say)
        raise UpstreamError(
            log_detail="Genesys answered the deployment lookup with something other than a deployment",
            genesys_correlation_id=answer.correlation_id,
        )
    status, allow_all, domains = data.get("status"), data.get("allowAllDomains"), data.get("allowedDomains")
    # Only the status can refuse a guest, and only when Genesys states one; the domains serve a log hint, so
    # whatever their shape they never fail a request.
    return Deployment(
        id=deployment_id,
        status=status if isinstance(status, str) else None,
        allow_all_domains=allow_all is True,
        allowed_domains=tuple(domain for domain in domains if isinstance(domain, str))
        if isinstance(domains, list)
        else (),
        correlation_id=answer.correlation_id,
    )


def check_access_token_accepted(call: str, answer: Answer) -> None:
    if answer.status == 401:
        raise AccessTokenRejected(
            log_detail=f"Genesys {call} answered 401 to the OAuth access token",
            genesys_correlation_id=answer.correlation_id,
        )


def excerpt(text: str, limit: int, secrets: Mapping[str, str]) -> str:
    """Text Genesys sent, for the log: observability.redacted with the request's ``secrets``, cut at ``limit``."""
    return observability.redacted(text, secrets, limit) or ""


def _code(data: dict[str, Any], secrets: Mapping[str, str]) -> str:
    """Genesys' error code (REST ``code``, OAuth ``error``), when it is a string: bounded and redacted too."""
    code = data.get("code") or data.get("error")
    return excerpt(code, 100, secrets) if isinstance(code, str) else ""


def failure(call: str, answer: Answer) -> ServiceError:
    """The service's error for a Genesys error answer; its code and message go to the log only, never with one
    of the request's secrets (its credentials or access token, the guest's id) in them, should Genesys echo it."""
    data = answer.json()
    detail = f"Genesys {call} answered {answer.status} {_code(data, answer.secrets)}".rstrip()
    if isinstance(data.get("message"), str):
        detail += f": {excerpt(data['message'], 300, answer.secrets)}"
    if answer.status == 429:
        return RateLimited(
            retry_after=answer.retry_after, log_detail=detail, genesys_correlation_id=answer.correlation_id
        )
    if answer.status >= 500:
        return UpstreamUnavailable(log_detail=detail, genesys_correlation_id=answer.correlation_id)
    return UpstreamError(log_detail=detail, genesys_correlation_id=answer.correlation_id)


def send(
    call: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: str | None,
    deadline: Deadline,
    secrets: Mapping[str, str] | None = None,
    single_use: bool = False,
) -> Answer:
    """One HTTP call with bounded attempts; 429 and 5xx answers are retried, others are returned. The answer
    carries ``secrets`` (value -> stand-in) and the Authorization header's credential, which Genesys' error
    text never brings to the log (failure). A ``single_use`` request (an authorization code, which works once)
    is sent again only when Genesys surely did not act on it: after a 429, or when no connection was made; a
    5xx or a timeout may have spent it, so its answer (or error) is final."""
    scheme, _, credential = headers.get("Authorization", "").partition(" ")
    secrets = {**(secrets or {}), credential: f"[{scheme.lower() or 'authorization'} credential]"}

    def run(attempt: retries.Attempt) -> Answer:
        try:
            answer = _attempt(call, method, url, headers, body, attempt, deadline, secrets)
        except retries.Retryable as exc:
            if single_use and not exc.unsent:
                raise exc.error from None
            raise
        attempt.status, attempt.correlation_id = answer.status, answer.correlation_id
        if answer.status in RETRYABLE_STATUSES and (not single_use or answer.status == 429):
            raise retries.Retryable(failure(call, answer), wait=answer.retry_after)
        return answer

    return retries.attempt(call, deadline, run)


def get_once(call: str, url: str, *, deadline: Deadline) -> Answer:
    """One GET without credentials, made once (the JWKS): bounded as every attempt of ``send`` is (its total
    timeout is the time left, the body is read in chunks until the deadline and at most MAX_ANSWER_BYTES), on the
    caller's thread, so nothing of it outlives the request. Any answer is returned, whatever its status; a timeout
    raises UpstreamTimeout, another failure to get an answer UpstreamUnavailable, an answer over the cap
    UpstreamError. No genesys_call line or latency metric: the caller reports the outcome."""
    attempt = retries.Attempt(number=1, timeout=deadline.check(f"Genesys {call}"))
    with observability.upstream_segment(call):
        try:
            return _attempt(call, "GET", url, {}, None, attempt, deadline, {})
        except retries.Retryable as exc:  # made once: what another attempt might have fixed is the answer
            raise exc.error from None


def _attempt(  # noqa: PLR0917
    call: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    attempt: retries.Attempt,
    deadline: Deadline,
    secrets: Mapping[str, str],
) -> Answer:
    """One request and its answer, whatever its status; Retryable when no answer came (refused, dropped, slow)."""
    try:
        response = _http.request(
            method,
            url,
            headers=headers,
            body=body,
            # total bounds connect and read together, so one attempt never outlasts the time left.
            timeout=urllib3.Timeout(
                total=attempt.timeout,
                connect=min(CONNECT_TIMEOUT_SECONDS, attempt.timeout),
                read=min(READ_TIMEOUT_SECONDS, attempt.timeout),
            ),
            retries=False,
            redirect=False,
            preload_content=False,
        )
        data = _read_body(response, call, attempt, deadline)
    except HTTPError as exc:
        attempt.error = type(exc).__name__
        # urllib3 makes a refused connection a subclass of ConnectTimeoutError; it is not a timeout.
        unsent = isinstance(exc, NewConnectionError | ConnectTimeoutError)
        if isinstance(exc, TimeoutError) and not isinstance(exc, NewConnectionError):
            raise retries.Retryable(
                UpstreamTimeout(log_detail=f"Genesys {call} did not answer in time ({attempt.error})"), unsent=unsent
            ) from None
        raise retries.Retryable(
            UpstreamUnavailable(log_detail=f"Genesys {call} unreachable ({attempt.error})"), unsent=unsent
        ) from None
    return _answer(response, data, secrets)


def _read_body(response: urllib3.BaseHTTPResponse, call: str, attempt: retries.Attempt, deadline: Deadline) -> bytes:
    """The body, read in chunks so that a Genesys trickling bytes cannot hold the attempt past the deadline
    (each socket read is bounded by the read timeout, the whole by the time left), and at most MAX_ANSWER_BYTES."""
    chunks: list[bytes] = []
    size = 0
    try:
        # read1: whatever has arrived, at most a chunk (read would wait until the chunk is full).
        while chunk := response.read1(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise UpstreamError(log_detail=f"Genesys {call} answered more than {MAX_ANSWER_BYTES} bytes")
            if deadline.remaining() <= 0:
                attempt.error = "TimeoutError"
                raise retries.Retryable(UpstreamTimeout(log_detail=f"Genesys {call} answered too slowly"))
            chunks.append(chunk)
    except BaseException:
        response.close()  # a half-read answer cannot carry another request
        raise
    response.release_conn()
    return b"".join(chunks)


def _answer(response: urllib3.BaseHTTPResponse, data: bytes, secrets: Mapping[str, str]) -> Answer:
    return Answer(
        status=response.status,
        data=data,
        correlation_id=correlation_id(response.headers),
        retry_after=retry_after(response.headers),
        secrets=secrets,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def reset() -> None:
    """For tests: a fresh connection pool."""
    global _http
    _http.clear()
    _http = _new_pool()
