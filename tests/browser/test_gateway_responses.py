"""API Gateway's own refusals, as the browser sees them: `make run`'s local API throttled like the stage
(`--throttle RATE BURST`) answers API Gateway's THROTTLED response, built from template.yaml's
GatewayResponses, without calling the function. The widget must read it (CORS) and wait it out as it waits
out the function's 429."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import LocalStack, Widget, http, local_stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # One request at once, one more every two seconds, for each method (as the stage's MethodSettings).
    with local_stack("rest", "--throttle", "0.5", "1") as started:
        yield started


def test_a_gateway_429_is_read_and_waited_out_like_the_functions(stack: LocalStack, widget: Widget):
    widget.page.wait_for_timeout(2_100)  # a full bucket, whatever the previous test left
    # Another client takes the POST bucket's only request (the function refuses it: no Origin).
    assert http.request("POST", stack.endpoint, json={}).status == 403
    widget.open(stack.demo)

    error = widget.wait_for_error("rate_limited")
    # Readable cross-origin: the status, the service's error code and the Retry-After, not a network error.
    assert float(error["retryIn"]) == 1
    assert widget.text("error-status") == "(HTTP 429)"
    assert widget.page.locator('#log li[data-code="network_error"]').count() == 0
    widget.wait_for_tokens(1)
    assert widget.text("status") == "Token ready"
    assert len(widget.sent) >= 2  # a second wait when the bucket had not refilled yet
    assert len(stack.guest_token_calls()) == 1  # the throttled request never reached the function


def test_a_page_from_an_origin_not_allowed_still_gets_no_token(stack: LocalStack, widget: Widget):
    widget.page.wait_for_timeout(2_100)  # a full bucket: the refusal is the function's, by origin
    widget.open(stack.blocked_demo)

    widget.wait_for_error("network_error")
    assert widget.tokens == []
    assert stack.guest_token_calls() == []
