"""The same first request made with Genesys' official SDK, as a team would otherwise write it.

Usage: python -S bench/sdk_cold_start.py RESULT_JSON

Reads the secret with boto3 (the runtime's), logs in with PureCloudPlatformClientV2's client-credentials
helper and asks for a guest token through the SDK's ApiClient. Configuration comes from the same variables the
function reads. It does less than the function (no request model, JWT check, audit log or metrics).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid

import awslambdaric.bootstrap  # noqa: F401  (loaded by Lambda's runtime before the handler, as in cold_start.py)


def main() -> int:
    result_path = sys.argv[1]

    started = time.perf_counter()
    import boto3  # noqa: PLC0415
    import PureCloudPlatformClientV2  # noqa: PLC0415

    imported = time.perf_counter()
    secret = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT_URL"]).get_secret_value(
        SecretId=os.environ["GENESYS_CREDENTIALS_SECRET_ID"]
    )
    credentials = json.loads(secret["SecretString"])
    # The SDK derives the login host by replacing //api. with //login.; on loopback both are the emulator.
    PureCloudPlatformClientV2.configuration.host = os.environ["GENESYS_API_BASE_URL"]
    client = PureCloudPlatformClientV2.api_client.ApiClient().get_client_credentials_token(
        credentials["clientId"], credentials["clientSecret"]
    )
    answer = client.call_api(
        os.environ.get("GENESYS_GUEST_TOKEN_PATH", "/api/v2/webmessaging/guests/generate-token"),
        "POST",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body={
            "guestId": str(uuid.uuid4()),
            "expirationDurationSeconds": 7200,
            "scopes": ["webmessaging:guest:send", "webmessaging:guest:receive"],
        },
        response_type="object",
        auth_settings=["PureCloud OAuth"],
    )
    answered = time.perf_counter()

    token = answer[0]["token"] if isinstance(answer, tuple) else answer["token"]
    with open(result_path, "w") as file:
        json.dump(
            {
                "importMs": (imported - started) * 1000,
                "firstRequestMs": (answered - imported) * 1000,
                "status": 200 if isinstance(token, str) and token else 0,
                "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            file,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
