"""One warm container of a fleet, run by bench/__main__.py as one of several processes at once.

Usage: python -S bench/fleet.py RESULT_JSON EVENT_JSON START_EPOCH SECONDS TIMEOUT_SECONDS

Starts cold (its first invocation, before the clock: secret, OAuth token), then from START_EPOCH invokes the
handler back to back for SECONDS, each invocation with TIMEOUT_SECONDS to live (the function's timeout), as a
container kept busy by API Gateway would. Counts the answers by status, the Retry-After of each 429, whether a
429 was followed by a token again (the container recovered), and the OAuth attempts its logs record.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections import Counter

from cold_start import genesys_attempts, new_invocation


def main() -> int:
    result_path, event_path = sys.argv[1:3]
    start, seconds, timeout = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    with open(event_path) as file:
        event = json.load(file)

    from guest_token import observability  # noqa: PLC0415
    from guest_token.app import lambda_handler  # noqa: PLC0415

    logs = io.StringIO()
    observability.logger.registered_handler.setStream(logs)  # type: ignore[attr-defined]
    emf = io.StringIO()
    statuses: Counter[int] = Counter()
    retry_after: list[int] = []
    oauth_attempts = 0
    limited = recovered = False

    def invoke() -> dict[str, object]:
        nonlocal oauth_attempts
        with contextlib.redirect_stdout(emf):
            answer: dict[str, object] = lambda_handler(event, new_invocation(sampled=False, timeout_seconds=timeout))
        for line in logs.getvalue().splitlines():
            oauth_attempts += sum(1 for call, _ in genesys_attempts(json.loads(line)) if call == "oauth")
        for buffer in (logs, emf):
            buffer.seek(0)
            buffer.truncate()
        return answer

    first = invoke()["statusCode"]
    time.sleep(max(0.0, start - time.time()))
    ends = start + seconds
    while time.time() < ends:
        answer = invoke()
        status = int(answer["statusCode"])  # type: ignore[call-overload]
        statuses[status] += 1
        if status == 429:
            limited = True
            # Powertools' REST resolver answers with multiValueHeaders.
            headers = answer.get("headers") or {}
            multi = answer.get("multiValueHeaders") or {}
            wait = headers.get("Retry-After") or multi["Retry-After"][0]  # type: ignore[attr-defined,index]
            retry_after.append(int(wait))
        elif status == 200 and limited:
            recovered = True

    with open(result_path, "w") as file:
        json.dump(
            {
                "first": first,
                "statuses": {str(status): count for status, count in statuses.items()},
                "retryAfter": retry_after,
                "limited": limited,
                "recovered": recovered,
                "oauthAttempts": oauth_attempts,
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
