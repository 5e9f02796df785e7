"""Fixtures for the tests in a real browser: `make run`'s servers on free loopback ports, and Debian's
Chromium driven by Playwright (its own browser download does not work offline; the Makefile installs
Chromium). Every test gets a fresh browser context (no storage) and, at its end, a check that no token and
no guest id reached the console or the page's storage (the guest id only under the client's key).

`stack` serves the `rest` guest-token source (the tutorial's contract: duration, scopes, a token whose `sub`
is the guest id); a test module that wants `make run`'s default (`webmessaging`) overrides `stack` with
`local_stack(source=None)`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As root in a container, without a GPU, and without the background calls to Google that a closed network
# refuses. Playwright gives each launch a fresh, empty user data dir.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STORAGE_KEY = "genesys-guest-token:guest-id"
http = urllib3.PoolManager()
# Playwright's `expect` waits 5 s unless told: as long as the page's own waits (15 s), which a loaded 2-core
# machine may need for what normally takes a moment. A wait that succeeds ends as soon as it does.
expect.set_options(timeout=15_000)


@dataclass
class LocalStack:
    """`make run` (devtools.run_local) on free ports, and a handle on its Genesys emulator."""

    endpoint: str
    demo: str
    blocked_demo: str
    genesys: str
    source: str  # the guest-token source run_local says it serves
    output: list[str]

    def genesys_control(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        response = http.request(method, f"{self.genesys}/__emulator/{action}", json=body)
        assert response.status in (200, 204), response.data
        return response.json() if response.status == 200 else None

    def add_fault(self, **fault: Any) -> None:
        self.genesys_control("POST", "faults", {"route": "guest-token", **fault})

    def guest_token_calls(self) -> list[dict[str, Any]]:
        """The guest-token requests Genesys received, oldest first (time and status, no bodies)."""
        requests = self.genesys_control("GET", "requests")["requests"]
        return [request for request in requests if request["route"] == "guest-token"]


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    """`make run` with the `rest` source, which the tests in test_widget.py are about."""
    with local_stack(source="rest") as started:
        yield started


@contextmanager
def local_stack(source: str | None, *args: str) -> Iterator[LocalStack]:
    """`make run` (devtools.run_local) with every port free, the WebSocket one included, so that it never
    collides with a `make run` already serving; ``source`` None leaves GUEST_TOKEN_SOURCE to its default;
    ``args`` go to run_local."""
    command = [sys.executable, "-m", "devtools.run_local", *args]
    for option in (
        "--port",
        "--genesys-port",
        "--webmessaging-port",
        "--secrets-port",
        "--demo-port",
        "--blocked-demo-port",
    ):
        command += [option, "0"]
    env = _clean_env()
    if source is not None:
        env["GUEST_TOKEN_SOURCE"] = source
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    stdout = process.stdout
    assert stdout is not None
    output: list[str] = []
    started = threading.Event()

    def drain() -> None:
        # The handler logs every request to stdout: keep reading so the server never blocks on a full pipe.
        for line in stdout:
            output.append(line)
            if line.startswith("Try: "):
                started.set()
        started.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        started.wait(60)
        printed = "".join(output)
        assert process.poll() is None and "Try: " in printed, printed

        def url(label: str) -> str:
            match = re.search(rf"^{re.escape(label)}:\s+(\S+)$", printed, re.MULTILINE)
            assert match, printed
            return match.group(1)

        started_stack = LocalStack(
            endpoint=url("Guest-token API"),
            demo=url("Demo page"),
            blocked_demo=url("Demo, origin not allowed"),
            genesys=url("Genesys emulator"),
            source=url("Guest-token source"),
            output=output,
        )
        assert started_stack.source == (source or "webmessaging"), printed
        yield started_stack
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _clean_env() -> dict[str, str]:
    # run_local computes the allowlist from the ports it gets, and defaults the source and the deployment
    # (the emulator's demo one); a value from the environment would win.
    ignored = {"ALLOWED_ORIGINS", "GUEST_TOKEN_SOURCE", "GENESYS_DEPLOYMENT_ID"}
    return {name: value for name, value in os.environ.items() if name not in ignored}


@pytest.fixture(autouse=True)
def fresh_genesys(stack: LocalStack) -> None:
    stack.genesys_control("POST", "reset")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Widget:
    """The demo page in a fresh browser context, with what went over the network and to the console."""

    page: Page
    endpoint: str
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to the endpoint
    tokens: list[dict[str, Any]] = field(default_factory=list)  # the 200 answers' bodies
    posts_done: int = 0  # POSTs to the endpoint answered or failed
    urls: list[str] = field(default_factory=list)  # every URL the page requested (WebSockets included)
    history_auth: list[str] = field(default_factory=list)  # the Authorization of each history call
    _answers: int = 0  # 200 answers seen; their bodies are read asynchronously

    def open(self, url: str, **query: str) -> None:
        self.page.goto(f"{url}?{urlencode(query)}" if query else url)

    def wait_for_tokens(self, count: int, timeout: float = 15_000) -> None:
        """Until the page has shown ``count`` tokens since it loaded, and their bodies are in ``tokens``."""
        self.page.wait_for_function(
            "count => Number(document.getElementById('token-count').textContent) >= count", arg=count, timeout=timeout
        )
        while len(self.tokens) < self._answers:
            self.page.wait_for_timeout(20)  # lets Playwright deliver the response bodies

    def wait_for_error(self, code: str, timeout: float = 15_000) -> dict[str, str]:
        """The demo's activity entry for the first error with ``code``: its data attributes."""
        entry = self.page.locator(f'#log li[data-kind="error"][data-code="{code}"]').last
        entry.wait_for(timeout=timeout)
        return dict(entry.evaluate("item => ({...item.dataset})"))

    def text(self, element_id: str) -> str:
        return self.page.locator(f"#{element_id}").inner_text()

    def stored_guest_id(self) -> str | None:
        return self.page.evaluate("key => localStorage.getItem(key)", STORAGE_KEY)

    def _on_console(self, message: ConsoleMessage) -> None:
        # The text and the full value of every argument: an object holding the token must show up too.
        values = []
        for arg in message.args:
            try:
                values.append(json.dumps(arg.json_value(), default=str))
            except Exception:
                values.append(str(arg))
        self.console.append(" ".join([message.type, message.text, *values]))

    def _on_request(self, request: Request) -> None:
        self.urls.append(request.url)
        if "/api/v2/webmessaging/messages" in request.url:
            self.history_auth.append(request.headers.get("authorization", ""))
        if request.url == self.endpoint and request.method == "POST":
            self.sent.append(request.post_data_json)

    def _on_done(self, request: Request) -> None:
        if request.url == self.endpoint and request.method == "POST":
            self.posts_done += 1

    def _on_response(self, response: Response) -> None:
        if response.url == self.endpoint and response.request.method == "POST" and response.status == 200:
            self._answers += 1
            self.tokens.append(response.json())

    def guest_ids(self) -> set[str]:
        """Every guest id the page sent or received (with `webmessaging`, each is a session token)."""
        sent = {body["guestId"] for body in self.sent if isinstance(body, dict) and "guestId" in body}
        return sent | {answer["guestId"] for answer in self.tokens}

    def assert_no_token_leaked(self) -> None:
        """No token the page received is in the console, its storage (local, session, cookies) or a URL (the
        page's, or any it requested); nor is any guest id (with `webmessaging`, the session token), except
        in the client's own entry in localStorage, which holds the id and nothing else."""
        local, session, cookie = self.page.evaluate(
            """() => {
                const read = (what) => { try { return what(); } catch { return 'blocked'; } };
                return [() => ({...localStorage}), () => ({...sessionStorage}), () => document.cookie].map(read);
            }"""
        )
        guest_ids = self.guest_ids()
        if isinstance(local, dict) and STORAGE_KEY in local:
            # The id itself and nothing else (an answer the page got as the test ended may not be recorded yet).
            stored_id = local[STORAGE_KEY]
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", stored_id), (
                "the client stored something other than a guest id"
            )
            guest_ids = guest_ids | {stored_id}
            local = {name: value for name, value in local.items() if name != STORAGE_KEY}
        stored = json.dumps([local, session, cookie, self.page.context.cookies()])
        written = "\n".join([*self.console, self.page.url, *self.urls])
        for answer in self.tokens:
            assert answer["token"] not in written
            assert answer["token"] not in stored
            # Nor a piece of it, say a truncated console.log: the signature is what makes each token unique.
            assert answer["token"][-40:] not in written + stored
        for guest_id in guest_ids:
            assert guest_id not in written, "a guest id reached the console"
            assert guest_id not in stored, "a guest id is stored outside the client's key"
            # A UUID's last group (48 random bits) is enough to find it: no piece of it either.
            assert guest_id[-12:] not in written + stored


@pytest.fixture
def widget(browser: Browser, stack: LocalStack) -> Iterator[Widget]:
    context = browser.new_context(viewport={"width": 900, "height": 760})
    page = context.new_page()
    page.set_default_timeout(15_000)
    widget = Widget(page, stack.endpoint)
    page.on("console", widget._on_console)
    page.on("pageerror", lambda error: widget.page_errors.append(str(error)))
    page.on("request", widget._on_request)
    page.on("websocket", lambda socket: widget.urls.append(socket.url))
    page.on("response", widget._on_response)
    page.on("requestfinished", widget._on_done)
    page.on("requestfailed", widget._on_done)
    yield widget
    try:
        widget.assert_no_token_leaked()
        assert widget.page_errors == []
    finally:
        # A token request still in flight would otherwise reach the service after the next test's reset
        # (30 s at most: a loaded machine may take seconds to answer one).
        for _ in range(300):
            if widget.posts_done >= len(widget.sent):
                break
            page.wait_for_timeout(100)
        context.close()
