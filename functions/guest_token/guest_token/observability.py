"""Logger, metrics and the optional tracer, created once per container, and the audit and metric vocabulary.

Powertools reads POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_LOG_LEVEL itself.
Nothing here is ever given a token, an access token, a client secret or an Authorization header, but for text
that may hold one (an unexpected exception's), which ``redacted`` and ``unhandled_error`` redact before logging.
Libraries' loggers are held at WARNING, whatever level Lambda's log controls give the root logger.
docs/operations.md documents every audit event and metric named here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .settings import tracing_enabled

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

# No line carries the thread, process or asyncio task, so the log record need not look them up (the
# logging module's documented switches); the task's lookup raised and caught an exception on every line once
# the X-Ray SDK had loaded asyncio.
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # Python 3.12's, not in typeshed's stubs

# The loggers of the libraries the function loads (listed from logging's registry after token requests through
# both sources, with GENESYS_JWKS_URL, token events and tracing; tests/integration/test_logging.py keeps the list
# complete). At DEBUG, botocore logs every answer's body (Secrets Manager's holds the client secret) and every
# request's (PutEvents' holds the guest id when TokenEventsIncludeGuestId is on), websockets every frame (the
# session token). Lambda's log controls (LogFormat JSON with an ApplicationLogLevel) set the root logger's level,
# which a logger without a level of its own follows: so each of these has one, WARNING, whatever the root's.
# Their warnings and errors still propagate to Lambda's handler. The root logger is Lambda's and is left alone;
# Powertools' loggers and the service's (POWERTOOLS_LOG_LEVEL) keep theirs.
LIBRARY_LOGGERS = (
    "asyncio",
    "aws_xray_sdk",
    "bcdocs",
    "boto3",
    "botocore",
    "concurrent.futures",
    "s3transfer",
    "urllib3",
    "websockets",
)
LIBRARY_LOG_LEVEL = logging.WARNING
for _name in LIBRARY_LOGGERS:
    logging.getLogger(_name).setLevel(LIBRARY_LOG_LEVEL)


def _message_as_is(message: Any) -> Any:
    return message


# Without Powertools' "location" key: every audit line would say the same "audit:<line>" (an unhandled error's
# stack_trace says where it happened). Messages are event names and sentences, never JSON: Powertools would
# otherwise try json.loads on each and catch the error. No line is given exc_info (an exception's text may hold
# a credential: unhandled_error writes its own, redacted), and without serialize_stacktrace Powertools would not
# add its stack_trace to one that was.
logger = Logger(location=None, json_deserializer=_message_as_is, serialize_stacktrace=False)
metrics = Metrics()
# Preflights and unknown routes record no metrics by design; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def _new_tracer() -> Tracer | None:
    # The Tracer loads the X-Ray SDK: cold-start time paid only when tracing is on. Genesys calls get
    # subsegments from upstream_segment instead: X-Ray's http.client patch does not see urllib3 2's requests.
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer  # noqa: PLC0415

    return Tracer(auto_patch=False)  # botocore is patched by trace_aws_calls, when a client is first made


tracer = _new_tracer()
# Whether X-Ray samples the current invocation (by default the first request in each second and 5 % of the
# rest). An unsampled trace is never sent, yet the X-Ray SDK still builds a dummy entity for each subsegment,
# annotation and metadata, re-reading the trace header each time: about a tenth of the warm path. So the
# handler asks once per invocation and records nothing when the answer is no.
_sampled: contextvars.ContextVar[bool] = contextvars.ContextVar("xray_sampled", default=False)


def _recording() -> Tracer | None:
    """The tracer when the current invocation is sampled, else None."""
    return tracer if _sampled.get() else None


@functools.cache
def trace_aws_calls() -> None:
    """Record AWS SDK calls (Secrets Manager, EventBridge) as subsegments; called before an AWS client is made.

    Patching imports botocore (about 80 ms), so it waits for the first AWS client instead of the import: a
    container answering only preflights and refusals never pays for it, and the first token request needs
    botocore anyway."""
    if tracer is not None:
        tracer.patch(("botocore",))


# Audit entries: one "event" key names the entry; docs/operations.md documents the fields of each.
REQUEST_RECEIVED = "token_request_received"
TOKEN_ISSUED = "token_issued"
TOKEN_FAILED = "token_failed"
UPSTREAM_CALL = "genesys_call"
ACCESS_TOKEN_REJECTED = "oauth_token_rejected"
CREDENTIALS_RELOADED = "oauth_credentials_reloaded"
RETRY_ABANDONED = "genesys_retry_abandoned"
GUEST_SESSION_REPLACED = "guest_session_replaced"
CONFIGURATION_INVALID = "configuration_invalid"
GUEST_CONVERSATION_RESTARTED = "guest_conversation_restarted"
TOKEN_EVENT_PUBLISHED = "token_event_published"
TOKEN_EVENT_FAILED = "token_event_failed"
UNHANDLED_ERROR = "unhandled_error"
SIGNED_OUT = "signed_out"
# Metrics: namespace POWERTOOLS_METRICS_NAMESPACE, dimension service (and errorCode on the failure count).
HANDLER_LATENCY = "HandlerLatency"
TOKENS_ISSUED = "TokensIssued"
TOKEN_REQUESTS_FAILED = "TokenRequestsFailed"
TOKEN_REQUEST_SUCCESS = "TokenRequestSuccess"
UPSTREAM_LATENCY = {
    "oauth": "GenesysOAuthLatency",
    "guest-token": "GenesysGuestTokenLatency",
    "deployment": "GenesysDeploymentLatency",
    "webmessaging": "GenesysWebMessagingLatency",
    "auth-exchange": "GenesysAuthExchangeLatency",
    "auth-refresh": "GenesysAuthRefreshLatency",
    "auth-revoke": "GenesysAuthRevokeLatency",
}
# Signed-in customers: 1 per sign-in (refresh) that got a token, 0 per one refused or failed; Average = success rate.
SIGNED_IN_SUCCESS = {"sign-in": "SignInSuccess", "refresh": "SignedInRefreshSuccess"}
UPSTREAM_RETRIES = "GenesysRetries"
OAUTH_CACHE_HIT = "OAuthCacheHit"
OAUTH_TOKEN_FETCHED = "OAuthTokenFetched"
TOKEN_EVENTS_PUBLISHED = "TokenEventsPublished"
TOKEN_EVENTS_FAILED = "TokenEventsFailed"
ERROR_CODE_DIMENSION = "errorCode"


# The longest caller-controlled value (an Origin header, say) a log line carries: a caller must not choose how
# much is logged.
MAX_LOGGED_CHARS = 200


def bounded(value: str | None, limit: int = MAX_LOGGED_CHARS) -> str | None:
    """A caller-controlled value as it may be logged: at most ``limit`` characters, marked when cut."""
    if value is None:
        return None
    # Printable ASCII only: escaping (repr, JSON) would otherwise make one character up to ten.
    shown = "".join(char if char.isascii() and char.isprintable() else "?" for char in value[:limit])
    return shown if len(value) <= limit else f"{shown}...({len(value)} chars)"


# Whatever follows Basic or Bearer is a credential, whoever's it is (an HTTP library quoting a header, say).
SCHEME_CREDENTIALS = re.compile(r"\b(?:Basic|Bearer)\s+[^\s,;\"']+", re.IGNORECASE)
# A run of the characters tokens are written in (base64 and base64url, a JWT's dots, a UUID's dashes, percent
# encoding) long enough to be one: 32 or more, or 20 or more with a digit (words and dotted names rarely have one).
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/=_.~%-]{20,}")
_TOKEN_MIN_CHARS = 32
REDACTED = "[redacted]"


def _token_stand_in(run: re.Match[str]) -> str:
    text = run.group()
    return REDACTED if len(text) >= _TOKEN_MIN_CHARS or any(char.isdigit() for char in text) else text


# A secret is found in text by any WINDOW of its letters and digits in a row, whatever stands between them
# (dashes, spaces, colons, invisible characters), in any case, or %-encoded: 12 of a UUID's hex digits are 48
# random bits, which no other text matches by chance.
SECRET_WINDOW = 12
# Redaction reads at most this many times the characters it keeps: enough for every stand-in to shorten what it
# replaced, and a bound on the work a megabyte of hostile text can cause.
_READ_FACTOR = 8
# A character spelt as an escape: %-encoded, a JSON or Python escape, an HTML character reference.
_ESCAPED = re.compile(
    r"%([0-9A-Fa-f]{2})|\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|&#[xX]([0-9A-Fa-f]{1,6});|&#([0-9]{1,7});"
)


def redacted(text: str | None, secrets: Mapping[str, str] | None = None, limit: int = MAX_LOGGED_CHARS) -> str | None:
    """Text from outside that may hold a credential (Genesys' error texts, a token's kid, an exception's
    message), as it may be logged: each of ``secrets`` (value -> the stand-in that replaces it) wherever any
    SECRET_WINDOW of its letters and digits appear in a row (respelt in any case, with any separators, or
    escaped: %-encoded, JSON, HTML), Basic and Bearer credentials and token-like runs replaced, then bounded to
    ``limit``. Replaced before the cut, so that no piece of one is left at the end of what is kept. The one
    helper for text from outside."""
    if text is None:
        return None
    total = len(text)
    text = text[: limit * _READ_FACTOR]
    for secret, stand_in in {**_request_secrets.get(), **(secrets or {})}.items():
        text = _masked(text, secret, stand_in)
    text = _TOKEN_LIKE.sub(_token_stand_in, SCHEME_CREDENTIALS.sub("[credentials]", text))
    shown = bounded(text, limit) or ""
    return shown if total <= limit or shown.endswith("chars)") else f"{shown}...({total} chars)"


# The current request's own secrets (a signed-in customer's code, verifier, nonce, refresh token, cookie and
# JWTs), which ``redacted`` masks in any text it is given during the request, whatever the call site passed.
_NO_SECRETS: Mapping[str, str] = MappingProxyType({})
_request_secrets: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "request_secrets", default=_NO_SECRETS
)


def forget_request_secrets() -> None:
    """At the end of a request: its secrets are not the next one's (nor kept for the container's life)."""
    _request_secrets.set(_NO_SECRETS)


def add_request_secrets(secrets: Mapping[str | None, str]) -> None:
    """Register values (value -> stand-in; a value None is skipped) that ``redacted`` masks for the rest of the
    request."""
    known: dict[str, str] = {value: stand_in for value, stand_in in secrets.items() if value}
    _request_secrets.set({**_request_secrets.get(), **known})


def _unescaped(escape: re.Match[str]) -> str:
    *hexadecimal, decimal = escape.groups()
    number = int(decimal) if decimal else int(next(group for group in hexadecimal if group), 16)
    return chr(number) if number <= sys.maxunicode else ""


def _masked(text: str, secret: str, stand_in: str) -> str:
    """``text`` with every span that spells SECRET_WINDOW or more letters and digits of ``secret`` in a row
    replaced by ``stand_in``."""
    wanted = "".join(char for char in secret.lower() if char.isalnum())
    if not wanted:
        return text
    window = min(SECRET_WINDOW, len(wanted))
    pieces = {wanted[start : start + window] for start in range(len(wanted) - window + 1)}
    # The text's letters and digits, lower-cased and %-decoded, each with the span of text it came from.
    letters: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    while position < len(text):
        encoded = _ESCAPED.match(text, position)
        end = encoded.end() if encoded else position + 1
        char = _unescaped(encoded) if encoded else text[position]
        if char.isalnum():
            letters.append(char.lower())
            spans.append((position, end))
        position = end
    stream = "".join(letters)
    masked: list[tuple[int, int]] = []
    for start in range(len(stream) - window + 1):
        if stream[start : start + window] in pieces:
            first, last = spans[start][0], spans[start + window - 1][1]
            if masked and first <= masked[-1][1]:
                masked[-1] = (masked[-1][0], last)
            else:
                masked.append((first, last))
    for first, last in reversed(masked):
        text = f"{text[:first]}{stand_in}{text[last:]}"
    return text


def guest_ref(guest_id: str) -> str:
    """A stable, non-reversible reference to a guest id or session token, for logs, metrics and events.

    The ids are random UUIDs (122 random bits), so a truncated SHA-256 cannot be turned back into one, while
    the same guest always gets the same reference (one Logs Insights filter follows a guest's trail)."""
    return hashlib.sha256(f"genesys-guest:{guest_id.lower()}".encode()).hexdigest()[:20]


def audit(event: str, *, warning: bool = False, debug: bool = False, **fields: Any) -> None:
    log = logger.warning if warning else logger.debug if debug else logger.info
    log(event, extra={"event": event, **fields})


# At most this many frames of an unhandled error (a RecursionError has a thousand): the outermost few, where the
# request entered, and the innermost, where it was raised.
MAX_LOGGED_FRAMES = 30
_OUTER_FRAMES = 5


def unhandled_error(error: BaseException) -> None:
    """The line of an exception no handler expected: its type, its message redacted and bounded, and where it
    happened as file:line:function (never its locals, its causes' text or Powertools' rendering of it, whose
    text is the exception's own, unredacted and unbounded)."""
    where = [
        f"{frame.f_code.co_filename}:{line}:{frame.f_code.co_name}"
        for frame, line in traceback.walk_tb(error.__traceback__)
    ]
    if len(where) > MAX_LOGGED_FRAMES:
        kept_inner = MAX_LOGGED_FRAMES - _OUTER_FRAMES
        left_out = len(where) - MAX_LOGGED_FRAMES
        where = [*where[:_OUTER_FRAMES], f"...({left_out} frames)", *where[-kept_inner:]]
    try:
        message = str(error)
    except Exception:  # an exception's own __str__ may fail; its type and frames still say enough
        message = "(the exception's text could not be read)"
    logger.error(
        "unhandled error",
        extra={
            "event": UNHANDLED_ERROR,
            "exception_name": type(error).__name__,
            "exception": redacted(message),
            "stack_trace": where,
        },
    )


@contextlib.contextmanager
def upstream_segment(call: str) -> Iterator[None]:
    """One attempt at a Genesys call as an X-Ray subsegment, when the invocation is traced."""
    recording = _recording()
    if recording is None:
        yield
        return
    failed: BaseException | None = None
    with recording.provider.in_subsegment(name=f"Genesys {call}") as subsegment:
        try:
            yield
        except BaseException as error:
            # Not handed to X-Ray, which would record the exception's text (a library may quote a header in it):
            # the subsegment is marked failed with the exception's type only.
            failed = error
            recorded: Any = subsegment  # aws_xray_sdk's Subsegment; Powertools' protocol types part of it
            recorded.add_fault_flag()
            recorded.put_metadata("exception", type(error).__name__)
    if failed is not None:
        raise failed


# A token request's Genesys calls that succeeded at their first attempt: folded into its outcome line as
# ``calls`` instead of a line each (None outside a token request, where every attempt gets its own line).
_folded_calls: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "folded_calls", default=None
)


def token_request_started(origin: str | None) -> None:
    """From here until token_outcome, first attempts that succeed are folded into the outcome line."""
    _folded_calls.set([])
    _request_secrets.set(_NO_SECRETS)
    audit(REQUEST_RECEIVED, debug=True, origin=origin)  # the outcome line carries the origin too


def upstream_call(call: str, *, attempt: int, succeeded: bool, **fields: Any) -> None:
    """One attempt at a Genesys call: status, latency and Genesys' correlation id (never headers or bodies).

    A line of its own when it was a retry or failed; otherwise, in a token request, one entry of the
    outcome line's ``calls``. Its latency metric is recorded either way."""
    folded = _folded_calls.get()
    if folded is not None and succeeded and attempt == 1:
        folded.append({"call": call, **{key: value for key, value in fields.items() if value is not None}})
    else:
        audit(UPSTREAM_CALL, call=call, attempt=attempt, **fields)
    if (recording := _recording()) is not None:
        recording.put_metadata(key="attempt", value={"call": call, "attempt": attempt, **fields})
    if fields.get("latencyMs") is not None:
        metrics.add_metric(name=UPSTREAM_LATENCY[call], unit=MetricUnit.Milliseconds, value=fields["latencyMs"])
    if attempt > 1:
        metrics.add_metric(name=UPSTREAM_RETRIES, unit=MetricUnit.Count, value=1)


def oauth_access_token(*, cached: bool) -> None:
    metrics.add_metric(name=OAUTH_CACHE_HIT if cached else OAUTH_TOKEN_FETCHED, unit=MetricUnit.Count, value=1)


def token_outcome(
    request: dict[str, Any],
    *,
    status: int,
    error_code: str | None = None,
    detail: str | None = None,
    expires_at: str | None = None,
    latency_ms: float,
) -> None:
    """The audit entry and the metrics of one token request, issued (no error code) or failed.

    ``request`` holds what is known of the request (origin, then guest id, duration, scopes, Genesys'
    correlation id); the Logger leaves out fields whose value is None, so unknown fields are absent."""
    issued = error_code is None
    calls = _folded_calls.get()
    _folded_calls.set(None)
    for call in calls or ():  # the line's own genesysCorrelationId is the last call's: said once
        if "genesysCorrelationId" in call and call["genesysCorrelationId"] == request.get("genesysCorrelationId"):
            del call["genesysCorrelationId"]
    audit(
        TOKEN_ISSUED if issued else TOKEN_FAILED,
        warning=status == 429 or status >= 500,
        **request,
        calls=calls or None,
        outcome="issued" if issued else "failed",
        status=status,
        errorCode=error_code,
        detail=detail,
        expiresAt=expires_at,
        latencyMs=latency_ms,
    )
    # Request and guest ids are EMF metadata: searchable in the logs, never dimensions (each distinct
    # dimension value would be a new, billed metric).
    ids = {"requestId": logger.get_correlation_id(), "guestRef": request.get("guestRef")}
    ids = {key: value for key, value in ids.items() if value is not None}
    for key, value in ids.items():
        metrics.add_metadata(key=key, value=value)
    metrics.add_metric(name=HANDLER_LATENCY, unit=MetricUnit.Milliseconds, value=latency_ms)
    if error_code is None:
        metrics.add_metric(name=TOKENS_ISSUED, unit=MetricUnit.Count, value=1)
    else:
        _count_failure(error_code, ids)
    # Success rate = Average of TokenRequestSuccess. A caller's own mistake (4xx other than 429) is not a
    # service failure, so it is left out of the rate instead of counting against it.
    if issued or status == 429 or status >= 500:
        metrics.add_metric(name=TOKEN_REQUEST_SUCCESS, unit=MetricUnit.Count, value=1 if issued else 0)
    # A signed-in customer's sign-in or refresh: Genesys refusing the code or refresh token (401) counts against
    # its rate too, since a misconfigured identity provider integration shows as nothing else.
    signed_in = SIGNED_IN_SUCCESS.get(request.get("action", ""))
    if signed_in is not None and (issued or status in (401, 429) or status >= 500):
        metrics.add_metric(name=signed_in, unit=MetricUnit.Count, value=1 if issued else 0)
    if (recording := _recording()) is not None:
        recording.put_annotation(key="outcome", value="issued" if issued else "failed")
        if error_code is not None:
            recording.put_annotation(key=ERROR_CODE_DIMENSION, value=error_code)


def signed_out(request: dict[str, Any], *, revoked: bool, latency_ms: float) -> None:
    """A signed-in customer's sign-out answered 204: whether Genesys revoked a sign-in (False: there was no
    usable cookie, or Genesys said it was already over)."""
    calls = _folded_calls.get()
    _folded_calls.set(None)
    audit(SIGNED_OUT, **request, calls=calls or None, revoked=revoked, status=204, latencyMs=latency_ms)


def _count_failure(error_code: str, metadata: dict[str, Any]) -> None:
    # A document of its own, so that only the failure count is split by error code (not latency or the
    # success rate). Two dimension sets: the total, and one per code; the codes are a fixed, short list.
    failed = EphemeralMetrics()
    failed.add_metric(name=TOKEN_REQUESTS_FAILED, unit=MetricUnit.Count, value=1)
    by_code = {ERROR_CODE_DIMENSION: error_code}
    failed.add_dimensions(**({"service": failed.service, **by_code} if failed.service else by_code))
    for key, value in metadata.items():
        failed.add_metadata(key=key, value=value)
    failed.flush_metrics()


def token_event_published(event_id: str) -> None:
    audit(TOKEN_EVENT_PUBLISHED, eventId=event_id)
    metrics.add_metric(name=TOKEN_EVENTS_PUBLISHED, unit=MetricUnit.Count, value=1)


def token_event_failed(reason: str) -> None:
    audit(TOKEN_EVENT_FAILED, warning=True, reason=reason)
    metrics.add_metric(name=TOKEN_EVENTS_FAILED, unit=MetricUnit.Count, value=1)


def traced[F: Callable[..., Any]](handler: F) -> F:
    """The Lambda handler in an X-Ray subsegment when tracing is on. Its response holds the token, so it is
    never recorded; neither is any method's return value.

    An invocation X-Ray does not sample skips Powertools' handler subsegment, which would only be a dummy;
    the container's first invocation always goes through it, since Powertools' ColdStart annotation is decided
    by its first call."""
    if tracer is None:
        return handler
    # Loaded with the Tracer already; the X-Ray SDK ships no type stubs.
    from aws_xray_sdk import global_sdk_config  # type: ignore[import-untyped]  # noqa: PLC0415
    from aws_xray_sdk.core.lambda_launcher import LAMBDA_TRACE_HEADER_KEY  # type: ignore[import-untyped]  # noqa: PLC0415
    from aws_xray_sdk.core.models.trace_header import TraceHeader  # type: ignore[import-untyped]  # noqa: PLC0415

    captured = tracer.capture_lambda_handler(handler, capture_response=False)
    first = True

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        nonlocal first
        # What the recorder's is_sampled() answers in Lambda (the runtime's trace header, unless Powertools
        # disabled the SDK), read without building the invocation's segment, which only a sampled one needs.
        header = TraceHeader.from_header_str(os.environ.get(LAMBDA_TRACE_HEADER_KEY))
        # Sampled=? (undecided) and a header without a Root record nothing: the SDK would drop the first and file
        # the second under the previous request's trace.
        sampled = global_sdk_config.sdk_enabled() and header.sampled == 1 and header.root is not None
        _sampled.set(sampled)
        if sampled or first:
            first = False
            return captured(*args, **kwargs)
        return handler(*args, **kwargs)

    return run  # type: ignore[return-value]


def reset() -> None:
    """For tests: drop metrics not yet flushed."""
    metrics.clear_metrics()
