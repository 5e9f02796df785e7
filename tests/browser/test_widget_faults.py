"""The widget modules against a token service and a Guest API that misbehave: Playwright answers the token
request, the history call and the WebSocket (scripted per test), and the page's clock stands still until the
test moves it, so that backoffs of minutes take no time and what happens in them does not depend on how fast
the machine is. Each test checks what a guest would notice: messages lost or sent twice, requests hammered, a
chat stuck or showing someone else's conversation."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute

from tests.browser.conftest import LocalStack, Widget

pytestmark = pytest.mark.browser

GUEST_A = "6f1c1a52-59a1-4f4b-9a55-1f6a3c7e0a01"
GUEST_B = "6f1c1a52-59a1-4f4b-9a55-1f6a3c7e0a02"
SETUP = """async (options) => {
    const { createGuestTokenClient, GuestTokenError } = await import('/guest-token-client.js');
    const { createGuestChat, GuestChatError } = await import('/guest-chat.js');
    window.events = [];
    // Every error a page is handed is its module's error class with a code (checked after each test).
    window.uncoded = [];
    const coded = (kind) => (e) => (e.detail instanceof kind && e.detail.code != null) || uncoded.push(`${e.detail}`);
    const at = () => Date.now(); // the page's clock
    // When (by the page's clock) each frame went out, and its action: never the frame, which holds the session.
    window.outgoing = [];
    // What is under way in real time, for Fake.settle: fetches not yet answered (nor their bodies read), and
    // for each socket to the fake Genesys its state and the frames it sent and received.
    window.io = { fetches: 0, sockets: [] };
    const track = (promise) => {
        io.fetches += 1;
        return promise.finally(() => (io.fetches -= 1)); // before the caller's await resumes
    };
    const fetch = window.fetch;
    window.fetch = function (...args) {
        return track(fetch.apply(this, args));
    };
    const json = Response.prototype.json;
    Response.prototype.json = function () {
        return track(json.call(this));
    };
    const NativeWebSocket = WebSocket;
    window.WebSocket = class extends NativeWebSocket {
        constructor(url, protocols) {
            super(url, protocols);
            this.io = { sent: 0, received: 0 };
            if (String(url).startsWith('ws://genesys.test/')) io.sockets.push(this); // FAKE_GENESYS
            this.addEventListener('message', () => (this.io.received += 1));
        }
    };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
        outgoing.push([at(), JSON.parse(data).action]);
        if (this.readyState === WebSocket.OPEN) this.io.sent += 1;
        return send.call(this, data);
    };
    window.client = createGuestTokenClient({ endpoint: '/tok' });
    window.chat = createGuestChat({ tokens: client, apiBaseUrl: '/api/', ...options });
    // [type, the error's code or the detail, retryInSeconds, when]
    const record = (type) => (e) => events.push([type, e.detail?.code ?? e.detail, e.detail?.retryInSeconds, at()]);
    client.addEventListener('tokenerror', record('tokenerror'));
    client.addEventListener('tokenerror', coded(GuestTokenError));
    chat.addEventListener('chaterror', coded(GuestChatError));
    for (const type of ['statechange', 'chaterror', 'history', 'message', 'presence', 'typing']) {
        chat.addEventListener(type, record(type));
    }
    chat.start();
    client.start();
}"""


FAKE_GENESYS = "ws://genesys.test/"
CLOCK_START = datetime(2030, 1, 1, tzinfo=UTC)
IO_STATE = """() => ({
    fetches: io.fetches,
    sockets: io.sockets.map((ws) => [ws.readyState, ws.io.sent, ws.io.received]),
})"""


@dataclass
class SocketSide:
    """One socket as the fake sees it: the frames it handled and sent, and whether it closed it."""

    page: Page
    handled: int = 0
    sent: int = 0
    closed: bool = False


@dataclass
class Fake:
    """The token endpoint, the history call and Genesys' WebSocket, as the test scripts them."""

    page: Page
    guest: str = GUEST_A
    token_answer: Callable[[], dict[str, Any]] | None = None  # None: a token for ``guest``
    new_session: bool | None = None  # the token's newSession, when set
    on_frame: Callable[[WebSocketRoute, dict[str, Any]], None] | None = None
    token_requests: int = 0
    sockets: list[WebSocketRoute] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    held_history: list[Route] = field(default_factory=list)
    hold_history: bool = False
    ws_url: str = "ws://genesys.test/v1"
    sides: list[SocketSide] = field(default_factory=list)  # as ``sockets``, with the page each is from

    def token(self, route: Route) -> None:
        self.token_requests += 1
        if self.token_answer:
            route.fulfill(**self.token_answer())
            return
        body = {
            "token": "header.payload.signature-of-a-fake-jwt",
            "guestId": self.guest,
            "expiresIn": 3600,
            "deploymentId": "dep",
            "webSocketUrl": self.ws_url,
        }
        if self.new_session is not None:
            body["newSession"] = self.new_session
        route.fulfill(json=body)

    def history(self, route: Route) -> None:
        if self.hold_history:
            self.held_history.append(route)
        else:
            self.answer_history(route)

    def answer_history(self, route: Route) -> None:
        if route in self.held_history:
            self.held_history.remove(route)
        text = f"history of {self.guest}"
        route.fulfill(json={"entities": [{"type": "Text", "text": text, "id": "h", "direction": "Outbound"}]})

    def socket(self, ws: WebSocketRoute, page: Page | None = None) -> None:
        side = SocketSide(page or self.page)
        # Every frame sent to the page and every close, whoever makes them (a helper, a test), is counted.
        send, close = ws.send, ws.close

        def counted_send(message: str | bytes) -> None:
            side.sent += 1
            send(message)

        def counted_close(code: int | None = None, reason: str | None = None) -> None:
            side.closed = True
            close(code=code, reason=reason)

        ws.send, ws.close = counted_send, counted_close  # type: ignore[method-assign]
        self.sockets.append(ws)
        self.sides.append(side)
        ws.on_message(lambda raw: self._frame(ws, side, json.loads(raw)))

    def _frame(self, ws: WebSocketRoute, side: SocketSide, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        if self.on_frame:
            self.on_frame(ws, frame)
        else:
            healthy(ws, frame)
        side.handled += 1

    def sent_texts(self) -> list[str]:
        """The texts the page sent (not its Join), in order."""
        return [frame["message"]["text"] for frame in self.frames if "text" in frame.get("message", {})]

    def events(self, kind: str) -> list[list[Any]]:
        return [event for event in self.page.evaluate("events") if event[0] == kind]

    def run(self, duration: str, steps: int = 1) -> None:
        """Moves the page's clock by ``duration`` in ``steps`` (``"00:00"``: fires what is due now). Before each
        step and after the last, what the page's timers started in real time (fetches, sockets, frames both
        ways) settles first, so what a step's timers see does not depend on how fast the machine is."""
        minutes, seconds = (int(part) for part in duration.split(":"))
        for _ in range(steps):
            self.settle()
            self.page.clock.run_for((minutes * 60 + seconds) * 1000 // steps)
        self.settle()

    def settle(self, page: Page | None = None, timeout: float = 15.0) -> None:
        """Until nothing ``page`` (the test's page unless told) started is under way: every fetch answered
        (but the history calls the test holds), every socket to the fake Genesys open or closed, every frame
        it sent handled here, and every frame sent to it received unless it has closed."""
        page = page or self.page
        deadline = time.monotonic() + timeout  # only how long a stuck page is given: normally milliseconds
        while True:
            state = page.evaluate(IO_STATE)
            if self._settled(page, state):
                return
            assert time.monotonic() < deadline, f"still under way after {timeout} s: {state}"
            page.wait_for_timeout(10)  # lets Playwright hand over routes and frames meanwhile

    def _settled(self, page: Page, state: dict[str, Any]) -> bool:
        if state["fetches"] != len(self.held_history):
            return False
        sides = [side for side in self.sides if side.page == page]
        if len(sides) != len(state["sockets"]):
            return False  # a socket the fake has not seen yet
        for side, (ready_state, page_sent, page_received) in zip(sides, state["sockets"], strict=True):
            if ready_state == 0:  # CONNECTING
                return False
            if ready_state == 1 and (side.closed or side.handled != page_sent or side.sent != page_received):
                return False
        return True


def answer(ws: WebSocketRoute, frame: dict[str, Any], code: int, body: Any, kind: str = "response") -> None:
    """An answer tagged with ``frame``'s tracingId, of the class Genesys gives it (errors are "string")."""
    name = "StructuredMessage" if kind == "message" else "SessionResponse" if code == 200 else "string"
    ws.send(json.dumps({"type": kind, "class": name, "code": code, "tracingId": frame["tracingId"], "body": body}))


def throttle(ws: WebSocketRoute, frame: dict[str, Any], retry_after: int) -> None:
    """Genesys' 4029: too many requests, try again in ``retry_after`` seconds."""
    body = {"errorCode": 4029, "errorMessage": "slow", "retryAfter": retry_after}
    frame = {"type": "response", "class": "TooManyRequestsErrorMessage", "code": 429, "body": body, **tag(frame)}
    ws.send(json.dumps(frame))


def tag(request: dict[str, Any]) -> dict[str, str]:
    return {"tracingId": request["tracingId"]}


def healthy(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
    """Genesys as it should be: a session, each text stored and echoed, each keep-alive answered."""
    if frame["action"] == "configureSession":
        answer(ws, frame, 200, {"connected": True, "readOnly": False})
    else:
        body = {"type": "Text", "text": frame["message"]["text"], "id": frame["tracingId"], "direction": "Inbound"}
        answer(ws, frame, 200, body, kind="message")


@pytest.fixture
def fake(stack: LocalStack, widget: Widget) -> Iterator[Fake]:
    routed_fake = routed(stack, widget)
    yield routed_fake
    assert_errors_coded(routed_fake)


def assert_errors_coded(fake: Fake) -> None:
    """Every `chaterror` and `tokenerror` of the test was a GuestChatError or GuestTokenError with a code."""
    assert fake.page.evaluate("window.uncoded ?? []") == []


def routed(stack: LocalStack, widget: Widget) -> Fake:
    """A page on the demo's origin (which serves the modules) with the fakes routed and its clock standing
    still until the test moves it (the hour only has to cover the time between the two calls)."""
    page = widget.page
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(stack.demo))
    fake = Fake(page)
    page.route(f"{origin}/tok", fake.token)
    page.route(f"{origin}/api/**", fake.history)
    page.route_web_socket(f"{FAKE_GENESYS}**", fake.socket)
    page.clock.install(time=CLOCK_START)
    page.clock.pause_at(CLOCK_START + timedelta(hours=1))
    # A real document of that origin (a fulfilled one would count as a public address space, and Chromium's
    # local network access checks would then refuse a WebSocket to 127.0.0.1); the script is shown, not run.
    page.goto(f"{origin}/demo/demo.js")
    return fake


def start(fake: Fake, **options: Any) -> None:
    fake.page.evaluate(SETUP, options)


def opened(fake: Fake) -> None:
    fake.page.wait_for_function("chat.state === 'open'")


def until(fake: Fake, condition: Callable[[], Any], timeout: float = 15.0) -> None:
    """Until ``condition()`` holds on this side (a route or a frame the fake got): ``timeout`` only bounds a
    wait that normally takes milliseconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not so after {timeout} s"
        fake.page.wait_for_timeout(10)  # lets Playwright hand over routes and frames meanwhile


def test_each_message_answered_4029_is_sent_again_after_its_own_wait(fake: Fake):
    refused: set[str] = set()

    def throttle_each_text_once(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
        text = frame.get("message", {}).get("text")
        if frame["action"] == "onMessage" and text not in refused:
            refused.add(text)
            throttle(ws, frame, 3)
        else:
            healthy(ws, frame)

    fake.on_frame = throttle_each_text_once
    start(fake)
    opened(fake)
    fake.page.evaluate("window.r = {}; for (const t of ['one', 'two']) chat.send(t).then(() => r[t] = 'sent'); 0")
    fake.page.wait_for_function("events.filter(e => e[1] === 4029).length === 2")
    assert fake.sent_texts() == ["one", "two"]
    fake.run("00:04", steps=4)
    fake.page.wait_for_function("r.one && r.two")
    assert sorted(fake.sent_texts()) == ["one", "one", "two", "two"]


def test_a_message_waiting_out_a_4029_goes_out_on_the_next_socket_and_close_rejects_what_is_left(fake: Fake):
    def throttle_then_hang_up(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
        if frame["action"] == "onMessage" and len(fake.sockets) == 1:
            throttle(ws, frame, 60)
            ws.close(code=1011, reason="gone")
        else:
            healthy(ws, frame)

    fake.on_frame = throttle_then_hang_up
    start(fake)
    opened(fake)
    fake.page.evaluate("window.r = {}; chat.send('one').then(() => r.one = 'sent'); 0")
    fake.page.wait_for_function("chat.state === 'reconnecting'")
    fake.run("00:02", steps=2)
    fake.page.wait_for_function("r.one === 'sent'")  # on the second socket, without waiting the 60 s out
    assert fake.sent_texts() == ["one", "one"] and len(fake.sockets) == 2

    fake.on_frame = lambda ws, frame: frame["action"] == "configureSession" and healthy(ws, frame)  # no answers
    fake.page.evaluate("chat.send('two').catch((e) => r.two = e.code); chat.close(); 0")
    fake.page.evaluate("chat.send('three').catch((e) => r.three = e.code); 0")
    fake.page.wait_for_function("r.two && r.three")
    assert fake.page.evaluate("r") == {"one": "sent", "two": "closed", "three": "closed"}


def test_retry_after_never_outruns_the_backoff_nor_max_retries(fake: Fake):
    fake.token_answer = lambda: {"status": 503, "headers": {"Retry-After": "0"}, "json": {"error": {"code": "x"}}}
    start(fake)
    fake.run("02:00", steps=60)
    retry_in = [event[2] for event in fake.events("tokenerror")]
    assert fake.token_requests == 6  # the first request and maxRetries (5) retries, then the slow retry
    assert all(seconds >= 1 for seconds in retry_in[:5]) and 150 <= retry_in[5] <= 300


def test_an_answer_without_a_token_is_retried_like_a_network_error(fake: Fake):
    portal = {"status": 200, "content_type": "text/html", "body": "<html>Log in to the Wi-Fi</html>"}
    fake.token_answer = lambda: portal
    start(fake)
    fake.page.wait_for_function("events.some(e => e[1] === 'invalid_response')")
    assert fake.events("tokenerror")[0][2] is not None  # retrying by itself
    fake.token_answer = None
    fake.run("00:02", steps=4)
    opened(fake)


@pytest.mark.parametrize("refusal", ["expired", "read-only"])
def test_a_session_refused_every_time_is_replaced_with_backoff_then_given_up(fake: Fake, refusal: str):
    def refuse(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
        if refusal == "expired":
            answer(ws, frame, 4006, "Session has expired")
        else:
            answer(ws, frame, 200, {"connected": True, "readOnly": True})

    fake.on_frame = refuse
    start(fake)
    fake.run("00:03", steps=6)
    assert fake.token_requests <= 4  # at once, then 0.5-1 s, 1-2 s, 2-4 s... between replacements
    fake.run("02:00", steps=40)
    fake.page.wait_for_function("chat.state === 'unavailable'")
    assert fake.events("chaterror")[-1][1] == "session_unavailable"
    assert fake.token_requests == 6  # the first session and 5 replacements


def test_reconnects_back_off_while_each_socket_is_dropped_soon_after_it_is_configured(fake: Fake):
    def configure_then_hang_up(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
        healthy(ws, frame)
        ws.close(code=1011, reason="gone")

    fake.on_frame = configure_then_hang_up
    start(fake)
    fake.run("00:30", steps=60)
    assert 4 <= len(fake.sockets) <= 6  # 0.5-1 s, 1-2 s, 2-4 s, 4-8 s, 8-16 s: not one a second


@pytest.mark.parametrize("silent", ["handshake", "configureSession"])
def test_a_handshake_or_configure_left_unanswered_times_out_and_reconnects(fake: Fake, widget: Widget, silent: str):
    with socket.create_server(("127.0.0.1", 0)) as server:  # takes connections, never answers the handshake
        held: list[Any] = []

        def hold() -> None:
            with contextlib.suppress(OSError):  # the server closes at the end, with nobody connected
                held.append(server.accept())

        threading.Thread(target=hold, daemon=True).start()
        if silent == "handshake":
            fake.ws_url = f"ws://127.0.0.1:{server.getsockname()[1]}/v1"
        else:
            fake.on_frame = lambda ws, frame: None
        start(fake)
        fake.page.wait_for_function("chat.state === 'connecting'")
        fake.run("00:16", steps=8)  # the configureSession, if any, is sent and unanswered before the clock moves
        assert fake.page.evaluate("chat.state") == "reconnecting"
        assert [event[1] for event in fake.events("chaterror")] == ["timeout"]
        if silent == "configureSession":
            fake.run("00:02", steps=4)
            assert len(fake.sockets) == 2


def test_an_unanswered_keep_alive_reconnects(fake: Fake):
    fake.on_frame = lambda ws, frame: frame["action"] != "echo" and healthy(ws, frame)
    start(fake, keepAliveSeconds=0)  # counts as the 30 s minimum
    opened(fake)
    fake.run("01:02", steps=12)
    (configured, _), (echoed, _), (reconfigured, _) = fake.page.evaluate("outgoing")  # one echo, then a new socket
    lost = fake.events("chaterror")[0]
    assert lost[1] == "connection_lost" and configured + 30_000 <= echoed and echoed + 30_000 <= lost[3] <= reconfigured
    assert [frame["action"] for frame in fake.frames] == ["configureSession", "echo", "configureSession"]
    assert len(fake.sockets) == 2


def test_a_slow_history_of_the_previous_guest_is_never_shown(fake: Fake):
    fake.hold_history = True
    start(fake)
    opened(fake)
    until(fake, lambda: fake.held_history)
    fake.settle()
    assert len(fake.held_history) == 1
    fake.guest = GUEST_B
    fake.hold_history = False
    fake.page.evaluate("client.reset()")  # New guest
    fake.page.wait_for_function("events.some(e => e[0] === 'history')")
    fake.guest = GUEST_A
    fake.answer_history(fake.held_history[0])  # the old guest's history arrives last
    fake.settle()  # the page has read it
    assert [[message["text"] for message in event[1]] for event in fake.events("history")] == [
        [f"history of {GUEST_B}"]
    ]


def test_a_message_shown_while_the_history_loads_stays_in_the_history(fake: Fake):
    # The guest types as soon as the chat opens: the history call left before Genesys stored the message, and
    # the message's echo arrives first. A page that replaces what it shows with the history must not lose it.
    fake.hold_history = True
    start(fake)
    opened(fake)
    until(fake, lambda: fake.held_history)
    fake.page.evaluate("chat.send('typed at once')")
    fake.page.wait_for_function("events.some(e => e[0] === 'message')")
    fake.answer_history(fake.held_history[0])
    fake.page.wait_for_function("events.some(e => e[0] === 'history')")
    [history] = [[message["text"] for message in event[1]] for event in fake.events("history")]
    assert history == [f"history of {GUEST_A}", "typed at once"]


def test_frames_of_an_unexpected_shape_are_ignored(fake: Fake, widget: Widget):
    start(fake)
    opened(fake)
    ws = fake.sockets[0]
    for odd in [None, 42, {"class": "StructuredMessage", "body": {"type": "Event", "events": {"0": {}}}}]:
        ws.send(json.dumps(odd))
    ws.send(json.dumps({"class": "StructuredMessage", "body": {"type": "Event", "events": [None, {"eventType": 1}]}}))
    fake.page.evaluate("chat.send('still here')")
    fake.page.wait_for_function("events.some(e => e[0] === 'message')")
    assert widget.page_errors == [] and fake.page.evaluate("chat.state") == "open"


def test_nothing_happens_after_close(fake: Fake):
    fake.hold_history = True
    start(fake)
    opened(fake)
    until(fake, lambda: fake.held_history)  # the history call is made once the chat is open
    fake.page.evaluate("chat.close()")
    fake.answer_history(fake.held_history[0])
    fake.settle()  # the page has read it
    assert [event[0] for event in fake.page.evaluate("events")][-1] == "statechange"
    assert fake.events("history") == []
    assert fake.page.evaluate("chat.send('late').catch((e) => e.code)") == "closed"


def test_a_huge_4029_wait_is_bounded_not_overflowed(fake: Fake):
    fake.on_frame = lambda ws, frame: (
        throttle(ws, frame, 3_000_000) if frame["action"] == "onMessage" else healthy(ws, frame)
    )
    start(fake)
    opened(fake)
    fake.page.evaluate("chat.send('one'); 0")
    fake.page.wait_for_function("events.some(e => e[1] === 4029)")
    fake.run("00:10", steps=5)
    assert fake.sent_texts() == ["one"]
    assert fake.events("chaterror")[0][2] == 300


def two_tabs_open(fake: Fake) -> Page:
    """The page's chat open, and a second tab of the same origin (so the same guest) with its chat open too."""
    start(fake)
    opened(fake)
    other = fake.page.context.new_page()
    other.route("**/tok", fake.token)
    other.route("**/api/**", fake.history)
    other.route_web_socket(f"{FAKE_GENESYS}**", lambda ws: fake.socket(ws, other))
    other.goto(fake.page.url)
    other.evaluate(SETUP, {})
    other.wait_for_function("chat.state === 'open'")
    return other


def test_a_new_guest_in_one_tab_is_adopted_by_the_others(fake: Fake, stack: LocalStack):
    other = two_tabs_open(fake)

    fake.guest = GUEST_B
    fake.page.evaluate("client.reset()")
    other.wait_for_function("guest => client.guestId === guest", arg=GUEST_B)
    other.wait_for_function("chat.state === 'open'")
    other.evaluate("client.refresh()")  # tab B's next refresh keeps the new guest
    fake.settle(other)  # answered and read
    assert other.evaluate("localStorage.getItem('genesys-guest-token:guest-id')") == GUEST_B


@pytest.mark.parametrize(("code", "then"), [(5000, "reconnecting"), (4020, "unavailable")])
def test_a_configure_session_genesys_refuses_reconnects_or_gives_up_but_never_hangs(fake: Fake, code: int, then: str):
    refuse = {"left": 1}

    def refuse_once(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
        if frame["action"] == "configureSession" and refuse["left"]:
            refuse["left"] -= 1
            answer(ws, frame, 400 if code < 5000 else 500, {"errorCode": code, "errorMessage": "no"})
        else:
            healthy(ws, frame)

    fake.on_frame = refuse_once
    start(fake)
    fake.page.wait_for_function("state => chat.state === state", arg=then)
    fake.page.evaluate("window.r = {}; chat.send('hello').then(() => 'sent', (e) => e.code).then((v) => r.v = v); 0")
    if then == "reconnecting":
        fake.run("00:02", steps=4)  # a 5xxx may pass: the chat reconnects with its backoff and sends
        sent = fake.page.wait_for_function("r.v").json_value()
        assert (sent, fake.page.evaluate("chat.state"), fake.sent_texts()) == ("sent", "open", ["hello"])
    else:
        sent = fake.page.wait_for_function("r.v").json_value()
        assert sent == "unavailable"  # a 4xxx will not pass by itself: a send is refused, not left hanging
        fake.page.evaluate("client.refresh()")  # the token client's next token tries again
        opened(fake)


def test_a_new_guest_is_not_undone_by_another_tab_refreshing_meanwhile(fake: Fake, stack: LocalStack):
    other = two_tabs_open(fake)

    # Tab A's new-guest request fails once (a network blip); tab B refreshes while A waits to retry.
    fake.token_answer = lambda: {"status": 503, "headers": {"Retry-After": "1"}, "json": {"error": "unavailable"}}
    fake.page.evaluate("client.reset()")
    fake.page.wait_for_function("events.some(([type]) => type === 'tokenerror')")
    fake.token_answer = None
    fake.guest = GUEST_B  # what the service answers a request without a guest id: a new guest
    sent = []
    other.on("request", lambda request: sent.append(request.post_data) if request.url.endswith("/tok") else None)
    other.evaluate("client.refresh()")
    other.wait_for_function("guest => client.guestId === guest", arg=GUEST_B)
    assert GUEST_A not in "".join(body or "" for body in sent)  # B did not send the old guest back
    fake.run("00:02", steps=4)
    fake.page.wait_for_function("guest => client.guestId === guest", arg=GUEST_B)
    assert fake.page.evaluate("localStorage.getItem('genesys-guest-token:guest-id')") == GUEST_B


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"abort": True}, "network_error"),  # no answer: the network, or a CORS refusal
        ({"status": 502, "body": "Bad Gateway"}, "http_502"),
        ({"status": 200, "content_type": "text/html", "body": "<html>Log in to the Wi-Fi</html>"}, "invalid_response"),
        ({"status": 200, "json": None}, None),  # JSON, but no entities: an empty history
    ],
    ids=["network", "http", "not-json", "null"],
)
def test_every_failure_of_the_history_call_is_a_coded_chat_error(fake: Fake, answer: dict[str, Any], code: str | None):
    def history(route: Route) -> None:
        if answer.get("abort"):
            route.abort("connectionclosed")
        elif "json" in answer:
            route.fulfill(status=answer["status"], content_type="application/json", body="null")
        else:
            route.fulfill(**answer)

    fake.page.route("**/api/**", history)  # the last route added is tried first
    start(fake)
    opened(fake)
    loaded = "chat.loadHistory().then((messages) => messages.length, (e) => [e.name, e.code, e.retryInSeconds])"
    if code is None:
        fake.page.wait_for_function("events.some(([type]) => type === 'history')")
        assert fake.events("history")[0][1] == [] and fake.page.evaluate(loaded) == 0
        return
    fake.page.wait_for_function("events.some(([type]) => type === 'chaterror')")
    assert [event[1:3] for event in fake.events("chaterror")] == [[code, None]]  # reloaded on the next connection
    assert fake.page.evaluate(loaded) == ["GuestChatError", code, None]
    assert fake.page.evaluate("chat.state") == "open"  # the chat goes on without its history
    assert fake.page.evaluate("chat.send('still here').then((m) => m.text)") == "still here"


def test_a_websocket_url_the_browser_refuses_makes_the_chat_unavailable_until_the_next_token(fake: Fake):
    # new WebSocket() throws (an invalid URL; an https page's ws:// URL would too): it will not pass by itself.
    fake.ws_url = "ws://genesys.test:99999/v1"
    start(fake)
    fake.page.wait_for_function("chat.state === 'unavailable'")
    [[_, code, retry_in, _]] = fake.events("chaterror")
    assert (code, retry_in) == ("websocket_refused", None)
    assert fake.page.evaluate("chat.send('hello').catch((e) => e.code)") == "unavailable"
    fake.ws_url = "ws://genesys.test/v1"
    fake.page.evaluate("client.refresh()")
    opened(fake)
