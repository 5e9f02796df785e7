"""Token events on EventBridge (moto): every issued token reaches the bus as docs/operations.md documents, without the
token; a failure to publish is logged and counted, bounded in time, and never costs the guest its token."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from guest_token import settings
from guest_token.observability import guest_ref

from tests.conftest import ORIGIN

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
SECTION = OPERATIONS[OPERATIONS.index("## Token events") :]
GUEST = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"


def documented_rule_pattern() -> dict[str, Any]:
    [pattern] = re.findall(r"matches it with `(\{.*?\})`", SECTION)
    return dict(json.loads(pattern))


def documented_detail_fields() -> set[str]:
    table = SECTION[SECTION.index("| field | meaning |") : SECTION.index("Publishing sits")]
    return set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))


@pytest.fixture
def subscriber(event_bus: str, env: pytest.MonkeyPatch) -> Any:
    """A queue that a rule with the documented event pattern feeds from the bus; returns a reader of it."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    events = boto3.client("events", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="crm-sync")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="guest-tokens", EventBusName=event_bus, EventPattern=json.dumps(documented_rule_pattern()))
    events.put_targets(Rule="guest-tokens", EventBusName=event_bus, Targets=[{"Id": "crm", "Arn": queue_arn}])
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return received


def metric(answer, name: str) -> list[float]:
    return [value for document in answer.metrics if name in document for value in document[name]]


def test_an_issued_token_reaches_the_bus_as_documented_without_the_token(invoke, subscriber):
    answer = invoke({"guestId": GUEST, "duration": "short", "scopes": ["webmessaging:guest:send"]})
    assert answer.status == 200

    [event] = subscriber()
    assert (event["source"], event["detail-type"]) == ("genesys-guest-token", "Guest Token Issued")
    assert answer.json["token"] not in json.dumps(event)
    [issued] = answer.events("token_issued")
    assert GUEST not in json.dumps(event)  # the id is a bearer value: only when the operator opts in
    assert event["detail"] == {
        "guestRef": guest_ref(GUEST),
        "newGuest": False,
        "scopes": ["webmessaging:guest:send"],
        "duration": "short",
        "expiresAt": answer.json["expiresAt"],
        "origin": ORIGIN,
        "correlationId": issued["correlation_id"],
        "genesysCorrelationId": issued["genesysCorrelationId"],
    }
    assert set(event["detail"]) == documented_detail_fields() - {"guestId", "newSession", "authenticated"}
    assert answer.events("token_event_published")[0]["eventId"] == event["id"]
    assert metric(answer, "TokenEventsPublished") == [1]


def test_a_new_guest_is_flagged_and_every_token_makes_one_event(invoke, subscriber):
    first, second = invoke({}), invoke({})
    events = subscriber()
    assert [event["detail"]["guestRef"] for event in events] == [
        guest_ref(first.json["guestId"]),
        guest_ref(second.json["guestId"]),
    ]
    assert all(event["detail"]["newGuest"] for event in events)


def test_the_guest_id_itself_travels_only_when_the_operator_opts_in(invoke, subscriber, env):
    env.setenv("TOKEN_EVENTS_INCLUDE_GUEST_ID", "true")
    answer = invoke({"guestId": GUEST})
    [event] = subscriber()
    assert event["detail"]["guestId"] == GUEST
    assert event["detail"]["guestRef"] == guest_ref(GUEST)
    assert GUEST not in json.dumps(answer.logs)  # the logs never carry it, opted in or not


def test_failed_requests_publish_nothing(invoke, emulator, subscriber):
    emulator.add_fault("guest-token", status=503, times=None)
    assert invoke({}).status == 503
    assert invoke({"duration": "forever"}).status == 422
    assert subscriber() == []


def test_without_a_bus_nothing_is_published_or_counted(invoke, event_bus):
    answer = invoke({})
    assert answer.status == 200
    assert not answer.events("token_event_published") and not answer.events("token_event_failed")
    assert metric(answer, "TokenEventsPublished") == metric(answer, "TokenEventsFailed") == []


def test_a_missing_bus_is_logged_and_counted_and_the_guest_still_gets_its_token(invoke, env, secrets_manager):
    env.setenv("TOKEN_EVENTS_BUS_NAME", "no-such-bus")
    answer = invoke({})
    assert answer.status == 200 and answer.json["token"]
    [failed] = answer.events("token_event_failed")
    assert failed["level"] == "WARNING"
    assert "ResourceNotFoundException" in failed["reason"]
    assert metric(answer, "TokenEventsFailed") == [1]
    assert answer.events("token_issued")


def test_an_unreachable_eventbridge_is_one_failed_attempt(invoke, env, event_bus):
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    env.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9")  # nothing listens there
    answer = invoke({})
    assert answer.status == 200
    [failed] = answer.events("token_event_failed")
    assert "EndpointConnectionError" in failed["reason"]
    assert metric(answer, "TokenEventsFailed") == [1]


@pytest.fixture
def silent_server() -> Iterator[dict[str, Any]]:
    """A TCP server that accepts connections and never answers: an EventBridge that hangs."""
    listener = socket.create_server(("127.0.0.1", 0))
    state: dict[str, Any] = {"url": f"http://127.0.0.1:{listener.getsockname()[1]}", "connections": []}

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            state["connections"].append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield state
    listener.close()
    for connection in state["connections"]:
        connection.close()


def test_a_hanging_eventbridge_is_given_up_after_one_read_timeout(invoke, env, event_bus, silent_server):
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    env.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", silent_server["url"])
    answer = invoke({})
    assert answer.status == 200
    [failed] = answer.events("token_event_failed")
    assert "ReadTimeoutError" in failed["reason"]
    assert len(silent_server["connections"]) == 1  # one attempt: no retry doubles the guest's wait


def test_publishing_is_skipped_when_the_request_has_too_little_time_left(invoke, env, event_bus, subscriber):
    # A warm container (its secret and access token cached, no bus yet): the token below takes milliseconds of
    # its short budget, not the seconds of a cold start on a busy machine.
    env.delenv("TOKEN_EVENTS_BUS_NAME")
    settings.reset()
    assert invoke({}).status == 200
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    settings.reset()
    # 2.2 s of Lambda time is a 1.9 s budget: less than the 2 s a publish may take.
    answer = invoke({}, timeout_seconds=2.2)
    assert answer.status == 200
    [failed] = answer.events("token_event_failed")
    assert "not enough time" in failed["reason"]
    assert subscriber() == []
