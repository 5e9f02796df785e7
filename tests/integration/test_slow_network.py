"""A slow network under a short Lambda timeout (issue 15, finding 1): slow connects (a proxy whose accept
queue is full, so the first SYN is dropped and the connect takes about a second, as after one lost packet),
slow answers, a slow JWKS, a slow WebSocket handshake and a slow getJwt, alone and together, through the real
handler against the emulator.

Each row keeps the fault matrix's invariants where time is the adversary: the invocation returns before the
Lambda timeout, with exactly one JSON document (the token, or the error shape with 504 upstream_timeout),
CORS headers for the widget, and one token_failed (or token_issued) audit line with the answer's status.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID, JWKS_PATH, GenesysEmulator, SlowConnectProxy
from tests.conftest import ORIGIN, SLOW_MACHINE_SECONDS, Answer

LAMBDA_TIMEOUT = 3.0
# The rows expecting a token: the same slow network, with time to spare for a slow machine too. And the rows
# whose phrase says which call met the deadline when that call comes late in the request: a slow machine's
# start cannot make an earlier one meet it (their last delay grows by as much).
ROOMY_TIMEOUT = LAMBDA_TIMEOUT + SLOW_MACHINE_SECONDS
# A hold this long makes a connect started during it take about 1 s: one dropped SYN, sent again 1 s later.
ONE_DROPPED_SYN = 0.5
ERROR_FIELDS = {"code", "message", "requestId"}
REST_FIELDS = {"token", "guestId", "scopes", "expiresIn", "expiresAt"}
WEBMESSAGING_FIELDS = {"token", "guestId", "expiresIn", "expiresAt", "newSession", "deploymentId", "webSocketUrl"}


@dataclass
class Net:
    """What a case's setup may change: the emulator, the environment, and the slow-connect proxies."""

    emulator: GenesysEmulator
    env: pytest.MonkeyPatch
    http_proxy: SlowConnectProxy  # in front of the emulator's HTTP port (OAuth, API, JWKS)
    ws_proxy: SlowConnectProxy  # in front of its Web Messaging WebSocket port
    holds: list[tuple[SlowConnectProxy, float]] = field(default_factory=list)  # applied as the request starts


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None  # None for a 200
    setup: Callable[[Net], None]
    source: str = "rest"
    timeout: float = LAMBDA_TIMEOUT
    phrase: str | None = None  # in the token_failed line's detail


def faults(*specs: tuple[str, dict[str, Any]]) -> Callable[[Net], None]:
    def setup(net: Net) -> None:
        for route, fields in specs:
            # times=None: Genesys stays slow for every attempt, as in a brownout.
            net.emulator.add_fault(route, **{"times": None, **fields})

    return setup


def all_of(*steps: Callable[[Net], None]) -> Callable[[Net], None]:
    def setup(net: Net) -> None:
        for step in steps:
            step(net)

    return setup


def slow_connect(*variables: str, hold: float = ONE_DROPPED_SYN) -> Callable[[Net], None]:
    """Point ``variables`` (base URLs) at the HTTP proxy, whose connects are slow for ``hold`` seconds."""

    def setup(net: Net) -> None:
        for variable in variables:
            net.env.setenv(variable, net.http_proxy.url)
        net.holds.append((net.http_proxy, hold))

    return setup


def jwks(*, through_proxy: bool = False, hold: float = ONE_DROPPED_SYN) -> Callable[[Net], None]:
    def setup(net: Net) -> None:
        if through_proxy:
            net.env.setenv("GENESYS_JWKS_URL", net.http_proxy.url + JWKS_PATH)
            net.holds.append((net.http_proxy, hold))
        else:
            net.env.setenv("GENESYS_JWKS_URL", net.emulator.jwks_url)

    return setup


def slow_ws_connect(hold: float = ONE_DROPPED_SYN) -> Callable[[Net], None]:
    def setup(net: Net) -> None:
        net.env.setenv("GENESYS_WEBMESSAGING_BASE_URL", net.ws_proxy.url)
        net.holds.append((net.ws_proxy, hold))

    return setup


TIMED_OUT = (504, "upstream_timeout")
CASES = [
    # ---- the rest source: a slow connect plus a slow answer ---------------------------------------------
    Case(
        "slow-connect-then-slow-answer",  # the 3.54 s under a 3.0 s timeout
        *TIMED_OUT,
        all_of(slow_connect("GENESYS_OAUTH_BASE_URL", "GENESYS_API_BASE_URL"), faults(("guest-token", {"delay": 2.5}))),
        phrase="did not answer in time",
    ),
    Case(
        "slow-connect-to-the-api-then-slow-answer",
        *TIMED_OUT,
        all_of(slow_connect("GENESYS_API_BASE_URL"), faults(("guest-token", {"delay": 2.5}))),
        phrase="did not answer in time",
    ),
    Case(
        "slow-connect-then-slow-oauth",
        *TIMED_OUT,
        all_of(slow_connect("GENESYS_OAUTH_BASE_URL"), faults(("oauth", {"delay": 2.5}))),
        phrase="did not answer in time",
    ),
    Case(
        "connect-slower-than-the-connect-timeout",
        *TIMED_OUT,
        slow_connect("GENESYS_OAUTH_BASE_URL", "GENESYS_API_BASE_URL", hold=10.0),
    ),
    Case(
        "slow-connect-and-slow-answer-within-budget",
        200,
        None,
        all_of(slow_connect("GENESYS_OAUTH_BASE_URL", "GENESYS_API_BASE_URL"), faults(("guest-token", {"delay": 0.5}))),
        timeout=ROOMY_TIMEOUT,
    ),
    # ---- the rest source with signatures: a slow guest token plus a slow JWKS -----------------------------
    Case(
        "slow-guest-token-then-slow-jwks",  # the 4.17 s
        *TIMED_OUT,
        all_of(jwks(), faults(("guest-token", {"delay": 1.5}), ("jwks", {"delay": 2.5}))),
    ),
    Case(
        "slow-guest-token-then-slow-connect-and-slow-answer-from-jwks",
        *TIMED_OUT,
        all_of(jwks(through_proxy=True, hold=2.0), faults(("guest-token", {"delay": 1.2}), ("jwks", {"delay": 2.5}))),
    ),
    Case(
        "jwks-silent-after-a-quick-token",
        *TIMED_OUT,
        all_of(jwks(), faults(("jwks", {"delay": 10.0}))),
    ),
    Case(
        "slow-guest-token-and-slow-jwks-within-budget",
        200,
        None,
        all_of(jwks(), faults(("guest-token", {"delay": 0.5}), ("jwks", {"delay": 0.5}))),
        timeout=ROOMY_TIMEOUT,
    ),
    # ---- the webmessaging source: a slow handshake plus a slow getJwt ------------------------------------
    Case(
        "slow-handshake-then-slow-getjwt",
        *TIMED_OUT,
        faults(("ws-connect", {"delay": 1.5}), ("get-jwt", {"delay": 2.5 + SLOW_MACHINE_SECONDS})),
        source="webmessaging",
        timeout=ROOMY_TIMEOUT,
        # Which wait runs out is the machine's doing (a loaded one can stretch the 1.5 s handshake past its
        # 4 s): either way one 504 within the budget, saying what timed out.
        phrase="in time",
    ),
    Case(
        "slow-ws-connect-then-slow-handshake-then-slow-getjwt",
        *TIMED_OUT,
        all_of(slow_ws_connect(), faults(("ws-connect", {"delay": 1.0}), ("get-jwt", {"delay": 2.5}))),
        source="webmessaging",
    ),
    Case(
        "handshake-slower-than-the-time-left",
        *TIMED_OUT,
        faults(("ws-connect", {"delay": 10.0})),
        source="webmessaging",
        phrase="handshake in time",
    ),
    Case(
        "slow-connect-then-slow-deployment-lookup",
        *TIMED_OUT,
        all_of(
            slow_connect("GENESYS_OAUTH_BASE_URL", "GENESYS_API_BASE_URL"),
            faults(("deployment", {"delay": 2.5 + SLOW_MACHINE_SECONDS})),
        ),
        source="webmessaging",
        timeout=ROOMY_TIMEOUT,
        phrase="did not answer in time",
    ),
    Case(
        "slow-handshake-and-slow-getjwt-within-budget",
        200,
        None,
        all_of(slow_ws_connect(), faults(("ws-connect", {"delay": 0.3}), ("get-jwt", {"delay": 0.3}))),
        source="webmessaging",
        timeout=ROOMY_TIMEOUT,
    ),
]

# Rows whose status is known to be wrong (id -> (status, code, reason)): none today. Every other invariant of
# such a row is checked first; the row then xfails with the reason instead of failing.
KNOWN_STATUS_DEFECTS: dict[str, tuple[int, str, str]] = {}
# Rows that overrun the Lambda timeout (id -> reason): none today.
KNOWN_OVERRUNS: dict[str, str] = {}


def row(case: Case) -> Any:
    reason = KNOWN_OVERRUNS.get(case.id)
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def http_proxy(emulator: GenesysEmulator) -> Iterator[SlowConnectProxy]:
    with SlowConnectProxy(emulator.base_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def ws_proxy(emulator: GenesysEmulator) -> Iterator[SlowConnectProxy]:
    with SlowConnectProxy(emulator.webmessaging_url) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def no_hold_outlives_its_test(http_proxy: SlowConnectProxy, ws_proxy: SlowConnectProxy) -> Iterator[None]:
    yield
    http_proxy.release()
    ws_proxy.release()


def resent_syns(connection: socket.socket) -> int | None:
    """How many times the kernel sent the connection's segments again, its SYN included (Linux's
    tcpi_total_retrans, the 24th 32-bit field of struct tcp_info after 8 bytes); None where there is no TCP_INFO."""
    if not hasattr(socket, "TCP_INFO"):
        return None
    info = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("24I", info, 8)[23])


def test_the_proxy_delays_connects_by_one_dropped_syn(http_proxy: SlowConnectProxy) -> None:
    address = http_proxy.url.removeprefix("http://").rsplit(":", 1)
    http_proxy.hold(ONE_DROPPED_SYN)
    started = time.monotonic()
    with socket.create_connection((address[0], int(address[1])), timeout=30) as held:
        connected = time.monotonic() - started
        resent = resent_syns(held)
    # The kernel's timer sets the delay, not the machine's speed: its SYN was dropped and sent again 1 s later
    # (again, should a busy machine end the hold late); it did get through.
    assert connected > 0.8, connected
    assert resent is None or resent >= 1, resent
    started = time.monotonic()
    with socket.create_connection((address[0], int(address[1])), timeout=30) as after:
        # The hold is over: nothing was dropped (without TCP_INFO, by the clock: a dropped SYN costs a second).
        if resent is not None:
            assert resent_syns(after) == 0
        else:
            assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("case", [row(case) for case in CASES])
def test_slow_network(
    case: Case,
    invoke: Any,
    emulator: GenesysEmulator,
    env: pytest.MonkeyPatch,
    http_proxy: SlowConnectProxy,
    ws_proxy: SlowConnectProxy,
) -> None:
    if case.source == "webmessaging":
        env.setenv("GUEST_TOKEN_SOURCE", "webmessaging")
        env.setenv("GENESYS_DEPLOYMENT_ID", DEMO_DEPLOYMENT_ID)
        env.setenv("GENESYS_WEBMESSAGING_BASE_URL", emulator.webmessaging_url)
    net = Net(emulator, env, http_proxy, ws_proxy)
    case.setup(net)
    for proxy, seconds in net.holds:
        proxy.hold(seconds)

    started = time.monotonic()
    answer = invoke({}, timeout_seconds=case.timeout)
    elapsed = time.monotonic() - started

    # Lambda would have killed it otherwise: a gateway 5xx without CORS headers, and no audit line. The handler
    # keeps 0.3 s for its answer, which a loaded machine can stretch, so the bound allows for a slow machine: it
    # catches a request hanging on the network (the 10 s rows); one that waited out a shorter delay got its token
    # instead of the row's 504, which the status check refuses.
    assert elapsed < case.timeout + SLOW_MACHINE_SECONDS, f"{case.id}: {elapsed:.2f} s under a {case.timeout} s timeout"
    check_one_answer(answer, case)
    known = KNOWN_STATUS_DEFECTS.get(case.id)
    if known is not None and (answer.status, answer.json["error"]["code"]) == known[:2]:
        pytest.xfail(known[2])
    assert answer.status == case.status, (f"{elapsed:.2f} s", answer.body, answer.events("token_failed"))
    if case.code is not None:
        assert answer.error_code == case.code
        if case.phrase is not None:
            details = [str(line.get("detail")) for line in answer.events("token_failed")]
            assert any(case.phrase in detail for detail in details), details


def check_one_answer(answer: Answer, case: Case) -> None:
    """Exactly one JSON document in the documented shape, with CORS, and its audit line."""
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers.get("Access-Control-Allow-Origin") == ORIGIN
    document = json.loads(answer.body)
    outcomes = answer.events("token_issued") + answer.events("token_failed")
    assert [line["status"] for line in outcomes] == [answer.status], outcomes
    if answer.status == 200:
        assert set(document) == (REST_FIELDS if case.source == "rest" else WEBMESSAGING_FIELDS)
        assert answer.events("token_issued")
        return
    assert set(document) == {"error"}, document
    assert ERROR_FIELDS <= set(document["error"]) <= {*ERROR_FIELDS, "details"}, document
    assert all(document["error"][name] for name in ERROR_FIELDS)
    assert answer.events("token_failed")


def test_every_row_is_distinct() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
    assert set(KNOWN_STATUS_DEFECTS) | set(KNOWN_OVERRUNS) <= {case.id for case in CASES}
