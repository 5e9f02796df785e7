"""The request's time budget, computed once from the Lambda context and passed down.

Every wait and every socket timeout is bounded by it, so the function answers before Lambda kills it
and before API Gateway gives up at 29 s. Socket timeouts bound each read, not a whole answer: a peer that
trickles bytes (headers included, in libraries we do not drive byte by byte, such as botocore) would outlast
them. So the network work of a request also runs under an alarm at the deadline (``enforced``), which
interrupts whatever blocking call is still running then.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from .errors import UpstreamTimeout

# Time kept back to build the response and flush logs and metrics.
MARGIN_SECONDS = 0.3
# The alarm's delay after the deadline: half the margin, so the answer still fits.
ALARM_GRACE_SECONDS = MARGIN_SECONDS / 2
# API Gateway's REST integration timeout.
API_GATEWAY_LIMIT_SECONDS = 29.0


class DeadlineExceeded(BaseException):
    """Raised by the deadline's alarm inside the blocking call that overran. A BaseException, so that no
    library's ``except Exception`` (a retry loop, say) takes it for a failure to retry."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    expires_at: float  # time.monotonic() value

    @classmethod
    def from_context(cls, context: _Context) -> Deadline:
        seconds = min(context.get_remaining_time_in_millis() / 1000, API_GATEWAY_LIMIT_SECONDS) - MARGIN_SECONDS
        return cls(time.monotonic() + seconds)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def check(self, what: str) -> float:
        """The seconds left; raises UpstreamTimeout when none are."""
        left = self.remaining()
        if left <= 0:
            raise UpstreamTimeout(log_detail=f"no time left for {what}")
        return left

    @contextlib.contextmanager
    def enforced(self) -> Iterator[None]:
        """An alarm at the deadline for the block, on the main thread (where Lambda runs the handler; signals
        cannot reach other threads, so a threaded local server relies on the socket timeouts alone)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGALRM, _alarm)
        # Just after the deadline: socket timeouts (never past the deadline) end an ordinary slow call first,
        # with their own detail; the alarm catches what they cannot, within the margin kept for the answer.
        signal.setitimer(signal.ITIMER_REAL, max(self.remaining(), 0) + ALARM_GRACE_SECONDS)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
