"""How a Genesys call is attempted, whatever its transport: at most MAX_ATTEMPTS attempts, each one's
timeout and every wait between them inside the request's deadline.

An attempt either returns, raises a ServiceError that is final, or raises ``Retryable`` carrying the error
to answer if no attempt is left and the wait Genesys asked for (else urllib3's backoff with jitter). Every
attempt is logged and measured once, here, with whatever it recorded on its ``Attempt``.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from urllib3.util import Retry

from .. import observability
from ..budget import Deadline
from ..errors import ServiceError

MAX_ATTEMPTS = 3
# Only the backoff schedule is used: the second attempt at once, the third after 0.5-0.75 s.
_BACKOFF = Retry(total=MAX_ATTEMPTS - 1, backoff_factor=0.25, backoff_jitter=0.25, backoff_max=2.0)


class Retryable(Exception):
    """``unsent``: the request surely never reached Genesys (no connection was made), so even a request Genesys
    must not see twice may be sent again."""

    def __init__(self, error: ServiceError, *, wait: float | None = None, unsent: bool = False) -> None:
        super().__init__(error.log_detail)
        self.error = error
        self.wait = wait
        self.unsent = unsent


@dataclass
class Attempt:
    """One attempt: the seconds it may take as a whole, and what it saw (for its log line)."""

    number: int
    timeout: float
    status: int | None = None
    error: str | None = None
    correlation_id: str | None = None


# Attempts a call may make in the current context: MAX_ATTEMPTS, or 1 for a replay (see single_attempt).
_allowed = contextvars.ContextVar("genesys_attempts", default=MAX_ATTEMPTS)


@contextlib.contextmanager
def single_attempt() -> Iterator[None]:
    """Calls made in the block get one attempt: a replay (after Genesys refused the access token) must not
    multiply the calls a request makes."""
    token = _allowed.set(1)
    try:
        yield
    finally:
        _allowed.reset(token)


def attempt[T](call: str, deadline: Deadline, run: Callable[[Attempt], T]) -> T:
    backoff = _BACKOFF
    failure: Retryable | None = None
    allowed = _allowed.get()
    for number in range(1, allowed + 1):
        current = Attempt(number=number, timeout=deadline.check(f"Genesys {call}"))
        started = time.perf_counter()
        succeeded = False
        with observability.upstream_segment(call):
            try:
                result = run(current)
                # An answer the caller handles itself (a 401 it replays, a 4xx it maps) is not a success: it
                # keeps its own log line.
                succeeded = current.status is None or current.status < 400
                return result
            except Retryable as exc:
                failure = exc
            finally:
                observability.upstream_call(
                    call,
                    attempt=number,
                    succeeded=succeeded,
                    status=current.status,
                    error=current.error,
                    latencyMs=round((time.perf_counter() - started) * 1000, 2),
                    genesysCorrelationId=current.correlation_id,
                )
        if number == allowed:
            break
        backoff = backoff.increment()
        wait = failure.wait if failure.wait is not None else backoff.get_backoff_time()
        if wait >= deadline.remaining():
            observability.audit(observability.RETRY_ABANDONED, warning=True, call=call, waitSeconds=wait)
            break
        time.sleep(wait)
    assert failure is not None  # the loop ran at least once and every pass that did not return set it
    raise failure.error
