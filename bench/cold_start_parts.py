"""Where one cold start goes, run by bench/__main__.py in the same Lambda-like interpreter as cold_start.py.

Usage: python -S bench/cold_start_parts.py RESULT_JSON EVENT_JSON HANDLER

Imports, in the order the handler's module and its first token request load them, the groups of modules
that make up a cold start, timing each, then the rest of the handler's module and the first invocation. A
group costs only what is not already loaded, so the parts add up to the whole. Run with tracing on and the
webmessaging source, the template's defaults, so the X-Ray SDK and the WebSocket client are parts.

Then a second invocation (the container is warm: clients, OAuth token and web deployment cached): the Genesys
calls each invocation logged (the ``latencyMs`` of each attempt) show what the first guest session costs beyond
a warm one, apart from importing the WebSocket library, which is a part of its own.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import time

from cold_start import genesys_attempts, new_invocation

# (part, modules): each part imports what earlier parts have not.
PARTS = (
    ("Powertools Logger and Metrics", ("aws_lambda_powertools",)),
    ("Powertools event handler (all resolvers)", ("aws_lambda_powertools.event_handler",)),
    ("pydantic and the request models", ("guest_token.models", "aws_lambda_powertools.event_handler.openapi.params")),
    ("urllib3", ("urllib3",)),
    ("X-Ray SDK", ("aws_xray_sdk.core",)),
    ("the rest of the handler's module", ("guest_token.app",)),
    (
        "boto3, botocore and Powertools parameters (first request)",
        ("boto3", "aws_lambda_powertools.utilities.parameters"),
    ),
    (
        "websockets sync client (first guest session; webmessaging source only)",
        ("websockets.sync.client", "websockets.exceptions", "websockets.typing"),
    ),
    ("pyjwt (first request; no cryptography without GenesysJwksUrl)", ("jwt",)),
)


def genesys_calls(logs: io.StringIO) -> dict[str, float]:
    """The latencyMs of each Genesys call logged since the last call, summed per call; then forgets them."""
    calls: dict[str, float] = {}
    for line in logs.getvalue().splitlines():
        for call, latency in genesys_attempts(json.loads(line)):
            calls[call] = calls.get(call, 0.0) + latency
    logs.seek(0)
    logs.truncate()
    return calls


def main() -> int:
    result_path, event_path, handler = sys.argv[1:4]
    with open(event_path) as file:
        event = json.load(file)
    module_name, _, attribute = handler.rpartition(".")

    parts: dict[str, float] = {}
    for part, modules in PARTS:
        started = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        parts[part] = (time.perf_counter() - started) * 1000
    observability = importlib.import_module("guest_token.observability")  # loaded by the parts above
    logs = io.StringIO()
    observability.logger.registered_handler.setStream(logs)
    function = getattr(importlib.import_module(module_name), attribute)
    started = time.perf_counter()
    answer = function(event, new_invocation())
    parts["first invocation: clients, secret, OAuth, deployment, guest session, checks"] = (
        time.perf_counter() - started
    ) * 1000
    first_calls = genesys_calls(logs)

    started = time.perf_counter()
    second = function(event, new_invocation())
    second_ms = (time.perf_counter() - started) * 1000
    second_calls = genesys_calls(logs)

    with open(result_path, "w") as file:
        json.dump(
            {
                "parts": parts,
                "status": answer["statusCode"],
                "secondStatus": second["statusCode"],
                "secondInvocationMs": second_ms,
                "firstCalls": first_calls,
                "secondCalls": second_calls,
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
