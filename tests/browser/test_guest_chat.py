"""The demo's chat panel (widget/guest-chat.js) in Debian's Chromium, with `make run`'s default source: the
guest joins the session the service issued over the emulator's Web Messaging Guest API, chats with the
emulator's agent, and the chat survives what Genesys and networks do to it. Every test ends with the
conftest's check that no JWT or session token reached the console, the page's storage or its URL."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.conftest import ARTIFACTS, REPO, LocalStack, Widget, local_stack
from tests.browser.test_widget import paused_clock

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


# The actions of the frames the page sent, counted in the page (after route_web_socket's script, so on the
# WebSocket class it installed): a frame a timer sends is counted by the time clock.run_for returns.
COUNT_FRAMES = """(() => {
    window.sentActions = [];
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
        sentActions.push(JSON.parse(data).action);
        return send.call(this, data);
    };
})()"""


def configures_sent(widget: Widget) -> int:
    return int(widget.page.evaluate("sentActions.filter((action) => action === 'configureSession').length"))


def test_a_4029_is_waited_out(stack: LocalStack, widget: Widget):
    before = fault_on_the_pages_socket(stack, widget, code=4029, retry_after=2)
    widget.page.add_init_script(COUNT_FRAMES)
    paused_clock(widget)  # the wait is the page's clock's: "not before 2 s" holds however slow the machine
    widget.open(stack.demo)
    widget.wait_for_tokens(1)

    error = widget.wait_for_error("4029")
    assert float(error["retryIn"]) == 2  # Genesys' retryAfter
    assert configures_sent(widget) == 1
    widget.page.clock.run_for(1_900)
    assert configures_sent(widget) == 1  # not before its 2 s
    assert widget.text("chat-state") != "Connected"
    widget.page.clock.run_for(200)
    assert configures_sent(widget) == 2
    connected(widget)
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


def test_a_message_sent_while_reconnecting_shows_as_pending_and_goes_out_once_connected(
    stack: LocalStack, widget: Widget
):
    relayed: list[WebSocketRoute] = []
    held: list[WebSocketRoute] = []
    hold = False

    def relay(route: WebSocketRoute) -> None:
        if hold:
            held.append(route)  # open for the page, but nothing answers it: the chat stays "Reconnecting…"
        else:
            route.connect_to_server()
            relayed.append(route)

    widget.page.route_web_socket(re.compile(r"^ws://"), relay)
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    chat(widget, "One")

    hold = True
    relayed[-1].close(code=1011, reason="gone")
    state = widget.page.locator("#chat-state")
    expect(state).to_have_text("Reconnecting…")
    widget.page.get_by_label("Message").fill("Still there?")
    widget.page.get_by_role("button", name="Send").click()

    pending = widget.page.locator("#messages li[data-pending]")
    expect(pending).to_have_text("Still there?")
    assert pending.get_attribute("data-pending") == "sending"
    assert pending.evaluate("item => getComputedStyle(item, '::after').content") == '"Queued: sent once connected"'
    assert widget.page.get_by_label("Message").input_value() == ""
    # The socket is down, the token is not: two badges, each saying its own.
    assert state.get_attribute("data-state") == "reconnecting"
    assert widget.text("status") == "Token ready"
    ARTIFACTS.mkdir(exist_ok=True)
    widget.page.screenshot(path=ARTIFACTS / "chat-reconnecting.png")

    hold = False
    for route in held:  # the page's socket closes; its next one reaches the emulator
        route.close(code=1011, reason="gone")
    connected(widget)
    expect(widget.page.locator('#messages li[data-from="agent"]').last).to_have_text(AGENT + "Still there?")
    expect(pending).to_have_count(0)
    assert [text for who, text in messages(widget) if who == "guest"] == ["One", "Still there?"]
    assert len(sessions(stack)) == 1


def test_a_message_genesys_refuses_stays_in_the_list_as_not_sent(stack: LocalStack, widget: Widget):
    def relay(route: WebSocketRoute) -> None:
        server = route.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("message", {}).get("text") == "Refuse me":  # Genesys' error for it, not the emulator's
                refusal = {"type": "response", "class": "string", "code": 4000, "body": "Message refused"}
                route.send(json.dumps({**refusal, "tracingId": frame["tracingId"]}))
            else:
                server.send(message)

        route.on_message(to_server)

    widget.page.route_web_socket(re.compile(r"^ws://"), relay)
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    chat(widget, "Fine")
    widget.page.get_by_label("Message").fill("Refuse me")
    widget.page.get_by_role("button", name="Send").click()

    failed = widget.page.locator('#messages li[data-pending="failed"]')
    expect(failed).to_have_text("Refuse me")
    assert failed.get_attribute("data-code") == "4000"
    assert widget.page.locator('#log li[data-kind="error"]', has_text="message not sent: 4000").count() == 1
    chat(widget, "Still fine")
    assert messages(widget)[-3:] == [("guest", "Refuse me"), ("guest", "Still fine"), ("agent", AGENT + "Still fine")]


def test_the_demo_fits_a_390_px_phone_screen(stack: LocalStack, widget: Widget):
    widget.page.set_viewport_size({"width": 390, "height": 844})
    widget.open(stack.demo)
    widget.wait_for_tokens(1)
    connected(widget)
    chat(widget, "Hello from my phone, with a long sentence that has to wrap inside its bubble")
    widget.page.wait_for_function("document.fonts.status === 'loaded'")

    layout = widget.page.evaluate(
        """() => {
            const box = (selector) => {
                const r = document.querySelector(selector).getBoundingClientRect();
                return { left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY };
            };
            const wide = [...document.querySelectorAll('body *')]
                .filter((element) => element.getBoundingClientRect().right > innerWidth + 0.5)
                .map((element) => element.id || element.tagName);
            const line = parseFloat(getComputedStyle(document.body).fontSize) * 1.6;
            const tallest = Math.max(...[...document.querySelectorAll('dd')].map((dd) => dd.offsetHeight));
            return {
                width: innerWidth, scrollWidth: document.documentElement.scrollWidth, wide,
                height: document.documentElement.scrollHeight, line, tallest,
                chat: box('#chat'), composer: box('#composer'), send: box('#send'), status: box('#status'),
            };
        }"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    widget.page.screenshot(path=ARTIFACTS / "demo-390px.png", full_page=True)
    assert layout["width"] == 390
    assert layout["scrollWidth"] <= 390 and layout["wide"] == [], layout  # no horizontal overflow
    chat_box, composer, send = layout["chat"], layout["composer"], layout["send"]
    assert chat_box["left"] <= composer["left"] and composer["right"] <= chat_box["right"], layout
    assert send["right"] <= chat_box["right"] and composer["bottom"] <= chat_box["bottom"], layout
    assert layout["status"]["top"] >= chat_box["bottom"], layout  # one column: the token's state below the chat
    assert layout["tallest"] <= 3 * layout["line"], layout  # no detail wraps a character per line
    assert layout["height"] < 2000, layout  # about two screens, not four


# 8 KB until issue 23: every failure of the history call (network, HTTP, not JSON) and a WebSocket URL the
# browser refuses now reach `chaterror` as coded GuestChatErrors, about 180 bytes gzipped. Finding them by
# cutting the modules' few comments or their error messages would cost more than it saves, so the budget
# grows by half a kilobyte, leaving room for about two such fixes.
SIZE_BUDGET_BYTES = 8 * 1024 + 512
# Signed-in customers (issue 24) did not fit in the two modules: their client is a third module, which only a
# page that signs customers in loads, with a budget of its own; the two keep theirs.
SIGN_IN_BUDGET_BYTES = 2 * 1024


def test_both_widget_modules_together_stay_under_8_5_kb_gzipped():
    # What a page downloads with no build step: each module as served, compressed on its own.
    sizes = {path.name: len(gzip.compress(path.read_bytes(), 9)) for path in (REPO / "widget").glob("*.js")}
    assert set(sizes) == {"guest-token-client.js", "guest-chat.js", "guest-sign-in.js"}
    sign_in = sizes.pop("guest-sign-in.js")
    print(f"widget modules gzipped: {sizes}, together {sum(sizes.values())} of {SIZE_BUDGET_BYTES} bytes")
    print(f"and for signed-in customers guest-sign-in.js: {sign_in} of {SIGN_IN_BUDGET_BYTES} bytes")
    assert sum(sizes.values()) < SIZE_BUDGET_BYTES, sizes
    assert sign_in < SIGN_IN_BUDGET_BYTES, sign_in
