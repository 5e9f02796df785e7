"""Warm invocations in one container, run by bench/__main__.py with the same layout as a cold start.

Usage: python -S bench/warm.py RESULT_JSON EVENT_JSON INVOCATIONS WARMUP [SAMPLING]

Invokes the handler INVOCATIONS times (the first one is the container's cold start) and, right after each,
a bare Powertools APIGatewayRestResolver that only returns a constant, so both see the same machine load.
The handler's own time is its wall time minus the upstream round trips it logged (the ``latencyMs`` of each
attempt, in a ``genesys_call`` line or the outcome line's ``calls``: the HTTP request to the emulator until its
answer is read, or for the webmessaging source the whole guest session: WebSocket handshake, configureSession,
getJwt and close). The lines and bytes each successful invocation writes (audit lines and the EMF document on
stdout, as CloudWatch Logs receives them) are counted too. Each call's own
latencies are kept too, and those of the first invocation (the container's first session, which imports the
WebSocket library). Log lines go to memory instead of stdout so they can be read; the first WARMUP
invocations are left out of the percentiles.

SAMPLING is what the trace headers say, which matters only with tracing on: ``default`` follows X-Ray's
default sampling rule (the first request in each second and 5 % of the others, decided by API Gateway),
``all`` samples every invocation (the most the Tracer can cost).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from cold_start import Context, genesys_attempts, new_invocation

X_RAY_DEFAULT_RATE = 0.05  # X-Ray's default rule: a reservoir of one request per second, then 5 %


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


def main() -> int:
    result_path, event_path = sys.argv[1:3]
    invocations, warmup = int(sys.argv[3]), int(sys.argv[4])
    sampling = sys.argv[5] if len(sys.argv) > 5 else "default"
    draw = random.Random(7)  # the same sampling decisions on every run
    reservoir_second = -1
    sampled_count = 0
    with open(event_path) as file:
        event = json.load(file)

    from aws_lambda_powertools.event_handler import APIGatewayRestResolver  # noqa: PLC0415
    from guest_token import observability  # noqa: PLC0415
    from guest_token.app import lambda_handler  # noqa: PLC0415

    bare = APIGatewayRestResolver()

    @bare.post("/guest-tokens")
    def constant() -> dict[str, Any]:
        return {"ok": True}

    logs = io.StringIO()
    observability.logger.registered_handler.setStream(logs)  # type: ignore[attr-defined]

    emf = io.StringIO()
    log_lines: list[float] = []
    log_bytes: list[float] = []
    own: list[float] = []
    total: list[float] = []
    upstream: list[float] = []
    baseline: list[float] = []
    calls: dict[str, list[float]] = {}
    first_calls: dict[str, float] = {}
    statuses: Counter[int] = Counter()
    for index in range(invocations):
        second = int(time.time())
        reservoir, reservoir_second = second != reservoir_second, second  # the first request in each second
        sampled = sampling == "all" or reservoir or draw.random() < X_RAY_DEFAULT_RATE
        if sampled and index >= warmup:
            sampled_count += 1
        context = new_invocation(sampled=sampled)
        started = time.perf_counter()
        with contextlib.redirect_stdout(emf):  # Powertools prints the EMF document
            answer = lambda_handler(event, context)
        elapsed = (time.perf_counter() - started) * 1000

        bare_context = Context()
        started = time.perf_counter()
        bare.resolve(event, bare_context)
        bare_elapsed = (time.perf_counter() - started) * 1000

        statuses[answer["statusCode"]] += 1
        round_trips = 0.0
        for line in logs.getvalue().splitlines():
            for call, latency in genesys_attempts(json.loads(line)):
                round_trips += latency
                if index == 0:
                    first_calls[call] = first_calls.get(call, 0.0) + latency
                elif index >= warmup:
                    calls.setdefault(call, []).append(latency)
        written = logs.getvalue() + emf.getvalue()
        if index >= warmup and answer["statusCode"] == 200:
            log_lines.append(written.count("\n"))
            log_bytes.append(len(written.encode()))
        for buffer in (logs, emf):
            buffer.seek(0)
            buffer.truncate()
        if index >= warmup:
            total.append(elapsed)
            upstream.append(round_trips)
            own.append(elapsed - round_trips)
            baseline.append(bare_elapsed)

    with open(result_path, "w") as file:
        json.dump(
            {
                "invocations": invocations,
                "measured": len(own),
                "sampled": sampled_count,
                "statuses": {str(status): count for status, count in statuses.items()},
                "own": percentiles(own),
                "total": percentiles(total),
                "upstream": percentiles(upstream),
                "bare": percentiles(baseline),
                "calls": {call: {"count": len(values), **percentiles(values)} for call, values in calls.items()},
                "firstCalls": first_calls,
                "logLines": percentiles(log_lines) if log_lines else None,
                "logBytes": percentiles(log_bytes) if log_bytes else None,
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
