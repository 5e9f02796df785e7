"""API Gateway's own refusals, as the browser sees them: `make run`'s local API throttled like the stage
(`--throttle RATE BURST`) answers API Gateway's THROTTLED response, built from template.yaml's
GatewayResponses, without calling the function. The widget must read it (CORS) and wait it out as it waits
out the function's 429."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.browser.conftest import LocalStack, Widget, http, local_stack
from tests.browser.test_widget import paused_clock, token_requests
from tests.conftest import SLOW_MACHINE_SECONDS

pytestmark = pytest.mark.browser

# One request more every REFILL_SECONDS for each method (as the stage's MethodSettings), in bursts of two. The
# refill is the real clock's: the widget's request must reach an empty bucket before it refills, however
# slowly the page opens, so it is twice what a loaded machine may add.
REFILL_SECONDS = 2 * SLOW_MACHINE_SECONDS
BURST = 2  # each test's page sends one preflight (a fresh browser context): neither waits for a refill


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with local_stack("rest", "--throttle", str(1 / REFILL_SECONDS), str(BURST)) as started:
        yield started


def empty_the_post_bucket(stack: LocalStack) -> float:
    """Another client takes every request the POST bucket holds (the function refuses them: no Origin) until
    the gateway throttles it. Returns when (time.monotonic) the bucket was known empty: it holds a request
    again within REFILL_SECONDS of that, and not much sooner."""
    for _ in range(BURST + 1):
        status = http.request("POST", stack.endpoint, json={}).status
        if status == 429:
            return time.monotonic()
        assert status == 403
    raise AssertionError("the gateway never throttled the POSTs")


def test_a_gateway_429_is_read_and_waited_out_like_the_functions(stack: LocalStack, widget: Widget):
    paused_clock(widget)  # the widget's waits are the page's; the bucket's refill is the real clock's
    emptied_at = empty_the_post_bucket(stack)
    widget.open(stack.demo)

    error = widget.wait_for_error("rate_limited")
    # Readable cross-origin: the status, the service's error code and the Retry-After, not a network error.
    assert float(error["retryIn"]) == 1
    assert widget.text("error-status") == "(HTTP 429)"
    assert widget.page.locator('#log li[data-code="network_error"]').count() == 0
    widget.page.clock.run_for(900)
    assert token_requests(widget) == 1  # it waits the second it was told to
    # The bucket holds a request again (the real clock's wait), then the page's second passes: one retry.
    time.sleep(max(0.0, emptied_at + REFILL_SECONDS + 0.5 - time.monotonic()))
    widget.page.clock.run_for(200)
    widget.wait_for_tokens(1)
    assert widget.text("status") == "Token ready"
    assert len(widget.sent) == 2
    assert len(stack.guest_token_calls()) == 1  # the throttled request never reached the function


def test_a_page_from_an_origin_not_allowed_still_gets_no_token(stack: LocalStack, widget: Widget):
    widget.open(stack.blocked_demo)

    widget.wait_for_error("network_error")
    # The refusal is the function's, by origin: its preflight answer allows no origin (a throttled preflight
    # would say 429, with this origin allowed).
    assert any("No 'Access-Control-Allow-Origin' header" in line for line in widget.console), widget.console
    assert widget.tokens == []
    assert stack.guest_token_calls() == []
