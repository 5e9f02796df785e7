"""Where one cold start goes, run by bench/__main__.py in the same Lambda-like interpreter as cold_start.py.

Usage: python -S bench/cold_start_parts.py RESULT_JSON EVENT_JSON HANDLER

Imports, in the order the handler's module and its first token request load them, the groups of modules
that make up a cold start, timing each, then the rest of the handler's module and the first invocation. A
group costs only what is not already loaded, so the parts add up to the whole. Run with tracing on, the
template's default, so the X-Ray SDK is one of the parts.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

from cold_start import new_invocation

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
    ("pyjwt (first request; no cryptography without GenesysJwksUrl)", ("jwt",)),
)


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
    started = time.perf_counter()
    answer = getattr(importlib.import_module(module_name), attribute)(event, new_invocation())
    parts["first invocation: clients, secret, OAuth, guest token, checks"] = (time.perf_counter() - started) * 1000

    with open(result_path, "w") as file:
        json.dump({"parts": parts, "status": answer["statusCode"]}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
