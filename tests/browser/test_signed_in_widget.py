"""Signed-in customers in Debian's Chromium (issue 24): the demo page signs a customer in at the emulator's
OpenID provider (the authorization code flow with PKCE), chats as that customer over
``configureAuthenticatedSession``, stays signed in across a reload through the service's HttpOnly refresh
cookie, and signs out. The chat's answers to the Guest API's refused auth JWT (a ``401`` string frame) and to a
``LogoutEvent`` are here too.

Every test ends with a check that no token the page was handed (the session JWT, the auth JWT), no session
token (guest id) outside the client's own key, and nothing of PKCE is in the page's storage, its cookies as
page JavaScript sees them, the console or a URL. Nothing waits a fixed time: each step waits for what the
page shows, with generous timeouts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, WebSocketRoute, expect

from devtools.genesys_emulator import AUTH_REVOKE_PATH
from tests.browser.conftest import ARTIFACTS, STORAGE_KEY, LocalStack, local_stack

pytestmark = pytest.mark.browser

SIGNED_IN_KEY = "genesys-guest-token:signed-in"
PKCE_KEY = "guest-chat-demo:sign-in"
COOKIE = "guest_refresh"
NAME = "Robin Tester"
WAIT = 20_000  # ms: every step takes milliseconds on a healthy stack; this only bounds a broken one
UNAUTHORIZED_FRAME = {"type": "response", "class": "string", "code": 401, "body": "User is unauthorized"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10.0))


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """`make run` as it is: the webmessaging source, signed-in customers on."""
    with local_stack(source=None) as started:
        yield started


@dataclass
class Customer:
    """The demo page in a fresh browser context, with what it asked the guest-token service and got back."""

    page: Page
    api: str  # the service's base URL: the guest-token endpoint without /guest-tokens
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, JSON body) to the service
    answers: list[tuple[str, str, int, Any]] = field(default_factory=list)  # (method, path, status, JSON body)

    def _path(self, url: str) -> str | None:
        return url[len(self.api) :].split("?", maxsplit=1)[0] if url.startswith(self.api + "/") else None

    def _on_request(self, request: Request) -> None:
        self.urls.append(request.url)
        path = self._path(request.url)
        if path is not None and request.method != "OPTIONS":
            self.calls.append((request.method, path, request.post_data_json if request.post_data else None))

    def _on_response(self, response: Response) -> None:
        path = self._path(response.url)
        if path is None or response.request.method == "OPTIONS":
            return
        try:
            body = response.json() if response.status != 204 else None
        except Exception:
            body = None
        self.answers.append((response.request.method, path, response.status, body))

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append(message.text)

    def answered(self, method: str, path: str, status: int | None = None) -> list[Any]:
        return [body for m, p, s, body in self.answers if m == method and p == path and status in (None, s)]

    def wait_for_answer(self, method: str, path: str, count: int = 1, status: int | None = None) -> list[Any]:
        """Until ``count`` answers of the service to ``method path`` (with ``status``) have arrived."""
        deadline = time.monotonic() + WAIT / 1000
        while len(self.answered(method, path, status)) < count:
            assert time.monotonic() < deadline, (method, path, count, self.answers)
            self.page.wait_for_timeout(50)  # lets Playwright deliver events; the loop waits for the answer
        return self.answered(method, path, status)

    def tokens(self) -> list[dict[str, Any]]:
        """Every token answer the page got (anonymous and signed in)."""
        return [body for m, _, s, body in self.answers if m == "POST" and s == 200 and isinstance(body, dict)]

    def storage(self) -> tuple[dict[str, str], dict[str, str], str]:
        return tuple(self.page.evaluate("() => [{...localStorage}, {...sessionStorage}, document.cookie]"))

    def refresh_cookie(self) -> dict[str, Any] | None:
        cookies = [cookie for cookie in self.page.context.cookies() if cookie["name"] == COOKIE]
        return dict(cookies[0]) if cookies else None

    def assert_nothing_leaked(self) -> None:
        local, session, cookie = self.storage()
        stored_id = local.pop(STORAGE_KEY, None)
        assert stored_id is None or UUID.fullmatch(stored_id), "the client stored something other than a guest id"
        assert local.pop(SIGNED_IN_KEY, "1") == "1", "the signed-in flag holds something other than 1"
        assert COOKIE not in cookie, "page JavaScript can read the refresh cookie"
        stored = json.dumps([local, session, cookie])
        written = "\n".join([*self.console, self.page.url, *self.urls])
        for token in self.tokens():
            for secret in (token.get("token"), token.get("authToken")):
                if secret:
                    assert secret[-40:] not in stored + written, (
                        "a JWT reached the page's storage, a URL or the console"
                    )
            assert token["guestId"] not in stored + written, "a session token is stored outside the client's key"
        for method, _, body in self.calls:
            if method == "POST" and isinstance(body, dict):
                for secret in (body.get("code"), body.get("codeVerifier")):
                    if secret:
                        assert secret not in stored, "a code or verifier stayed in the page's storage"
                        assert secret not in "\n".join(self.console), "a code or verifier reached the console"


@pytest.fixture
def customer(browser: Browser, stack: LocalStack) -> Iterator[Customer]:
    context = browser.new_context(viewport={"width": 900, "height": 760})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    customer = Customer(page, stack.endpoint.removesuffix("/guest-tokens"))
    page.on("console", customer._on_console)
    page.on("pageerror", lambda error: customer.page_errors.append(str(error)))
    page.on("request", customer._on_request)
    page.on("websocket", lambda socket: customer.urls.append(socket.url))
    page.on("response", customer._on_response)
    yield customer
    try:
        customer.assert_nothing_leaked()
        assert customer.page_errors == []
    finally:
        context.close()


# -- helpers -------------------------------------------------------------------------------------------


def sessions(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.genesys_control("GET", "sessions")["sessions"]


def connected(page: Page) -> None:
    expect(page.locator("#chat-state")).to_have_text("Connected", timeout=WAIT)


def chat(page: Page, text: str, greeting: str) -> None:
    """Send ``text`` and wait for the agent's answer to it, which begins with ``greeting``."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator('#messages li[data-from="agent"]').last).to_have_text(f"{greeting} You wrote: {text}")


def open_anonymous(customer: Customer, stack: LocalStack) -> None:
    customer.page.goto(stack.demo)
    connected(customer.page)
    expect(customer.page.locator("#account-state")).to_have_text("Anonymous guest")


def sign_in(customer: Customer, stack: LocalStack, name: str = NAME) -> dict[str, Any]:
    """Sign in as the demo does: Sign in, the provider's page, the redirect back; the service's answer."""
    page = customer.page
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/oidc/authorize"))
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account")).to_have_attribute("data-signed-in", "true", timeout=WAIT)
    connected(page)
    [*_, answer] = customer.wait_for_answer("POST", "/authenticated-sessions", status=200)
    return answer


def revoke_status(stack: LocalStack, auth_jwt: str) -> int:
    """What the emulator's revoke answers for ``auth_jwt`` (401: it is no longer valid)."""
    headers = {"Authorization": f"Bearer {auth_jwt}"}
    return http.request("DELETE", f"{stack.genesys}{AUTH_REVOKE_PATH}", headers=headers).status


# -- tests ----------------------------------------------------------------------------------------------


def test_a_customer_signs_in_chats_by_name_reloads_and_signs_out(stack: LocalStack, customer: Customer):
    page = customer.page
    open_anonymous(customer, stack)
    [anonymous] = customer.tokens()

    answer = sign_in(customer, stack)

    # The authorization code flow with PKCE: the code, the demo page as redirect URI, an S256 verifier.
    [(_, _, body)] = [call for call in customer.calls if call[:2] == ("POST", "/authenticated-sessions")]
    assert set(body) == {"code", "redirectUri", "codeVerifier", "nonce"}  # a new session: no guestId
    assert body["redirectUri"] == stack.demo
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", body["codeVerifier"])
    authorize = next(url for url in customer.urls if "/oidc/authorize?" in url)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == [stack.demo]
    assert page.url == stack.demo  # the code and state left the address bar
    _, session, _ = customer.storage()
    assert PKCE_KEY not in session  # the verifier was deleted as the redirect returned
    assert answer["authenticated"] is True and answer["authToken"]
    assert answer["guestId"] != anonymous["guestId"]
    assert customer.refresh_cookie()["httpOnly"] is True

    chat(page, "Where is my order?", f"Thanks, {NAME}!")
    [signed_in] = [entry for entry in sessions(stack) if entry.get("authenticated")]
    assert signed_in["name"] == NAME

    # On a phone: the account line fits the 390 px column beside nothing, without overflow.
    page.set_viewport_size({"width": 390, "height": 844})
    layout = page.evaluate(
        """() => ({
            scrollWidth: document.documentElement.scrollWidth,
            account: document.querySelector('#account').getBoundingClientRect().toJSON(),
            chat: document.querySelector('#chat').getBoundingClientRect().toJSON(),
            signOut: document.querySelector('#sign-out').getBoundingClientRect().toJSON(),
        })"""
    )
    assert layout["scrollWidth"] <= 390, layout
    assert layout["chat"]["left"] <= layout["account"]["left"] and layout["signOut"]["right"] <= layout["chat"]["right"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "demo-signed-in-390px.png")
    page.set_viewport_size({"width": 900, "height": 760})

    # A reload: signed in again through the cookie alone.
    page.reload()
    expect(page.locator("#account")).to_have_attribute("data-signed-in", "true", timeout=WAIT)
    connected(page)
    [refreshed] = customer.wait_for_answer("POST", "/authenticated-sessions/refresh", status=200)
    assert refreshed["guestId"] == answer["guestId"] and refreshed["authToken"]
    expect(page.locator('#messages li[data-from="agent"]')).to_have_text(
        f"Thanks, {NAME}! You wrote: Where is my order?"
    )
    local, session, cookie = customer.storage()
    assert local.get(SIGNED_IN_KEY) == "1" and set(local) == {STORAGE_KEY, SIGNED_IN_KEY}
    assert session == {} and COOKIE not in cookie
    chat(page, "Still me", f"Thanks, {NAME}!")

    # Sign out: the sign-in is revoked at Genesys, the cookie is gone, and a new guest chats anonymously.
    page.get_by_role("button", name="Sign out").click()
    customer.wait_for_answer("DELETE", "/authenticated-sessions", status=204)
    expect(page.locator("#account")).to_have_attribute("data-signed-in", "false", timeout=WAIT)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    connected(page)
    assert revoke_status(stack, refreshed["authToken"]) == 401  # already revoked
    assert revoke_status(stack, answer["authToken"]) == 401
    assert customer.refresh_cookie() is None
    local, _, _ = customer.storage()
    assert SIGNED_IN_KEY not in local
    after = customer.tokens()[-1]
    assert "authToken" not in after and after["guestId"] not in (answer["guestId"], anonymous["guestId"])
    assert local[STORAGE_KEY] == after["guestId"]
    chat(page, "Hello again", "Thanks!")
    assert [entry["authenticated"] for entry in sessions(stack)][-1] is False


def test_a_refused_auth_jwt_is_refreshed_and_the_session_configured_again(stack: LocalStack, customer: Customer):
    page = customer.page
    sockets: list[WebSocketRoute] = []

    def forward(socket: WebSocketRoute) -> None:
        socket.connect_to_server()  # frames pass both ways untouched
        sockets.append(socket)

    page.route_web_socket(re.compile(r"^wss?://"), forward)
    open_anonymous(customer, stack)
    answer = sign_in(customer, stack)
    chat(page, "Hello", f"Thanks, {NAME}!")
    refreshes = len(customer.answered("POST", "/authenticated-sessions/refresh"))
    opened = len(sockets)

    # Genesys no longer takes the auth JWT the page holds; the socket drops and the chat configures again.
    stack.genesys_control("POST", "auth/expire-auth-jwts")
    sockets[-1].close()
    customer.wait_for_answer("POST", "/authenticated-sessions/refresh", count=refreshes + 1, status=200)
    connected(page)
    assert len(sockets) >= opened + 2  # the reconnect, refused with 401, then the session configured again
    chat(page, "Still here?", f"Thanks, {NAME}!")
    renewed = customer.answered("POST", "/authenticated-sessions/refresh", status=200)[-1]
    assert renewed["guestId"] == answer["guestId"] and renewed["authToken"] != answer["authToken"]
    # Silent: the page saw the dropped socket (connection_lost), never the refused auth JWT.
    assert page.locator('#log li[data-kind="error"][data-code="401"]').count() == 0
    assert page.locator('#log li[data-kind="error"][data-code="connection_lost"]').count() == 1


def test_an_auth_jwt_refused_again_and_again_is_refreshed_three_times_then_the_chat_stops(
    stack: LocalStack, customer: Customer
):
    page = customer.page
    refuse = {"on": False}
    refused: list[str] = []
    sockets: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        sockets.append(socket)

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if refuse["on"] and frame.get("action") == "configureAuthenticatedSession":
                refused.append(frame["tracingId"])
                socket.send(json.dumps(UNAUTHORIZED_FRAME))  # as the transport SDK's fixture: untagged
            else:
                server.send(message)

        socket.on_message(from_page)

    page.route_web_socket(re.compile(r"^wss?://"), route)
    open_anonymous(customer, stack)
    sign_in(customer, stack)
    refreshes = len(customer.answered("POST", "/authenticated-sessions/refresh"))

    refuse["on"] = True
    sockets[-1].close()
    # The reconnect's configure: 401, refresh, 401, refresh, 401, refresh, 401: the chat gives up.
    expect(page.locator("#chat-state")).to_have_attribute("data-state", "unavailable", timeout=3 * WAIT)
    assert len(refused) == 4
    assert len(customer.answered("POST", "/authenticated-sessions/refresh")) == refreshes + 3
    customer.page.locator('#log li[data-kind="error"][data-code="401"]').wait_for(timeout=WAIT)
    assert page.locator('#log li[data-kind="error"][data-code="401"]').count() == 1


def test_a_logout_event_ends_the_signed_in_session_and_a_new_guest_chats(stack: LocalStack, customer: Customer):
    page = customer.page
    open_anonymous(customer, stack)
    answer = sign_in(customer, stack)
    chat(page, "Hello", f"Thanks, {NAME}!")

    # Signed out elsewhere (another device, the site's own sign-out): Genesys revokes the sign-in and tells
    # the session's sockets with a LogoutEvent. The refresh cookie is refused, so the page is anonymous again.
    assert revoke_status(stack, answer["authToken"]) == 204
    customer.wait_for_answer("POST", "/authenticated-sessions/refresh", status=401)
    expect(page.locator("#account")).to_have_attribute("data-signed-in", "false", timeout=WAIT)
    connected(page)
    [*_, after] = customer.tokens()
    assert "authToken" not in after and after["guestId"] != answer["guestId"]
    local, _, _ = customer.storage()
    assert SIGNED_IN_KEY not in local and local[STORAGE_KEY] == after["guestId"]
    assert customer.refresh_cookie() is None  # the service cleared it with its 401
    chat(page, "Who am I now?", "Thanks!")


@pytest.mark.parametrize("query", ["code=a-code-from-elsewhere&state=not-ours", "code=a-code-from-elsewhere"])
def test_a_redirect_back_with_another_state_is_refused_without_calling_the_service(
    stack: LocalStack, customer: Customer, query: str
):
    page = customer.page
    page.goto(f"{stack.demo}?{query}")
    customer.page.locator('#log li[data-kind="error"][data-code="state_mismatch"]').wait_for(timeout=WAIT)
    connected(page)
    assert page.url == stack.demo
    assert not [call for call in customer.calls if call[1].startswith("/authenticated-sessions")]
    expect(page.locator("#account-state")).to_have_text("Sign-in failed: state_mismatch")


def test_a_sign_out_the_service_never_got_leaves_the_customer_signed_in_to_try_again(
    stack: LocalStack, customer: Customer
):
    page = customer.page
    open_anonymous(customer, stack)
    sign_in(customer, stack)
    # The network drops the DELETE: the cookie is still there, so the page must not say the customer left.
    page.route(
        "**/authenticated-sessions",
        lambda route: route.abort() if route.request.method == "DELETE" else route.fallback(),
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#account-state")).to_have_text("Sign-out failed: network_error")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    local, _, _ = customer.storage()
    assert local.get(SIGNED_IN_KEY) == "1" and customer.refresh_cookie() is not None
    # Back online: the same button signs out.
    page.unroute("**/authenticated-sessions")
    page.get_by_role("button", name="Sign out").click()
    customer.wait_for_answer("DELETE", "/authenticated-sessions", status=204)
    expect(page.locator("#account")).to_have_attribute("data-signed-in", "false")
    assert customer.refresh_cookie() is None


def test_the_demo_offers_no_sign_in_from_a_host_name_the_cookie_would_not_reach(stack: LocalStack, customer: Customer):
    # From 127.0.0.1 the API on localhost is another site: the sign-in would work, then be forgotten at once.
    page = customer.page
    page.goto(stack.demo.replace("localhost", "127.0.0.1"))
    connected(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_hidden()
    expect(page.locator("#log")).to_contain_text("sign-in needs this page on localhost")
