"""What loading the handler's module pulls in: the cold start pays for every module imported with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.documented_events import REPO

# Loaded on first use instead (credentials.py), or not used at all (models.py validates with pydantic).
# (Powertools itself imports botocore's small package module for its user agent; botocore.client is the cost.)
DEFERRED = (
    "boto3",
    "botocore.client",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.parser",
)


def test_importing_the_handler_leaves_boto3_and_unused_powertools_utilities_unloaded():
    probe = f"import sys, json, guest_token.app; print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO / "functions" / "guest_token"),
            "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
            "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
            # With tracing on, the X-Ray SDK patches botocore on purpose (devtools/tracer_cost.py measures it).
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
