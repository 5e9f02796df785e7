"""The demo page with `make run`'s default guest-token source, `webmessaging`: the service opens (or resumes)
the guest's session on the emulator's Web Messaging Guest API and answers its JWT; the guest id the widget
keeps is the session token, the key to the guest's conversation, so it may be in the client's storage entry
and nowhere else (the conftest's after-test check looks at the console and the page's storage)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID
from tests.browser.conftest import STORAGE_KEY, LocalStack, Widget, local_stack

pytestmark = pytest.mark.browser

SEND = "webmessaging:guest:send"
ANSWER_FIELDS = {"token", "guestId", "expiresIn", "expiresAt", "newSession", "deploymentId", "webSocketUrl"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """This module's `make run`: no GUEST_TOKEN_SOURCE in its environment, so its default source."""
    with local_stack(source=None) as started:
        yield started


def claims(stack: LocalStack, token: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(f"{stack.genesys}/.well-known/jwks.json").get_signing_key_from_jwt(token).key
    return dict(jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False}))


def sessions(stack: LocalStack) -> list[dict[str, Any]]:
    """The emulator's guest sessions, oldest first (ids, not tokens)."""
    return stack.genesys_control("GET", "sessions")["sessions"]


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def test_a_new_guest_gets_a_session_token_and_its_jwt(stack: LocalStack, widget: Widget):
    widget.open(stack.demo)
    widget.wait_for_tokens(1)

    assert widget.sent == [{}]  # a new visitor: no guestId, and neither duration nor scopes
    [answer] = widget.tokens
    assert set(answer) == ANSWER_FIELDS  # no scopes with webmessaging
    assert answer["newSession"] is True
    assert answer["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert answer["webSocketUrl"].startswith("ws://127.0.0.1:")
    assert DEMO_DEPLOYMENT_ID in answer["webSocketUrl"]
    guest_id = answer["guestId"]
    assert is_uuid(guest_id)
    assert widget.text("guest-id") == guest_id
    assert widget.stored_guest_id() == guest_id
    assert widget.text("status") == "Token ready"
    assert widget.text("scopes") == "session new"

    # The JWT is the emulator's, for the session it opened; its subject is the session's id, not the token.
    [session] = sessions(stack)
    token_claims = claims(stack, answer["token"])
    assert token_claims["sub"] == session["id"] != guest_id
    assert token_claims["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert session["deploymentId"] == DEMO_DEPLOYMENT_ID and not session["expired"]

    # The console capture works (the demo's line is there) and the line carries no secret.
    [ready] = [line for line in widget.console if "guest-token demo: token ready" in line]
    assert answer["token"] not in ready and guest_id not in ready


def test_a_reload_resumes_the_session_and_a_new_guest_starts_another(stack: LocalStack, widget: Widget):
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    first = widget.tokens[0]["guestId"]

    widget.page.reload()
    widget.wait_for_tokens(1)
    assert widget.sent[1] == {"guestId": first}
    resumed = widget.tokens[1]
    assert resumed["guestId"] == first
    assert resumed["newSession"] is False
    assert widget.text("guest-id") == widget.stored_guest_id() == first
    assert widget.text("scopes") == "session resumed"
    assert len(sessions(stack)) == 1
    assert claims(stack, resumed["token"])["sub"] == claims(stack, widget.tokens[0]["token"])["sub"]

    widget.page.get_by_role("button", name="New guest (reset)").click()
    widget.wait_for_tokens(2)
    assert widget.sent == [{}, {"guestId": first}, {}]
    fresh = widget.tokens[2]
    second = fresh["guestId"]
    assert is_uuid(second) and second != first
    assert fresh["newSession"] is True
    assert widget.text("guest-id") == widget.stored_guest_id() == second
    assert widget.text("scopes") == "session new"
    assert len(sessions(stack)) == 2
    # The client's entry holds the current guest id alone; nothing else is stored.
    assert widget.page.evaluate("() => ({...localStorage})") == {STORAGE_KEY: second}
    assert widget.page.evaluate("() => ({...sessionStorage})") == {}
    assert widget.page.context.cookies() == []

    widget.page.reload()
    widget.wait_for_tokens(1)
    assert widget.sent[3] == {"guestId": second}
    assert widget.tokens[3]["guestId"] == second
    assert widget.tokens[3]["newSession"] is False


def test_a_session_genesys_expired_is_replaced_and_the_new_id_kept(stack: LocalStack, widget: Widget):
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    first = widget.tokens[0]["guestId"]
    stack.genesys_control("POST", "sessions/expire", {"token": first})

    # The chat hears Genesys' SessionExpiredEvent and asks the token client for a new session by itself.
    widget.wait_for_tokens(2)
    assert widget.sent[1] == {"guestId": first}
    replaced = widget.tokens[1]
    assert replaced["newSession"] is True
    assert is_uuid(replaced["guestId"]) and replaced["guestId"] != first
    assert widget.text("guest-id") == widget.stored_guest_id() == replaced["guestId"]
    assert widget.text("scopes") == "session new"

    widget.page.reload()
    widget.wait_for_tokens(1)
    assert widget.sent[2] == {"guestId": replaced["guestId"]}
    assert widget.tokens[2]["newSession"] is False


@pytest.mark.parametrize(
    ("query", "body"),
    [({"duration": "short"}, {"duration": "short"}), ({"scopes": SEND}, {"scopes": [SEND]})],
    ids=["duration", "scopes"],
)
def test_duration_or_scopes_are_refused_and_not_retried(
    stack: LocalStack, widget: Widget, query: dict[str, str], body: dict[str, Any]
):
    widget.open(stack.demo, **query)

    error = widget.wait_for_error("invalid_request")
    assert widget.sent == [body]
    assert error["retryIn"] == ""  # test_widget.py checks on a fake clock that such an error is never retried
    assert widget.text("error-status") == "(HTTP 422)"
    assert widget.text("error-retry") == "Not retrying."
    assert widget.tokens == []
    assert sessions(stack) == []  # refused before Genesys was asked
    assert widget.stored_guest_id() is None
