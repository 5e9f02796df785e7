"""guest-chat.js against Guest API frames exactly as Genesys' own SDK fixtures show them
(tests/fixtures/genesys/sdk-frames.json): most carry no tracingId, an expired session may come as a `response`,
and only the echo of a socket's own request is tagged. The scripted fake of test_widget_faults.py plays Genesys
and the token service, and the page's clock stands still until the test moves it; each test checks what a guest
would notice."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute

from tests.browser.conftest import REPO, LocalStack, Widget
from tests.browser.test_widget_faults import Fake, assert_errors_coded, opened, routed, start

pytestmark = pytest.mark.browser

FRAMES: dict[str, Any] = json.loads((REPO / "tests/fixtures/genesys/sdk-frames.json").read_text())["frames"]
JOIN = {"type": "Event", "events": [{"eventType": "Presence", "presence": {"type": "Join"}}]}


def sdk(name: str, request: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
    """The fixture frame ``name``; its "<request>" tracingId becomes ``request``'s, and ``body`` is merged into
    its body."""
    frame = copy.deepcopy(FRAMES[name]["frame"])
    if frame.get("tracingId") == "<request>":
        assert request is not None, name
        frame["tracingId"] = request["tracingId"]
    if body:
        frame["body"] = {**frame["body"], **body}
    return frame


def push(ws: WebSocketRoute, frame: dict[str, Any]) -> None:
    ws.send(json.dumps(frame))


def genesys(ws: WebSocketRoute, request: dict[str, Any]) -> None:
    """Genesys as its SDKs' fixtures show it: an untagged SessionResponse, each text echoed with its tracingId,
    each keep-alive answered with its tracingId, a Join echoed untagged."""
    if request["action"] == "configureSession":
        push(ws, sdk("session-new"))
    elif request["action"] == "echo":
        push(ws, sdk("health-check-echo", request))
    elif request["message"]["type"] == "Event":
        push(ws, sdk("join-echo"))
    else:
        push(ws, sdk("own-echo", request, text=request["message"]["text"]))


@pytest.fixture
def fake(stack: LocalStack, widget: Widget) -> Iterator[Fake]:
    """test_widget_faults.py's fake, answering as Genesys' SDK fixtures show it."""
    routed_fake = routed(stack, widget)
    routed_fake.on_frame = genesys
    yield routed_fake
    assert_errors_coded(routed_fake)


def send(fake: Fake, text: str) -> str:
    """Sends ``text`` and waits (15 s at most) for its promise: the text Genesys stored, or the error's code."""
    keep = "(t) => { window.sent ??= {}; chat.send(t).then((m) => m.text, (e) => e.code).then((v) => sent[t] = v); }"
    fake.page.evaluate(keep, text)
    return fake.page.wait_for_function("(t) => sent[t]", arg=text).json_value()


def send_later(fake: Fake, *texts: str) -> None:
    """Sends each text without waiting: `r[text]` is set once Genesys stored it."""
    fake.page.evaluate("(ts) => { window.r ??= {}; for (const t of ts) chat.send(t).then(() => r[t] = 1); }", texts)


def replaced(fake: Fake) -> None:
    """The chat asked for a new session, and is open on it."""
    fake.page.wait_for_function("events.some(([type, state]) => type === 'statechange' && state === 'replacing')")
    fake.run("00:00")  # the first replacement is asked for at once: a timer of 0 s on the page's clock
    opened(fake)
    assert fake.token_requests == 2


def wait_for_event(fake: Fake, kind: str) -> None:
    fake.page.wait_for_function("kind => events.some(([type]) => type === kind)", arg=kind)


@pytest.mark.parametrize("name", ["session-new", "session-resumed-minimal"])
def test_an_untagged_session_response_opens_the_chat(fake: Fake, name: str):
    fake.on_frame = lambda ws, request: (
        push(ws, sdk(name)) if request["action"] == "configureSession" else genesys(ws, request)
    )
    start(fake)
    opened(fake)
    assert send(fake, "hello") == "hello"
    wait_for_event(fake, "history")
    assert fake.events("chaterror") == [] and fake.token_requests == 1


def test_an_untagged_4029_resends_the_message_it_answered_after_its_retry_after(fake: Fake):
    def throttle_the_first(ws: WebSocketRoute, request: dict[str, Any]) -> None:
        if request["action"] == "onMessage" and fake.sent_texts() == ["one"]:
            push(ws, sdk("error-4029"))  # retryAfter 3, no tracingId: it answers the oldest request, "one"
        else:
            genesys(ws, request)

    fake.on_frame = throttle_the_first
    start(fake)
    opened(fake)
    send_later(fake, "one", "two")
    fake.page.wait_for_function("r.two && events.some(([type, code]) => type === 'chaterror' && code === 4029)")
    assert fake.events("chaterror")[0][2] == 3
    assert fake.page.evaluate("r.one") is None
    fake.run("00:04", steps=4)
    fake.page.wait_for_function("r.one")
    assert fake.sent_texts() == ["one", "two", "one"]
    first, _, again = (time for time, action in fake.page.evaluate("outgoing") if action == "onMessage")
    assert again - first >= 3000


@pytest.mark.parametrize("name", ["error-4006", "error-4007"])
@pytest.mark.parametrize("answering", ["configureSession", "onMessage"])
def test_an_untagged_session_error_replaces_the_session(fake: Fake, name: str, answering: str):
    def refuse_on_the_first_socket(ws: WebSocketRoute, request: dict[str, Any]) -> None:
        if request["action"] == answering and len(fake.sockets) == 1:
            push(ws, sdk(name))
        else:
            genesys(ws, request)

    fake.on_frame = refuse_on_the_first_socket
    start(fake)
    if answering == "onMessage":
        opened(fake)
        send_later(fake, "hello")
    replaced(fake)
    assert [error[1] for error in fake.events("chaterror")] == [int(name.removeprefix("error-"))]
    if answering == "onMessage":
        fake.page.wait_for_function("r.hello")  # sent again in the new session
        assert fake.sent_texts() == ["hello", "hello"]
    assert len(fake.sockets) == 2


@pytest.mark.parametrize("kind", ["response", "message"])
def test_a_session_expired_event_replaces_the_session_whatever_its_type(fake: Fake, kind: str):
    start(fake)
    opened(fake)
    push(fake.sockets[0], {**sdk("session-expired-event"), "type": kind})
    replaced(fake)
    assert send(fake, "still here") == "still here"


@pytest.mark.parametrize("when", ["before the session", "after the session", "while a send waits"])
def test_another_tabs_message_shows_as_the_guests_without_breaking_anything(fake: Fake, when: str):
    def with_another_tabs_message(ws: WebSocketRoute, request: dict[str, Any]) -> None:
        other_tab = sdk("other-tab-echo")  # "Hello world!", untagged, of type response
        if request["action"] == "configureSession" and when == "before the session":
            push(ws, other_tab)
        if request["action"] == "onMessage" and when == "while a send waits":
            push(ws, other_tab)
        genesys(ws, request)
        if request["action"] == "configureSession" and when == "after the session":
            push(ws, other_tab)

    fake.on_frame = with_another_tabs_message
    start(fake)
    opened(fake)
    assert send(fake, "mine") == "mine"
    shown = [(message["from"], message["text"]) for _, message, *_ in fake.events("message")]
    assert shown == [("guest", "Hello world!"), ("guest", "mine")]
    assert fake.events("chaterror") == [] and fake.token_requests == 1


def test_the_agents_text_and_typing_are_shown(fake: Fake):
    start(fake)
    opened(fake)
    push(fake.sockets[0], sdk("typing"))
    push(fake.sockets[0], sdk("agent-text"))
    wait_for_event(fake, "message")
    assert [event[1] for event in fake.events("typing")] == [{"type": "On", "duration": 5000}]
    [(_, message, *_)] = fake.events("message")
    assert (message["from"], message["text"]) == ("agent", "Hello world!")


@pytest.mark.parametrize(
    ("name", "read_only", "ends"),
    [("disconnect-read-only", None, True), ("disconnect-read-only", True, True), ("disconnect", None, False)],
)
def test_a_disconnect_ends_the_conversation_only_when_the_session_is_read_only(
    fake: Fake, name: str, read_only: bool | None, ends: bool
):
    start(fake)
    opened(fake)
    disconnect = sdk(name) if read_only is None else sdk(name, metadata={"readOnly": read_only})
    push(fake.sockets[0], disconnect)
    wait_for_event(fake, "presence")
    assert [event[1] for event in fake.events("presence")] == [{"type": "Disconnect"}]
    if ends:
        replaced(fake)  # the service starts a new conversation
    else:
        assert send(fake, "still here") == "still here"
        assert fake.page.evaluate("chat.state") == "open"
        assert fake.token_requests == 1 and len(fake.sockets) == 1


def test_a_connection_closed_event_reconnects_to_the_session(fake: Fake):
    start(fake)
    opened(fake)
    push(fake.sockets[0], sdk("connection-closed"))  # another tab restarted the conversation
    fake.page.wait_for_function("chat.state === 'reconnecting'")
    assert [error[1] for error in fake.events("chaterror")] == ["connection_lost"]
    fake.run("00:02", steps=4)
    opened(fake)
    assert len(fake.sockets) == 2 and fake.token_requests == 1  # the same session, a new socket
    assert send(fake, "after") == "after"


def test_a_logout_event_ends_the_session_and_the_token_client_says_who_the_guest_is_now(fake: Fake):
    # Genesys signs the session out (the transport SDK's performLogout): this socket's session is over.
    start(fake)
    opened(fake)
    push(fake.sockets[0], sdk("logout"))
    replaced(fake)
    assert send(fake, "after") == "after"


def test_frames_the_chat_has_no_use_for_are_ignored(fake: Fake, widget: Widget):
    start(fake)
    opened(fake)
    wait_for_event(fake, "history")
    before = len(fake.page.evaluate("events"))
    for name in ["unknown-class", "session-cleared", "jwt", "session-resumed-minimal"]:
        push(fake.sockets[0], sdk(name))
    upload = {"attachmentId": "a", "downloadUrl": "https://example.test/a.png", "timestamp": "2022-08-22T19:24:26Z"}
    push(fake.sockets[0], {"type": "message", "class": "UploadSuccessEvent", "code": 200, "body": upload})
    assert send(fake, "still here") == "still here"
    assert [event[0] for event in fake.page.evaluate("events")[before:]] == ["message"]
    assert fake.page.evaluate("chat.state") == "open" and widget.page_errors == []
    assert len(fake.sockets) == 1 and fake.token_requests == 1


@pytest.mark.parametrize("answer", ["tagged", "untagged", "any other frame"])
def test_a_keep_alive_followed_by_any_frame_keeps_the_socket(fake: Fake, answer: str):
    def answer_echo(ws: WebSocketRoute, request: dict[str, Any]) -> None:
        if request["action"] != "echo":
            genesys(ws, request)
        elif answer == "tagged":
            push(ws, sdk("health-check-echo", request))
        elif answer == "untagged":
            push(ws, {key: value for key, value in sdk("health-check-echo", request).items() if key != "tracingId"})
        else:
            push(ws, sdk("typing"))

    fake.on_frame = answer_echo
    start(fake, keepAliveSeconds=30)
    opened(fake)
    fake.run("02:05", steps=25)
    assert [action for _, action in fake.page.evaluate("outgoing")] == ["configureSession"] + ["echo"] * 4
    assert len(fake.sockets) == 1 and fake.events("chaterror") == []
    assert fake.events("message") == []  # an answered "ping" is not a message of the guest's


def test_keep_alives_are_never_less_than_30_s_apart(fake: Fake):
    start(fake, keepAliveSeconds=10)  # counts as the 30 s minimum, which Genesys' transport SDK keeps
    opened(fake)
    fake.run("01:02", steps=12)
    push(fake.sockets[0], sdk("connection-closed"))  # right after an echo: a new socket, a new schedule
    fake.run("02:00", steps=24)
    assert len(fake.sockets) == 2
    echoes = [time for time, action in fake.page.evaluate("outgoing") if action == "echo"]
    assert len(echoes) >= 5
    assert all(later - earlier >= 30_000 for earlier, later in itertools.pairwise(echoes))


@pytest.mark.parametrize(("auto_start", "new_session", "joins"), [(True, True, 1), (True, False, 0), (False, True, 0)])
def test_auto_start_sends_one_join_for_a_new_session_only(fake: Fake, auto_start: bool, new_session: bool, joins: int):
    fake.new_session = new_session
    start(fake, **({"autoStart": True} if auto_start else {}))
    opened(fake)
    assert send(fake, "first") == "first"
    fake.sockets[0].close(code=1011, reason="gone")  # the same session on a new socket: no second Join
    fake.page.wait_for_function("chat.state === 'reconnecting'")
    fake.run("00:02", steps=4)
    opened(fake)
    assert send(fake, "second") == "second"
    sent = [frame for frame in fake.frames if frame["action"] == "onMessage" and "text" not in frame["message"]]
    assert len(sent) == joins
    if joins:
        [join] = sent
        assert join["message"] == JOIN and set(join) == {"action", "message", "token", "tracingId"}
        assert [event[1] for event in fake.events("presence")] == [{"type": "Join"}]  # Genesys' answer
        assert fake.frames.index(join) == 1  # right after configureSession, before the guest's texts
    else:
        assert fake.events("presence") == []
    assert [error[1] for error in fake.events("chaterror")] == ["connection_lost"]  # the socket closed


@pytest.mark.parametrize("retry_after", ["30", "280"])
def test_a_deployment_switched_off_is_waited_out_slowly(fake: Fake, retry_after: str):
    off = {"error": {"code": "deployment_unavailable", "message": "The deployment is not active."}}
    fake.token_answer = lambda: {"status": 503, "headers": {"Retry-After": retry_after}, "json": off}
    start(fake)
    wait_for_event(fake, "tokenerror")
    fake.page.evaluate("dispatchEvent(new Event('online')); 0")  # no quick retry: the service has not changed
    fake.settle()  # a request the event started would be answered by now
    assert fake.token_requests == 1
    fake.run("10:00", steps=120)
    errors = fake.events("tokenerror")
    assert 2 <= len(errors) <= 5 and fake.token_requests == len(errors)
    for (_, _, retry_in, failed_at), (*_, next_failed_at) in itertools.pairwise(errors):
        assert max(150, int(retry_after)) <= retry_in <= 300
        assert next_failed_at - failed_at >= retry_in * 1000
    fake.token_answer = None
    fake.run("05:00", steps=60)
    opened(fake)
