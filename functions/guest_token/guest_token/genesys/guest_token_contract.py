"""The tutorial's guest-token contract (the ``rest`` source), and nothing else.

``POST {api base}{GENESYS_GUEST_TOKEN_PATH}`` with ``{"guestId", "expirationDurationSeconds", "scopes"}``,
answered ``{"token": "<JWT>"}``. This call is NOT in Genesys Cloud's public API: it is the contract of the
tutorial this service started from, for organisations that put such an endpoint in front of Genesys. Its
path is overridable; its payload and answer live here alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..budget import Deadline
from ..errors import UpstreamError
from ..settings import Settings
from . import rest


@dataclass(frozen=True)
class GuestToken:
    token: str = field(repr=False)
    correlation_id: str | None


def generate_guest_token(
    settings: Settings,
    access_token: str,
    *,
    guest_id: str,
    duration_seconds: int,
    scopes: tuple[str, ...],
    deadline: Deadline,
) -> GuestToken:
    answer = rest.send(
        "guest-token",
        "POST",
        f"{settings.api_base_url}{settings.guest_token_path}",
        headers={"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"},
        body=json.dumps({"guestId": guest_id, "expirationDurationSeconds": duration_seconds, "scopes": list(scopes)}),
        deadline=deadline,
        secrets={guest_id: "[guest id]"},
    )
    rest.check_access_token_accepted("guest-token", answer)
    if answer.status != 200:
        raise rest.failure("guest-token", answer)
    token = answer.json().get("token")
    if not isinstance(token, str) or not token:
        raise UpstreamError(
            log_detail="Genesys answered 200 without a token", genesys_correlation_id=answer.correlation_id
        )
    return GuestToken(token=token, correlation_id=answer.correlation_id)
