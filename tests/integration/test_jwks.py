"""The JWKS fetch (issue 22, item 2), through the real handler over real sockets: a JWKS that trickles its
answer costs the request that meets it and nothing more (the next request, the JWKS answering at once, gets
its token at once: no worker, lock or socket outlives a request); an answer over 1 MiB is refused unread; a
token's kid reaches the log bounded, however long; and an unknown kid refetches the keys once, not once per
request.

The JWKS is served by the emulator, or, where the answer itself is the fault, by a server on loopback below
(``JwksServer``) that answers each request as its queue says. Tokens come from the emulator's guest-token
route (the ``rest`` source), signed with its key unless a test crafts one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from guest_token import verify
from jwt.algorithms import RSAAlgorithm

from devtools.genesys_emulator import GenesysEmulator
from tests.conftest import SLOW_MACHINE_SECONDS, StillClock

GUEST_ID = "4b1f7c3e-9a2d-4e6f-8b0c-1d2e3f405162"
SCOPE = "webmessaging:guest:send webmessaging:guest:receive"
LAMBDA_TIMEOUT = 3.0
# The trickle: a byte of the JWKS every PACE seconds, about two minutes for the whole answer.
PACE = 0.3
# What "a short log line" means here: a bounded value is at most 200 characters and the longest ordinary line
# (a token_failed with its calls) is well under 2,000.
LONGEST_LOG_LINE = 4000
MAX_ANSWER_BYTES = 1 << 20
HUGE_ANSWER_BYTES = 400 * MAX_ANSWER_BYTES
# Streamed before the function hangs up: what it read (about 1 MiB) plus what the kernel buffers on loopback
# (a few MiB each side); far below the answer's 400 MiB.
MOST_BYTES_SENT = 64 * MAX_ANSWER_BYTES


@dataclass
class Behaviour:
    kind: str  # "fast", "trickle" (the body), "trickle-head" (the whole answer), "huge", "status" or "raw"
    status: int = 200
    body: bytes | None = None  # "raw": the body answered as is


class JwksServer:
    """An HTTP server on loopback answering GET with a JWKS, each request as the next queued behaviour says
    ("fast" once the queue is empty): at once, a byte every PACE seconds, 400 MiB streamed, an error status or
    a body as is. It records how many requests came, and whether a client hung up while it was still sending
    (and how many body bytes it had sent by then)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.queue: deque[Behaviour] = deque()
        self.requests = 0
        self.hung_up = threading.Event()
        self.sent = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/jwks.json"
        self._thread = threading.Thread(target=self._serve, name="jwks-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                received = connection.recv(4096)
                if not received:
                    return
                head += received
            self.requests += 1
            behaviour = self.queue.popleft() if self.queue else Behaviour("fast")
            body = behaviour.body if behaviour.body is not None else json.dumps(self.document).encode()
            if behaviour.kind == "huge":
                self._stream(connection)
                return
            reason = "OK" if behaviour.status == 200 else "Error"
            answer_head = (
                f"HTTP/1.1 {behaviour.status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if behaviour.kind == "trickle":
                connection.sendall(answer_head)
                self._trickle(connection, body)
            elif behaviour.kind == "trickle-head":
                self._trickle(connection, answer_head + body)
            else:
                connection.sendall(answer_head + body)

    def _trickle(self, connection: socket.socket, data: bytes) -> None:
        try:
            for index in range(len(data)):
                if self._stop.wait(PACE):
                    return
                connection.sendall(data[index : index + 1])
        except OSError:
            self.hung_up.set()

    def _stream(self, connection: socket.socket) -> None:
        """HUGE_ANSWER_BYTES of a JWKS that never ends, from one 64 KiB chunk: never held whole here either."""
        chunk = b" " * 65536
        connection.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE_ANSWER_BYTES}\r\n"
            "Connection: close\r\n\r\n".encode()
            + b'{"keys": ['
        )
        self.sent = 10
        try:
            while self.sent + len(chunk) <= HUGE_ANSWER_BYTES and not self._stop.is_set():
                connection.sendall(chunk)
                self.sent += len(chunk)
        except OSError:
            self.hung_up.set()


@pytest.fixture
def cache_clock(monkeypatch: pytest.MonkeyPatch) -> StillClock:
    """verify.py's clock, which ages its JWKS cache: "keys fetched moments ago" and "keys JWKS_REFETCH_SECONDS
    old" are what the test makes them, however fast the requests run (exp is judged by the real clock)."""
    return StillClock().install(monkeypatch, verify)


@pytest.fixture
def jwks_server(emulator: GenesysEmulator, env: pytest.MonkeyPatch) -> Iterator[JwksServer]:
    """The emulator's JWKS served by a JwksServer, which GENESYS_JWKS_URL names."""
    server = JwksServer(emulator.public_jwks())
    env.setenv("GENESYS_JWKS_URL", server.url)
    yield server
    server.close()


def signed(key: Any, kid: str) -> str:
    """A token the rest source accepts for GUEST_ID (a request without duration), signed with ``key``."""
    now = int(time.time())
    claims = {"sub": GUEST_ID, "scope": SCOPE, "iat": now, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def timed(invoke: Any, body: Any, timeout: float) -> tuple[Any, float]:
    started = time.monotonic()
    answer = invoke(body, timeout_seconds=timeout)
    return answer, time.monotonic() - started


def failed_detail(answer: Any) -> str:
    [line] = answer.events("token_failed")
    return str(line.get("detail"))


def warm(invoke: Any) -> None:
    """A warm container whose JWKS keys are forgotten (its secret and access token stay cached), so that a short
    budget goes to the JWKS fetch, not to a cold start a busy machine can make last seconds; one JWKS request."""
    assert invoke({}).status == 200
    verify.reset()


# ---- a slow JWKS costs one request, not the container --------------------------------------------------


@pytest.mark.parametrize("kind", ["trickle", "trickle-head"], ids=["body", "headers-too"])
def test_a_trickling_jwks_costs_its_request_and_not_the_next(invoke: Any, jwks_server: JwksServer, kind: str) -> None:
    # The case: a JWKS answering a byte every PACE seconds, for far longer than the function's timeout.
    # Its headers too: they are read by http.client, line by line, and only the deadline's alarm ends that.
    warm(invoke)
    jwks_server.queue.append(Behaviour(kind))

    first, elapsed = timed(invoke, {}, LAMBDA_TIMEOUT)
    assert (first.status, first.error_code) == (504, "upstream_timeout"), first.body
    assert elapsed < LAMBDA_TIMEOUT + SLOW_MACHINE_SECONDS, elapsed  # not the trickle's two minutes
    # Nothing of the request outlives it: its socket to the JWKS is closed, so the trickle is sent to no one
    # (a send after the close fails at once; generous, as a loaded machine may be slow to deliver the reset).
    assert jwks_server.hung_up.wait(timeout=10), "the function still reads the trickling JWKS after its answer"

    # The same warm container, the JWKS now answering at once: a token, without waiting for anything.
    budget = 10.0
    second, elapsed = timed(invoke, {}, budget)
    assert second.status == 200, (second.body, second.events("token_failed"))
    assert elapsed < budget / 2, f"{elapsed:.2f} s: the next request waited for the slow one"
    assert jwks_server.requests == 1 + 2


def test_a_jwks_that_trickles_past_the_deadline_then_recovers_every_time(invoke: Any, jwks_server: JwksServer) -> None:
    # Twice in a row: each slow answer costs its own request only, and the first fast one is cached.
    warm(invoke)
    jwks_server.queue.extend([Behaviour("trickle"), Behaviour("trickle")])
    for _ in range(2):
        answer, elapsed = timed(invoke, {}, 2.0)
        assert (answer.status, answer.error_code) == (504, "upstream_timeout")
        assert elapsed < 2.0 + SLOW_MACHINE_SECONDS
    for _ in range(3):
        assert invoke({}).status == 200
    assert jwks_server.requests == 1 + 3


# ---- the size cap -------------------------------------------------------------------------------------


def test_a_jwks_over_1_mib_is_refused_unread(invoke: Any, jwks_server: JwksServer) -> None:
    jwks_server.queue.append(Behaviour("huge"))

    answer, elapsed = timed(invoke, {}, 10.0)
    assert (answer.status, answer.error_code) == (502, "upstream_error"), answer.body
    assert f"more than {MAX_ANSWER_BYTES} bytes" in failed_detail(answer)
    assert elapsed < 10.0
    # The function hung up after about a megabyte: the rest of the 400 MiB was never sent, let alone read.
    assert jwks_server.hung_up.wait(timeout=10)
    assert jwks_server.sent < MOST_BYTES_SENT, jwks_server.sent
    # Nothing was cached from it: the next request fetches the (now ordinary) JWKS and gets its token.
    assert invoke({}).status == 200
    assert jwks_server.requests == 2


# ---- how each kind of JWKS failure is answered -----------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "status", "code", "phrase"),
    [
        (Behaviour("status", status=503), 503, "upstream_unavailable", "answered 503"),
        (Behaviour("status", status=404), 503, "upstream_unavailable", "answered 404"),
        (Behaviour("raw", body=b"<html>not a key set</html>"), 502, "upstream_error", "JWKS"),
        (Behaviour("raw", body=b'{"keys": []}'), 502, "upstream_error", "JWKS"),
        (Behaviour("raw", body=b'{"keys": [{"kty": "RSA", "kid": "x", "n": 5}]}'), 502, "upstream_error", "JWKS"),
        (Behaviour("raw", body=b"[" * 100_000 + b"]" * 100_000), 502, "upstream_error", "JWKS"),
    ],
    ids=["503", "404", "not-json", "no-keys", "unusable-key", "deep"],
)
def test_jwks_failures_answer_as_documented(
    invoke: Any, jwks_server: JwksServer, behaviour: Behaviour, status: int, code: str, phrase: str
) -> None:
    jwks_server.queue.append(behaviour)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (status, code), answer.body
    assert phrase in failed_detail(answer)
    assert jwks_server.requests == 1  # one attempt, as before: the JWKS is not retried within a request
    assert invoke({}).status == 200  # a failed fetch is not cached


def test_an_unreachable_jwks_answers_503(invoke: Any, env: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    env.setenv("GENESYS_JWKS_URL", f"http://127.0.0.1:{port}/jwks.json")  # nothing listens there any more
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")


# ---- a token's kid in the log --------------------------------------------------------------------------


def test_a_600_kb_kid_leaves_every_log_line_short(
    invoke: Any, emulator: GenesysEmulator, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # other libraries' records (urllib3's) are checked too
    env.setenv("GENESYS_JWKS_URL", emulator.jwks_url)
    kid = "k" * 600_000
    emulator.add_fault("guest-token", token=signed(emulator.signing_key, kid))

    answer = invoke({"guestId": GUEST_ID})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    detail = failed_detail(answer)
    assert "signing key not usable" in detail and "(600000 characters" in detail
    longest = max(len(json.dumps(line)) for line in answer.logs)
    assert longest < LONGEST_LOG_LINE, longest
    assert all(len(record.getMessage()) < LONGEST_LOG_LINE for record in caplog.records)
    assert emulator.count("jwks") == 1


# ---- unknown kids and key rotation ---------------------------------------------------------------------


def test_an_unknown_kid_fetches_the_jwks_once_not_once_per_request(
    invoke: Any, emulator: GenesysEmulator, env: pytest.MonkeyPatch, cache_clock: StillClock
) -> None:
    env.setenv("GENESYS_JWKS_URL", emulator.jwks_url)
    # A cold container: the one fetch answers the question; the kid is not in the keys just fetched.
    emulator.add_fault("guest-token", unknown_kid=True)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert "signing key not usable" in failed_detail(answer)
    assert emulator.count("jwks") == 1

    # A stream of made-up kids against keys fetched moments ago (up to a hair less than JWKS_REFETCH_SECONDS on
    # the cache's clock): no request fetches them again.
    for _ in range(5):
        emulator.add_fault("guest-token", unknown_kid=True)
        assert invoke({}).status == 502
        cache_clock.now += (verify.JWKS_REFETCH_SECONDS - 0.1) / 5
    assert invoke({}).status == 200  # the known kid, from the cache
    assert emulator.count("jwks") == 1


def test_a_rotated_key_is_picked_up_by_one_refetch(
    invoke: Any, emulator: GenesysEmulator, jwks_server: JwksServer, cache_clock: StillClock
) -> None:
    assert invoke({}).status == 200  # the keys are cached
    assert jwks_server.requests == 1

    # Genesys rotates: its JWKS gains a key, and tokens are signed with it.
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(rotated.public_key(), as_dict=True), "kid": "rotated-1", "use": "sig"}
    jwks_server.document = {"keys": [*emulator.public_jwks()["keys"], jwk]}
    # Until the cached keys are JWKS_REFETCH_SECONDS old, an unknown kid does not fetch them again; then it
    # fetches them once.
    emulator.add_fault("guest-token", token=signed(rotated, "rotated-1"))
    cache_clock.now += verify.JWKS_REFETCH_SECONDS - 0.1
    assert invoke({"guestId": GUEST_ID}).status == 502
    assert jwks_server.requests == 1
    cache_clock.now += 0.2
    emulator.add_fault("guest-token", token=signed(rotated, "rotated-1"))
    answer = invoke({"guestId": GUEST_ID})
    assert answer.status == 200, answer.events("token_failed")
    assert jwks_server.requests == 2

    # Both keys are in hand now; a made-up kid right after the refetch fetches nothing.
    emulator.add_fault("guest-token", token=signed(emulator.signing_key, emulator.kid))
    assert invoke({"guestId": GUEST_ID}).status == 200
    emulator.add_fault("guest-token", unknown_kid=True)
    assert invoke({}).status == 502
    assert jwks_server.requests == 2
