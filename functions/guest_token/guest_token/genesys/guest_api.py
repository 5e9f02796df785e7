"""Genesys' public Web Messaging Guest API over WebSocket (the ``webmessaging`` source), and nothing else.

``wss://webmessaging.<region>/v1?deploymentId=<id>``, JSON text frames (docs/genesys-calls.md names the
source of each fact):
- ``configureSession`` with the guest's session token (chosen by the client) answers ``SessionResponse``
  (``connected``, ``newSession``, ``readOnly``). A read-only session (its conversation ended) is restarted
  as Genesys' transport SDK does it (``startNewChat``): ``closeSession {closeAllConnections: true}``, its
  ``SessionResponse``, then ``configureSession`` with ``startNew: true``.
- ``getJwt`` answers ``JwtResponse`` (``jwt``, ``exp`` in epoch seconds): the guest's bearer token for
  Genesys' guest REST calls (``GET /api/v2/webmessaging/messages``).
- Errors are frames of class ``string`` with a code and a message; rate limiting is class
  ``TooManyRequestsErrorMessage`` (code 429, body ``retryAfter`` seconds, ``errorCode`` 4029);
  ``SessionExpiredEvent`` (a response or a message) means the session is gone.
A frame's meaning is its ``class``, as in Genesys' SDKs; its ``type`` is not read. An answer is a frame of a
class that fits the request whose ``tracingId`` is ours or absent (Genesys' SDK fixtures show answers without
one); every other frame (presence events, echoes of the guest's messages from an open tab, classes we do not
know) is skipped. Genesys checks the handshake's ``Origin`` against the deployment's allowed domains, so the
caller's origin is sent as the browser would send it.

The socket library (websockets, sync client) is imported when the first session is opened, not with the
handler. Every socket operation is bounded by the deadline: the opening handshake (TCP, TLS, HTTP upgrade)
as a whole by ``open_timeout``, each receive by the time left.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import quote, urlsplit

from .. import observability
from ..budget import Deadline
from ..errors import (
    RateLimited,
    SessionRefused,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from . import net, rest, retries

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

CALL = "webmessaging"
_DEFAULT_PORTS = {"wss": 443, "ws": 80}
# Caps per attempt, so that a silent Genesys leaves time for another attempt within a 10 s function.
OPEN_TIMEOUT_SECONDS = 4.0
RECEIVE_TIMEOUT_SECONDS = 4.0
CLOSE_TIMEOUT_SECONDS = 0.5
MAX_MESSAGE_BYTES = 1 << 20
# Guest API codes are HTTP statuses or 4xxx/5xxx; anything longer is not a code and is not logged as one.
MAX_CODE = 99999
SESSION_EXPIRED = 4006
SESSION_NOT_FOUND = 4007
# configureSession on a signed-in customer's session (after sign-out, say): that session is not the anonymous
# guest's to resume, so the guest gets a new one, as after 4006 or 4007.
CANNOT_DOWNGRADE = 4017
RATE_LIMITED = 4029
# Codes that mean the guest's session is gone: a returning guest then starts a new one.
_SESSION_GONE = frozenset({SESSION_EXPIRED, SESSION_NOT_FOUND, CANNOT_DOWNGRADE})
# Classes that answer any request: the errors.
_ERROR_CLASSES = frozenset({"string", "TooManyRequestsErrorMessage"})
_ERROR_NAMES = {
    4000: "FeatureUnavailable",
    4006: "SessionHasExpired",
    4007: "SessionNotFound",
    4017: "CannotDowngradeToUnauthenticated",
    4020: "MissingParameter",
    4029: "RequestRateTooHigh",
    5000: "UnexpectedError",
}


@dataclass(frozen=True)
class GuestSession:
    session_token: str = field(repr=False)
    jwt: str = field(repr=False)
    exp: int  # the JwtResponse's exp, epoch seconds (whole: Genesys' SDKs read it as a Long or a Double)
    new_session: bool
    correlation_id: str | None


class GuestApiError(Exception):
    """An error response on the socket: its code and Genesys' message (for the log only)."""

    def __init__(self, code: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {_ERROR_NAMES.get(code, '')}".rstrip())
        self.code = code
        self.message = message  # cut only once the session token is out of it (_mapped)
        self.retry_after = retry_after


class _SessionGone(Exception):
    pass


class _ConnectionsClosed(Exception):
    """A ConnectionClosedEvent: another socket of the guest closed the session's connections."""


@dataclass
class _Progress:
    """What earlier attempts learnt, kept across retries: the session token in use (a new one once Genesys had
    lost the guest's) and whether Genesys made a new session, which a retry configuring it again would not say.
    ``auth_jwt``: a signed-in customer's, configured with configureAuthenticatedSession."""

    token: str = field(repr=False)
    new_session: bool = False
    auth_jwt: str | None = field(default=None, repr=False)


def websocket_url(base_url: str, deployment_id: str) -> str:
    return f"{base_url}/v1?deploymentId={quote(deployment_id, safe='')}"


def open_session(
    base_url: str,
    *,
    deployment_id: str,
    session_token: str,
    origin: str,
    deadline: Deadline,
    auth_jwt: str | None = None,
) -> GuestSession:
    """Configure the guest's session (a new one with a new token when Genesys no longer has this one) and
    get its JWT. Retries refused or dropped connections, 5xx handshakes, 5xxx codes and 4029. With ``auth_jwt``
    (a signed-in customer's) the session is configured with configureAuthenticatedSession."""
    url = websocket_url(base_url, deployment_id)
    progress = _Progress(token=session_token, auth_jwt=auth_jwt)

    def run(attempt: retries.Attempt) -> GuestSession:
        return _session(url, deployment_id, progress, origin, attempt, deadline)

    return retries.attempt(CALL, deadline, run)


def _session(  # noqa: PLR0917
    url: str,
    deployment_id: str,
    progress: _Progress,
    origin: str,
    attempt: retries.Attempt,
    deadline: Deadline,
) -> GuestSession:
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415

    token = progress.token
    try:
        for _ in range(2):  # a returning guest whose session is gone gets one new session
            with _connect(url, origin, attempt, deadline) as socket:
                try:
                    progress.new_session |= _configure(socket, deployment_id, token, deadline, progress.auth_jwt)
                    jwt, exp = _get_jwt(socket, token, deadline)
                except _SessionGone:
                    observability.audit(observability.GUEST_SESSION_REPLACED)
                    token = progress.token = str(uuid.uuid4())
                    progress.new_session = True
                    continue
                finally:
                    # Closing waits for Genesys' close frame: never past the deadline.
                    socket.close_timeout = max(0.0, min(CLOSE_TIMEOUT_SECONDS, deadline.remaining()))
            return GuestSession(
                session_token=token,
                jwt=jwt,
                exp=exp,
                new_session=progress.new_session,
                correlation_id=attempt.correlation_id,
            )
    except UpstreamError as exc:
        # Raised inside the session (a frame that is not JSON, a session still read-only): it names the call.
        exc.genesys_correlation_id = exc.genesys_correlation_id or attempt.correlation_id
        raise
    except GuestApiError as exc:
        attempt.status = exc.code
        raise _mapped(exc, attempt, token) from None
    except TimeoutError:
        attempt.error = "TimeoutError"
        raise retries.Retryable(
            UpstreamTimeout(
                log_detail="Genesys webmessaging did not answer in time", genesys_correlation_id=attempt.correlation_id
            )
        ) from None
    except ConnectionClosed as exc:
        attempt.error = type(exc).__name__
        raise retries.Retryable(
            UpstreamUnavailable(
                log_detail="Genesys webmessaging closed the socket "
                f"({exc.rcvd.code if exc.rcvd else 'no close frame'})",
                genesys_correlation_id=attempt.correlation_id,
            )
        ) from None
    except _ConnectionsClosed:
        # As the transport SDK does on this event: this socket is done; the next attempt opens another.
        attempt.error = "ConnectionClosedEvent"
        raise retries.Retryable(
            UpstreamUnavailable(
                log_detail="Genesys webmessaging closed the session's connections (ConnectionClosedEvent)",
                genesys_correlation_id=attempt.correlation_id,
            )
        ) from None
    raise UpstreamError(
        log_detail="Genesys webmessaging said the new session is gone too",
        genesys_correlation_id=attempt.correlation_id,
    )


def _connect(url: str, origin: str, attempt: retries.Attempt, deadline: Deadline) -> ClientConnection:
    from websockets.exceptions import InvalidHandshake, InvalidStatus  # noqa: PLC0415
    from websockets.sync.client import connect  # noqa: PLC0415
    from websockets.typing import Origin  # noqa: PLC0415

    attempt.status = attempt.error = None  # facts of this connection, not of an earlier one in the attempt
    open_timeout = min(OPEN_TIMEOUT_SECONDS, deadline.remaining())
    if open_timeout <= 0:
        attempt.error = "TimeoutError"
        raise retries.Retryable(UpstreamTimeout(log_detail="no time left to open a Genesys webmessaging socket"))
    parts = urlsplit(url)
    started = time.monotonic()
    try:
        # The DNS lookup and TCP connect, bounded here (net.py): websockets' own lookup could not be. Given a
        # socket, websockets also never follows a redirect: the session token goes only to the host configured.
        tcp = net.open_tcp(parts.hostname or "", parts.port or _DEFAULT_PORTS[parts.scheme], open_timeout)
        try:
            socket = connect(
                url,
                sock=tcp,
                origin=Origin(origin),
                # The whole opening handshake (TCP, TLS, upgrade) within the time left, whatever came before.
                open_timeout=max(0.001, open_timeout - (time.monotonic() - started)),
                close_timeout=CLOSE_TIMEOUT_SECONDS,
                compression=None,  # a few small frames: deflate would cost more than it saves
                ping_interval=None,  # the socket lives for a few round trips, no keep-alive needed
                proxy=None,
                max_size=MAX_MESSAGE_BYTES,
                user_agent_header=rest.USER_AGENT,
            )
        except BaseException:
            tcp.close()  # websockets gave up on it, or never took it
            raise
    except ValueError:
        # websockets' answer to a redirect when it was handed the socket (it cannot follow one).
        attempt.error = "Redirect"
        raise UpstreamError(log_detail="Genesys webmessaging redirected the WebSocket to another URL") from None
    except InvalidStatus as exc:
        response = exc.response
        attempt.status = response.status_code
        attempt.correlation_id = rest.correlation_id(response.headers)
        raise _refused(response.status_code, rest.retry_after(response.headers), attempt) from None
    except TimeoutError:
        attempt.error = "TimeoutError"
        raise retries.Retryable(
            UpstreamTimeout(log_detail="Genesys webmessaging did not complete the handshake in time")
        ) from None
    except (OSError, InvalidHandshake) as exc:
        attempt.error = type(exc).__name__
        raise retries.Retryable(
            UpstreamUnavailable(log_detail=f"Genesys webmessaging unreachable ({attempt.error})")
        ) from None
    try:
        if socket.response is not None:
            attempt.status = socket.response.status_code
            attempt.correlation_id = rest.correlation_id(socket.response.headers)
        # websockets follows handshake redirects, across hosts too; the session token goes only to the host
        # configured (as the REST calls, which never follow redirects), so a redirected socket is closed unused.
        # Settings normalise the URL as websockets writes Host: lower case, no default port.
        if socket.request is None or rest.first_header(socket.request.headers, "Host") != urlsplit(url).netloc:
            raise UpstreamError(log_detail="Genesys webmessaging redirected the WebSocket to another host")
    except BaseException:
        socket.close()  # every way out but the open socket's return closes it
        raise
    return socket


def _refused(status: int, wait: int | None, attempt: retries.Attempt) -> Exception:
    detail = f"Genesys webmessaging refused the WebSocket handshake with {status}"
    correlation = attempt.correlation_id
    if status == 403:
        # Genesys' transport SDK reads a 403 here as access refused in general, not as the origin alone.
        return SessionRefused(
            log_detail=f"{detail} (access refused: check the deployment id, the deployment's allowed domains, "
            "and that web messaging is switched on and configured for it)",
            genesys_correlation_id=correlation,
        )
    if status == 429:
        return retries.Retryable(
            RateLimited(retry_after=wait, log_detail=detail, genesys_correlation_id=correlation),
            wait=wait,
        )
    if status >= 500:
        return retries.Retryable(UpstreamUnavailable(log_detail=detail, genesys_correlation_id=correlation))
    return UpstreamError(log_detail=detail, genesys_correlation_id=correlation)


def _mapped(error: GuestApiError, attempt: retries.Attempt, token: str) -> Exception:
    # Genesys' message goes to the log: never with the session token in it, should Genesys echo it (a signed-in
    # customer's auth JWT is one of the request's secrets, which redaction masks wherever it is called).
    detail = f"Genesys webmessaging answered {error}: {rest.excerpt(error.message, 200, {token: '[session token]'})}"
    correlation = attempt.correlation_id
    if error.code in (RATE_LIMITED, 429):
        return retries.Retryable(
            RateLimited(retry_after=error.retry_after, log_detail=detail, genesys_correlation_id=correlation),
            wait=error.retry_after,
        )
    if _retried(error.code):
        return retries.Retryable(UpstreamUnavailable(log_detail=detail, genesys_correlation_id=correlation))
    return UpstreamError(log_detail=detail, genesys_correlation_id=correlation)


def _retried(code: int) -> bool:
    """Codes that may pass on another attempt: rate limiting and Genesys' own failures."""
    return code in (RATE_LIMITED, 429) or code >= 5000 or 500 <= code < 600


def _configure(
    socket: ClientConnection, deployment_id: str, token: str, deadline: Deadline, auth_jwt: str | None = None
) -> bool:
    """Configure the session; True when Genesys made a new one. A read-only session (its conversation ended)
    gets a new conversation on the same token, as the transport SDK's startNewChat does, so the guest can write
    again. With ``auth_jwt``: configureAuthenticatedSession, ``data.code`` the auth JWT, answered alike."""
    message: dict[str, Any] = {"action": "configureSession", "deploymentId": deployment_id, "token": token}
    if auth_jwt is not None:
        message = {**message, "action": "configureAuthenticatedSession", "data": {"code": auth_jwt}}
    body = _request(socket, message, "SessionResponse", deadline)
    if body.get("readOnly") is not True:
        # connected: false without readOnly is not refused: Genesys' SDKs carry on with such a session too.
        return body.get("newSession") is True
    observability.audit(observability.GUEST_CONVERSATION_RESTARTED)
    _close_session(socket, token, deadline)
    body = _request(socket, {**message, "startNew": True}, "SessionResponse", deadline)
    if body.get("readOnly") is True:
        raise UpstreamError(log_detail="Genesys webmessaging kept the session read-only after startNew")
    return True


def _close_session(socket: ClientConnection, token: str, deadline: Deadline) -> None:
    """closeSession {closeAllConnections: true} and its SessionResponse (connected: false): the guest's other
    sockets get a ConnectionClosedEvent and reconnect to the new conversation. Genesys' Java SDK documents
    startNew alone, so a 4xxx refusal of closeSession does not stop the restart."""
    message = {"action": "closeSession", "token": token, "closeAllConnections": True}
    try:
        _request(socket, message, "SessionResponse", deadline)
    except GuestApiError as exc:
        if _retried(exc.code):
            raise


def _get_jwt(socket: ClientConnection, token: str, deadline: Deadline) -> tuple[str, int]:
    body = _request(socket, {"action": "getJwt", "token": token}, "JwtResponse", deadline)
    jwt, exp = body.get("jwt"), body.get("exp")
    # exp is a Long in the transport SDK and a Double in the Java SDK's model: any finite number, floored.
    if not (isinstance(jwt, str) and jwt and _is_number(exp)):
        raise UpstreamError(log_detail="Genesys webmessaging answered getJwt without a jwt and a numeric exp")
    return jwt, math.floor(exp)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _request(socket: ClientConnection, message: dict[str, Any], expected: str, deadline: Deadline) -> dict[str, Any]:
    """Send one action and wait for its answer: a frame of class ``expected`` or an error class, carrying our
    tracingId or none. Everything else is skipped, whatever its type. GuestApiError for an error answer;
    _SessionGone when Genesys says the session is gone (4006, 4007, SessionExpiredEvent)."""
    tracing_id = str(uuid.uuid4())
    socket.send(json.dumps({**message, "tracingId": tracing_id}))
    while True:
        left = deadline.remaining()
        if left <= 0:
            raise TimeoutError
        raw = socket.recv(timeout=min(RECEIVE_TIMEOUT_SECONDS, left))
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):
            raise UpstreamError(log_detail="Genesys webmessaging sent a frame that is not JSON") from None
        # Ours: our tracingId, or none (absent or null). A class that is not a string is no frame Genesys sends.
        if isinstance(frame, dict) and frame.get("tracingId") in (None, tracing_id):
            kind = frame.get("class")
            if isinstance(kind, str) and (body := _answer(frame, kind, expected, message["action"])) is not None:
                return body


def _answer(frame: dict[str, Any], kind: str, expected: str, action: str) -> dict[str, Any] | None:
    """The body of the awaited answer, None for a frame to skip; raises for what ends the wait."""
    code, body = frame.get("code"), frame.get("body")
    if kind == "SessionExpiredEvent":
        raise _SessionGone
    if kind == "ConnectionClosedEvent":
        raise _ConnectionsClosed
    if kind == expected and code == 200 and isinstance(body, dict):
        return body
    if kind == "TooManyRequestsErrorMessage" and isinstance(body, dict):
        retry_after = body.get("retryAfter")
        wait = None
        if _is_number(retry_after) and retry_after >= 0:
            # Capped before rounding: JSON admits Infinity, which math.ceil refuses.
            wait = math.ceil(min(retry_after, rest.MAX_RETRY_AFTER_SECONDS))
        raise GuestApiError(RATE_LIMITED, str(body.get("errorMessage", "")), wait)
    if kind == "string" and isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= MAX_CODE:
        if code in _SESSION_GONE:
            raise _SessionGone
        raise GuestApiError(code, body if isinstance(body, str) else "")
    if kind == expected or kind in _ERROR_CLASSES:
        raise UpstreamError(log_detail=f"Genesys webmessaging answered {action} with a {kind} it could not read")
    return None
