"""One cold start, run by bench/__main__.py in a fresh `python -S` interpreter laid out as Lambda lays it out.

Usage: python -S bench/cold_start.py RESULT_JSON EVENT_JSON HANDLER

Before the clock starts it imports the runtime interface client (awslambdaric's bootstrap, from
/var/runtime's stand-in), as Lambda's runtime has loaded it before it loads the handler. Times the import of
the handler's module and the first invocation (secret read, OAuth token, guest token, verification), then
writes them with the peak resident memory to RESULT_JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import secrets
import sys
import time
import uuid
from typing import Any

import awslambdaric.bootstrap  # noqa: F401  (loaded by Lambda's runtime before the handler)


class Context:
    """The parts of Lambda's context the handler reads."""

    function_name = "GuestTokenFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:GuestTokenFunction"
    log_group_name = "/aws/lambda/GuestTokenFunction"
    log_stream_name = "bench"

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._ends = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def new_invocation(*, sampled: bool = True, timeout_seconds: float = 10.0) -> Context:
    """What the runtime does before each invocation: a new trace header, as API Gateway passes it."""
    trace_id = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    os.environ["_X_AMZN_TRACE_ID"] = f"Root={trace_id};Parent={secrets.token_hex(8)};Sampled={int(sampled)}"
    return Context(timeout_seconds)


def genesys_attempts(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """(call, latencyMs) of each Genesys attempt one log line records: a genesys_call line's own (a retry or a
    failure), or the first attempts that succeeded, folded into a token outcome line's ``calls``."""
    if entry.get("event") == "genesys_call":
        return [(entry["call"], entry["latencyMs"])]
    return [(call["call"], call["latencyMs"]) for call in entry.get("calls", ())]


def main() -> int:
    result_path, event_path, handler = sys.argv[1:4]
    with open(event_path) as file:
        event = json.load(file)
    module_name, _, attribute = handler.rpartition(".")

    started = time.perf_counter()
    module = importlib.import_module(module_name)
    imported = time.perf_counter()
    answer = getattr(module, attribute)(event, new_invocation())
    answered = time.perf_counter()

    with open(result_path, "w") as file:
        json.dump(
            {
                "importMs": (imported - started) * 1000,
                "firstRequestMs": (answered - imported) * 1000,
                "status": answer["statusCode"],
                # Linux reports kilobytes.
                "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
