"""`make run`: the real handler behind http://127.0.0.1:3000, with a local Genesys and Secrets Manager.

Starts the Genesys emulator, moto's server as Secrets Manager holding a demo secret, and the local API
Gateway stand-in, all on loopback, then serves until Ctrl-C. No AWS account, no Docker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import boto3
from moto.server import ThreadedMotoServer

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator
from devtools.local_api import LocalApi

REPO = Path(__file__).resolve().parent.parent
SECRET_ID = "genesys-guest-token/local"
HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--genesys-port", type=int, default=int(os.environ.get("GENESYS_EMULATOR_PORT", "8100")))
    parser.add_argument("--secrets-port", type=int, default=int(os.environ.get("SECRETS_MANAGER_PORT", "5100")))
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    emulator = GenesysEmulator(HOST, args.genesys_port).start()
    secrets_manager = ThreadedMotoServer(ip_address=HOST, port=args.secrets_port, verbose=False)
    secrets_manager.start()
    secrets_url = f"http://{HOST}:{args.secrets_port}"

    # Everything the template sets in AWS, pointed at the local stand-ins. Dummy AWS credentials: moto
    # accepts any, and nothing here may reach a real account.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SECRETS_MANAGER_ENDPOINT_URL": secrets_url,
            "POWERTOOLS_SERVICE_NAME": "genesys-guest-token",
            "POWERTOOLS_METRICS_NAMESPACE": "GenesysGuestTokens",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            "GENESYS_CREDENTIALS_SECRET_ID": SECRET_ID,
            "GENESYS_OAUTH_BASE_URL": emulator.base_url,
            "GENESYS_API_BASE_URL": emulator.base_url,
            "GENESYS_JWKS_URL": emulator.jwks_url,
            "ALLOWED_ORIGINS": os.environ.get(
                "ALLOWED_ORIGINS", f"http://{HOST}:{args.port},http://localhost:{args.port}"
            ),
        }
    )
    boto3.client("secretsmanager", endpoint_url=secrets_url).create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
    )

    # Imported only now: Powertools reads its environment variables at import time.
    sys.path.insert(0, str(REPO / "functions" / "guest_token"))
    from guest_token.app import lambda_handler  # noqa: PLC0415

    api = LocalApi(lambda_handler, HOST, args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Genesys emulator:       {emulator.base_url}", flush=True)
    print(f"Secrets Manager (moto): {secrets_url}  secret {SECRET_ID}", flush=True)
    print(f"Guest-token API:        http://{HOST}:{args.port}/guest-tokens", flush=True)
    print(
        f"Try: curl -s -X POST http://{HOST}:{args.port}/guest-tokens -H 'Origin: http://localhost:{args.port}' "
        "-H 'Content-Type: application/json' -d '{\"duration\": \"short\"}'",
        flush=True,
    )
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        secrets_manager.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
