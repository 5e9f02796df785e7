"""What loading the handler's module pulls in: the cold start pays for every module imported with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.documented_events import REPO

# Loaded on first use instead: boto3 and botocore's client by credentials.py (with the X-Ray patch of botocore
# when tracing is on), pyjwt and cryptography by verify.py; Powertools' parser is not used at all (models.py
# validates with pydantic). Powertools itself imports botocore's small package module for its user agent;
# botocore.client is the cost.
DEFERRED = (
    "boto3",
    "botocore.client",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.parser",
    "jwt",
    "cryptography",
    "websockets",  # the Guest API's client, by genesys/guest_api.py when the first session is opened
)


@pytest.mark.parametrize("tracing", [False, True], ids=["tracing-off", "tracing-on"])
def test_importing_the_handler_leaves_first_use_modules_unloaded(tmp_path, tracing):
    watched = (*DEFERRED, "aws_xray_sdk")
    probe = f"import sys, json, guest_token.app; print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO / "functions" / "guest_token"),
            "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
            "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
            "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
            # Powertools turns the Tracer off outside Lambda; these make the process look like Lambda.
            "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
            "LAMBDA_TASK_ROOT": str(tmp_path),
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The X-Ray SDK itself is loaded exactly when tracing is on; everything else waits for a token request.
    # The probe's environment has no settings: the handler's one configuration_invalid line comes first.
    *logged, printed = result.stdout.splitlines()
    assert [json.loads(line)["event"] for line in logged] == ["configuration_invalid"]
    assert json.loads(printed) == (["aws_xray_sdk"] if tracing else [])
