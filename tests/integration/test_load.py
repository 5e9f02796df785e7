"""A bounded load test: a few thousand concurrent requests over loopback through the local HTTP endpoint
(devtools/local_api.py, one warm container like a Lambda instance) while the Genesys emulator injects 429s and
5xx. Every request gets exactly one answer, every 200 carries a token that verifies, and the OAuth access token
was fetched once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import urllib3
from guest_token import app as app_module

from devtools.genesys_emulator import GenesysEmulator
from devtools.local_api import LocalApi
from tests.conftest import ORIGIN

REQUESTS = 2000
CONCURRENCY = 16
FAULT_EVERY = 10  # one injected fault per this many requests, in the first 80% of them
FAULTS = [
    {"status": 429, "retry_after": 0},
    {"status": 429},
    {"status": 500},
    {"status": 502},
    {"status": 503},
    {"status": 504},
]
TIME_LIMIT_SECONDS = 120  # a bound, not a benchmark: it stops by itself long before the suite would stall


@pytest.fixture
def local_api(env: pytest.MonkeyPatch, log_stream: Any) -> Iterator[str]:
    # log_stream keeps the handler's log lines out of the terminal; port 0: any free loopback port.
    api = LocalApi(app_module.lambda_handler, port=0).start()
    yield api.url
    api.stop()


def test_thousands_of_concurrent_requests_while_genesys_misbehaves(local_api: str, emulator: GenesysEmulator) -> None:
    http = urllib3.PoolManager(maxsize=CONCURRENCY, retries=False, timeout=urllib3.Timeout(total=30))
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    injected = 0
    started = time.monotonic()

    def send(index: int) -> None:
        nonlocal injected
        if index % FAULT_EVERY == 0 and index < REQUESTS * 0.8:
            emulator.add_fault("guest-token", **FAULTS[(index // FAULT_EVERY) % len(FAULTS)])
            with lock:
                injected += 1
        assert time.monotonic() - started < TIME_LIMIT_SECONDS, "the load test ran past its time limit"
        response = http.request(
            "POST",
            f"{local_api}/guest-tokens",
            body=b"{}",
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )
        document = json.loads(response.data)  # exactly one JSON document per request
        with lock:
            answers.append((response.status, document))

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for future in [pool.submit(send, index) for index in range(REQUESTS)]:
            future.result()
    elapsed = time.monotonic() - started

    assert len(answers) == REQUESTS
    statuses = Counter(status for status, _ in answers)
    # An injected fault is retried; only the rare request that meets three in a row answers 429 or 503.
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] >= REQUESTS * 0.98, statuses

    key = jwt.PyJWK(emulator.public_jwks()["keys"][0]).key
    guest_ids = set()
    for status, document in answers:
        if status == 200:
            claims = jwt.decode(document["token"], key, algorithms=["RS256"])
            assert claims["sub"] == document["guestId"]
            assert claims["scope"].split() == document["scopes"]
            guest_ids.add(document["guestId"])
        else:
            assert {"code", "message", "requestId"} <= set(document["error"])
    assert len(guest_ids) == statuses[200], "a guest id was handed out twice"

    assert emulator.count("oauth") == 1, "the access token is cached across invocations"
    # Every attempt either met an injected fault or issued a token: all faults were met, none was lost.
    assert emulator.count("guest-token") == statuses[200] + injected
    print(f"load: {REQUESTS} requests, {injected} faults, {dict(statuses)}, {elapsed:.1f} s")
