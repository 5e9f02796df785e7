"""The demo's chat panel (widget/guest-chat.js) in Debian's Chromium, with `make run`'s default source: the
guest joins the session the service issued over the emulator's Web Messaging Guest API, chats with the
emulator's agent, and the chat survives what Genesys and networks do to it. Every test ends with the
conftest's check that no JWT or session token reached the console, the page's storage or its URL."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.conftest import ARTIFACTS, REPO, LocalStack, Widget, local_stack

pytestmark = pytest.mark.browser

AGENT = "Thanks! You wrote: "


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with local_stack(source=None) as started:
        yield started


def sessions(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.genesys_control("GET", "sessions")["sessions"]


def ws_counts(stack: LocalStack) -> dict[str, int]:
    return stack.genesys_control("GET", "requests")["webMessagingCounts"]


def messages(widget: Widget) -> list[tuple[str, str]]:
    return [
        (item.get_attribute("data-from") or "", item.inner_text()) for item in widget.page.locator("#messages li").all()
    ]


def connected(widget: Widget, timeout: float = 15_000) -> None:
    expect(widget.page.locator("#chat-state")).to_have_text("Connected", timeout=timeout)


def chat(widget: Widget, text: str) -> None:
    """Send ``text`` and wait for the agent's answer to it."""
    widget.page.get_by_label("Message").fill(text)
    widget.page.get_by_role("button", name="Send").click()
    expect(widget.page.locator('#messages li[data-from="agent"]').last).to_have_text(AGENT + text)


def test_a_guest_chats_reloads_and_finds_the_conversation_then_starts_anew(stack: LocalStack, widget: Widget):
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    assert messages(widget) == []

    widget.page.get_by_label("Message").fill("Hello, is anyone there?")
    widget.page.get_by_role("button", name="Send").click()
    expect(widget.page.locator('#messages li[data-from="agent"]')).to_have_text(AGENT + "Hello, is anyone there?")
    # The agent typed before answering (shown for a moment, so the activity log is where the test finds it).
    assert widget.page.locator('#log li[data-typing="On"]').count() == 1
    expect(widget.page.locator("#typing")).to_be_hidden()
    chat(widget, "Where is my order?")
    conversation = [
        ("guest", "Hello, is anyone there?"),
        ("agent", AGENT + "Hello, is anyone there?"),
        ("guest", "Where is my order?"),
        ("agent", AGENT + "Where is my order?"),
    ]
    assert messages(widget) == conversation
    ARTIFACTS.mkdir(exist_ok=True)
    widget.page.screenshot(path=ARTIFACTS / "chat.png")

    widget.page.reload()
    widget.wait_for_tokens(1)
    connected(widget)
    expect(widget.page.locator("#messages li")).to_have_count(4)
    assert messages(widget) == conversation
    # The history came from Genesys' guest REST call, authorised with the JWT the service issued.
    assert widget.history_auth[-1] == f"Bearer {widget.tokens[-1]['token']}"
    assert len(sessions(stack)) == 1

    widget.page.get_by_role("button", name="New guest (reset)").click()
    widget.wait_for_tokens(2)
    connected(widget)
    expect(widget.page.locator("#messages li")).to_have_count(0)
    chat(widget, "A new question")
    assert messages(widget) == [("guest", "A new question"), ("agent", AGENT + "A new question")]
    assert len(sessions(stack)) == 2
    assert widget.tokens[-1]["guestId"] != widget.tokens[0]["guestId"]


@pytest.mark.parametrize("action", ["expire", "end"])
def test_an_expired_or_ended_session_is_replaced_without_the_guest_doing_anything(
    stack: LocalStack, widget: Widget, action: str
):
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    chat(widget, "Before")
    first = widget.tokens[0]["guestId"]

    stack.genesys_control("POST", f"sessions/{action}", {"token": first})

    widget.wait_for_tokens(2)  # the chat asked the token client for a new session by itself
    connected(widget)
    expect(widget.page.locator("#messages li")).to_have_count(0)  # a new conversation
    replaced = widget.tokens[-1]
    assert replaced["newSession"] is True
    if action == "expire":
        assert replaced["guestId"] != first  # Genesys forgot the session token: a new one, kept
        assert widget.stored_guest_id() == replaced["guestId"]
    else:
        assert replaced["guestId"] == first  # the same session token, a new conversation on it
    chat(widget, "After")
    assert messages(widget) == [("guest", "After"), ("agent", AGENT + "After")]


def test_a_dropped_socket_reconnects_and_the_chat_goes_on(stack: LocalStack, widget: Widget):
    routes: list[WebSocketRoute] = []

    def relay(route: WebSocketRoute) -> None:
        route.connect_to_server()  # the real emulator behind; the test can hang up on the page's side
        routes.append(route)

    widget.page.route_web_socket(re.compile(r"^ws://"), relay)
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    chat(widget, "One")

    routes[-1].close(code=1011, reason="gone")
    expect(widget.page.locator("#chat-state")).to_have_text("Reconnecting…")
    widget.wait_for_error("connection_lost")
    connected(widget)
    assert len(routes) == 2
    chat(widget, "Two")
    assert [text for who, text in messages(widget) if who == "guest"] == ["One", "Two"]
    assert len(sessions(stack)) == 1
    assert len(widget.tokens) == 1  # the same session and JWT: no new token was needed


def fault_on_the_pages_socket(stack: LocalStack, widget: Widget, **fault: Any) -> dict[str, int]:
    """Set ``fault`` on configure-session once the page opens its socket: the service's own Guest API calls
    (made before the page has a token) are not affected. Returns the emulator's counts at that moment."""
    counts: dict[str, int] = {}

    def relay(route: WebSocketRoute) -> None:
        if not counts:
            counts.update(ws_counts(stack))
            stack.genesys_control("POST", "faults", {"route": "configure-session", **fault})
        route.connect_to_server()

    widget.page.route_web_socket(re.compile(r"^ws://"), relay)
    return counts


def test_a_socket_genesys_drops_while_configuring_is_opened_again(stack: LocalStack, widget: Widget):
    before = fault_on_the_pages_socket(stack, widget, drop=True)
    widget.open(stack.demo)
    widget.wait_for_tokens(1)

    error = widget.wait_for_error("connection_lost")
    assert 0 < float(error["retryIn"]) <= 1
    connected(widget)
    chat(widget, "Made it")
    assert ws_counts(stack)["configure-session"] - before["configure-session"] == 2


def test_a_4029_is_waited_out(stack: LocalStack, widget: Widget):
    before = fault_on_the_pages_socket(stack, widget, code=4029, retry_after=2)
    widget.open(stack.demo)
    widget.wait_for_tokens(1)

    error = widget.wait_for_error("4029")
    started = time.monotonic()
    assert float(error["retryIn"]) == 2  # Genesys' retryAfter
    expect(widget.page.locator("#chat-state")).not_to_have_text("Connected", timeout=1_000)
    connected(widget)
    assert time.monotonic() - started >= 1.5
    chat(widget, "Patience")
    assert ws_counts(stack)["configure-session"] - before["configure-session"] == 2
    assert len(widget.tokens) == 1  # waited out on the same socket, with the same session


def test_a_page_on_an_origin_not_allowed_gets_no_session(stack: LocalStack, widget: Widget):
    widget.open(stack.blocked_demo)

    widget.wait_for_error("network_error")
    assert widget.text("chat-state") == "Waiting for a session…"
    assert widget.page.get_by_label("Message").is_disabled()
    assert sessions(stack) == []
    assert ws_counts(stack)["ws-connect"] == 0


SIZE_BUDGET_BYTES = 8 * 1024


def test_both_widget_modules_together_stay_under_8_kb_gzipped():
    # What a page downloads with no build step: each module as served, compressed on its own.
    sizes = {path.name: len(gzip.compress(path.read_bytes(), 9)) for path in (REPO / "widget").glob("*.js")}
    assert set(sizes) == {"guest-token-client.js", "guest-chat.js"}
    print(f"widget modules gzipped: {sizes}, together {sum(sizes.values())} of {SIZE_BUDGET_BYTES} bytes")
    assert sum(sizes.values()) < SIZE_BUDGET_BYTES, sizes
