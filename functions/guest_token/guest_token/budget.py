"""The request's time budget, computed once from the Lambda context and passed down.

Every wait and every socket timeout is bounded by it, so the function answers before Lambda kills it
and before API Gateway gives up at 29 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from .errors import UpstreamTimeout

# Time kept back to build the response and flush logs and metrics.
MARGIN_SECONDS = 0.3
# API Gateway's REST integration timeout.
API_GATEWAY_LIMIT_SECONDS = 29.0


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
