"""Genesys Cloud, one module per protocol; each is the only place that knows its URLs, payloads and codes.

- ``retries``: how any Genesys call is attempted (bounded attempts, waits and timeouts inside the deadline),
  shared by both transports.
- ``rest``: the HTTP calls behind OAuth: the client-credentials token and the web deployment lookup.
- ``guest_token_contract``: the tutorial's ``generate-token`` call (the ``rest`` source); not public Genesys API.
- ``guest_api``: the public Web Messaging Guest API over WebSocket (the ``webmessaging`` source).
- ``web_deployments_token``: the web deployments token calls of signed-in customers (code exchange, refresh,
  revoke), which need no access token.
"""

from __future__ import annotations

from . import rest
from .retries import MAX_ATTEMPTS

__all__ = ["MAX_ATTEMPTS", "reset"]


def reset() -> None:
    """For tests: fresh connection pools."""
    rest.reset()
