"""docs/widget.md's "Embed it in your page", run as written: its HTML page, saved in a folder `make run` serves
(SITE_DIR, here `--site`), chats with the emulator's agent and finds the conversation again after a reload.
The only edits are the two local URLs' ports, which the test picks free (as test_make_run.py does with the
README's curl)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, REPO, LocalStack, Widget, local_stack

pytestmark = pytest.mark.browser

HEADING = "## Embed it in your page"
API = "http://127.0.0.1:3000"  # as the snippet names them: make run's default ports
SITE = "http://127.0.0.1:3080"
AGENT = "Agent: Thanks! You wrote: "


def documented_page() -> str:
    """The first HTML block under the heading."""
    text = (REPO / "docs/widget.md").read_text()
    section = text[text.index(HEADING) :]
    match = re.search(r"^```html\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert match, f"no ```html block under {HEADING!r} in docs/widget.md"
    return match.group(1)


def origin(url: str) -> str:
    return "{0.scheme}://{0.netloc}".format(urlsplit(url))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("my-site")


@pytest.fixture(scope="module")
def stack(site: Path) -> Iterator[LocalStack]:
    with local_stack(None, "--site", str(site)) as started:
        page = documented_page()
        assert page.count(API) == 1 and page.count(SITE) == 1, "the snippet's two local URLs changed"
        page = page.replace(API, origin(started.endpoint)).replace(SITE, origin(started.demo))
        (site / "index.html").write_text(page)
        (site / "no-relay.html").write_text(re.sub(r"^.*apiBaseUrl.*\n", "", page, flags=re.MULTILINE))
        yield started


def printed(stack: LocalStack, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:\s+(.+)$", "".join(stack.output), re.MULTILINE)
    assert match, stack.output
    return match.group(1)


def test_the_documented_page_chats_and_finds_the_conversation_after_a_reload(
    stack: LocalStack, widget: Widget, site: Path
):
    # make run says where your pages are, and its relay, which the snippet names.
    url, source = printed(stack, "Your pages (SITE_DIR)").split("  from ")
    assert url == f"{origin(stack.demo)}/" and Path(source) == site.resolve()
    relay = printed(stack, "History relay").split()[0]
    assert relay == f"{origin(stack.demo)}/genesys/"

    page = widget.page
    widget.open(url)
    page.get_by_label("Message").fill("Hello from my page")
    page.get_by_role("button", name="Send").click()
    items = page.locator("#messages li")
    expect(items).to_have_text(["You: Hello from my page", AGENT + "Hello from my page"])
    assert page.get_by_label("Message").input_value() == ""

    page.reload()
    expect(items).to_have_text(["You: Hello from my page", AGENT + "Hello from my page"])
    expect(page.locator("#state")).to_have_text("")  # open, and no problem to report
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "embed.png")
    # The history came through make run's relay, with the guest's JWT; the modules from widget/.
    assert f"{relay}api/v2/webmessaging/messages?pageSize=25" in widget.urls
    assert widget.history_auth[-1] == f"Bearer {widget.tokens[-1]['token']}"
    assert f"{url}guest-chat.js" in widget.urls


def test_without_the_relay_the_history_call_fails_with_a_coded_error(stack: LocalStack, widget: Widget):
    # What issue 23 saw: the REST URL derived from the emulator's ws:// URL answers nothing. The chat still
    # works; the page is told why the history is missing.
    widget.open(f"{origin(stack.demo)}/no-relay.html")
    widget.page.get_by_label("Message").fill("Anyone?")
    widget.page.get_by_role("button", name="Send").click()
    expect(widget.page.locator("#messages li").last).to_have_text(AGENT + "Anyone?")
    widget.page.reload()
    expect(widget.page.locator("#state")).to_have_text("Problem: network_error")


def test_the_relay_answers_a_page_on_another_origin_with_cors(stack: LocalStack, widget: Widget):
    # A page on your own dev server (ALLOWED_ORIGINS) passes the relay's absolute URL as apiBaseUrl.
    widget.page.goto(f"{origin(stack.blocked_demo)}/guest-chat.js")  # any document of another origin
    status = widget.page.evaluate(
        """url => fetch(url, { headers: { Authorization: 'Bearer not-a-jwt' }, credentials: 'omit' })
            .then((response) => response.status, (error) => String(error))""",
        f"{origin(stack.demo)}/genesys/api/v2/webmessaging/messages?pageSize=1",
    )
    assert status == 401  # the emulator's answer, readable across origins
