"""Token events: one EventBridge event per issued token, when TOKEN_EVENTS_BUS_NAME is set, so that other
systems (a CRM, an SDK backend) can keep track of guests. The event never carries the token.

Best effort on the request path: a publish is one attempt with short timeouts, skipped when the request's
deadline could not absorb it, and any failure is logged and counted but never fails the token request.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from . import observability
from .budget import Deadline, DeadlineExceeded
from .settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "genesys-guest-token"
DETAIL_TYPE = "Guest Token Issued"
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 1.0
# The longest a publish can take: one attempt, no retries (a retry would double the wait on the guest).
PUBLISH_BUDGET_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


@functools.cache
def _client() -> EventBridgeClient:
    # Created, and boto3 imported, on first use: a container without a bus never pays for either.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    observability.trace_aws_calls()
    return boto3.client("events", config=config)


def publish_token_issued(
    settings: Settings,
    deadline: Deadline,
    *,
    guest_id: str,
    guest_ref: str,
    new_guest: bool,
    new_session: bool | None,
    scopes: list[str] | None,
    duration: str | None,
    authenticated: bool | None = None,
    expires_at: str,
    origin: str,
    correlation_id: str | None,
    genesys_correlation_id: str | None,
) -> None:
    bus = settings.token_events_bus_name
    if bus is None:
        return
    if deadline.remaining() < PUBLISH_BUDGET_SECONDS:
        observability.token_event_failed("not enough time left in the request to publish")
        return
    detail: dict[str, object] = {
        "guestRef": guest_ref,
        "newGuest": new_guest,
        "newSession": new_session,
        "scopes": scopes,
        "duration": duration,
        "authenticated": authenticated,
        "expiresAt": expires_at,
        "origin": origin,
        "correlationId": correlation_id,
        "genesysCorrelationId": genesys_correlation_id,
    }
    # The id itself is a bearer value (with webmessaging, the key to the guest's conversation): only when
    # the operator opted in, for a consumer that must act as the guest.
    if settings.token_events_include_guest_id:
        detail["guestId"] = guest_id
    detail = {key: value for key, value in detail.items() if value is not None}
    entry: PutEventsRequestEntryTypeDef = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "EventBusName": bus,
    }
    # Imported with boto3 on the first publish: a container without a bus never loads botocore for this.
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        answer = _client().put_events(Entries=[entry])
    except DeadlineExceeded:
        # Best effort: the token was issued; an event that did not fit in the time left is not worth the token.
        observability.token_event_failed(f"PutEvents on {bus}: out of time")
        return
    except ClientError as exc:
        observability.token_event_failed(f"PutEvents on {bus}: {exc.response.get('Error', {}).get('Code', '')}")
        return
    except BotoCoreError as exc:
        observability.token_event_failed(f"PutEvents on {bus}: {type(exc).__name__}")
        return
    [result] = answer["Entries"]
    if answer.get("FailedEntryCount") or "EventId" not in result:
        observability.token_event_failed(f"PutEvents on {bus} refused the event: {result.get('ErrorCode', '')}")
        return
    observability.token_event_published(result["EventId"])


def reset() -> None:
    """For tests: a new client (and so one for the current endpoint)."""
    _client.cache_clear()
