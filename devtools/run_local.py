"""`make run`: the real handler behind http://127.0.0.1:3000, with a local Genesys and Secrets Manager.

Starts the Genesys emulator, moto's server as Secrets Manager holding a demo secret, the local API Gateway
stand-in, and the widget's demo page on two more origins (http://127.0.0.1:3080/demo/, which
ALLOWED_ORIGINS allows, and http://127.0.0.1:3081/demo/, which it does not), all on loopback, then serves
until Ctrl-C. No AWS account, no Docker. Port 0 picks a free port; the URLs printed say which.

SITE_DIR (or --site) names a folder of your own pages, served first at http://localhost:3080/ (the widget's
modules beside them). ALLOWED_ORIGINS, when set, replaces the origins the local service allows.

Signed-in customers are on (with the webmessaging source): a cookie-keys secret in the local Secrets Manager, and
the demo and the API both on the host name ``localhost`` (two ports, one site), as a company's site and its API
on its own domain are: browsers send the SameSite=Strict refresh cookie only to the same site.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import boto3
from cryptography.fernet import Fernet
from moto.server import ThreadedMotoServer

from devtools.demo_site import DemoSite
from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID, GenesysEmulator
from devtools.local_api import LocalApi

REPO = Path(__file__).resolve().parent.parent
SECRET_ID = "genesys-guest-token/local"
COOKIE_KEYS_SECRET_ID = "genesys-guest-token/local-cookie-keys"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Port:
    option: str
    variable: str  # what `make run` reads it from
    default: str
    what: str


PORTS = (
    Port("--port", "PORT", "3000", "the guest-token API"),
    Port("--genesys-port", "GENESYS_EMULATOR_PORT", "8100", "the Genesys emulator"),
    Port("--webmessaging-port", "GENESYS_WEBMESSAGING_PORT", "8180", "the Genesys Web Messaging Guest API emulator"),
    Port("--secrets-port", "SECRETS_MANAGER_PORT", "5100", "the local Secrets Manager"),
    Port("--demo-port", "DEMO_PORT", "3080", "the demo page"),
    Port(
        "--blocked-demo-port",
        "BLOCKED_DEMO_PORT",
        "3081",
        "the demo page again, from an origin ALLOWED_ORIGINS leaves out",
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    for port in PORTS:
        parser.add_argument(port.option, default=os.environ.get(port.variable, port.default), help=port.what)
    parser.add_argument(
        "--throttle",
        type=float,
        nargs=2,
        metavar=("RATE", "BURST"),
        help="throttle like the API stage (requests per second, burst), with API Gateway's own 429",
    )
    parser.add_argument(
        "--site",
        type=Path,
        metavar="DIR",
        default=os.environ.get("SITE_DIR") or None,
        help="serve this folder of your own pages at the demo's origin, before widget/ (default: SITE_DIR)",
    )
    parser.add_argument(
        "--genesys-transcript",
        type=Path,
        metavar="FILE",
        help="the Genesys emulator answers the Guest API as this transcript recorded (devtools.check_genesys "
        "--session; tests/fixtures/genesys/ holds some)",
    )
    args = parser.parse_args(argv)
    chosen, problems = _chosen_ports(args)
    site = args.site.resolve() if args.site else None
    if site is not None and not site.is_dir():
        problems.append(f"SITE_DIR (or --site) must be a folder of your pages: {str(args.site)!r} is not one")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    for port, number in chosen.items():
        setattr(args, _dest(port), number)
    busy = {port: number for port, number in chosen.items() if not _can_bind(number)}
    for port, number in busy.items():
        print(
            f"Port {number} ({port.what}) is in use. Stop what listens there, or pick another port: "
            f"{port.variable}={number + 1} make run ({port.variable}=0 picks a free one).",
            file=sys.stderr,
        )
    if busy:
        return 1

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    try:
        emulator = GenesysEmulator(
            HOST, args.genesys_port, webmessaging_port=args.webmessaging_port, transcript=args.genesys_transcript
        ).start()
    except ValueError as error:  # the transcript: unreadable, not JSON, not a transcript
        print(f"--genesys-transcript {error}", file=sys.stderr)
        return 2
    secrets_manager = ThreadedMotoServer(ip_address=HOST, port=args.secrets_port, verbose=False)
    secrets_manager.start()
    secrets_url = "http://{}:{}".format(*secrets_manager.get_host_and_port())

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
            "GENESYS_WEBMESSAGING_BASE_URL": emulator.webmessaging_url,
        }
    )
    # The Web Messaging Guest API by default, as in AWS; GUEST_TOKEN_SOURCE=rest for the tutorial's contract.
    os.environ.setdefault("GUEST_TOKEN_SOURCE", "webmessaging")
    os.environ.setdefault("GENESYS_DEPLOYMENT_ID", DEMO_DEPLOYMENT_ID)
    secrets_client = boto3.client("secretsmanager", endpoint_url=secrets_url)
    secrets_client.create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
    )
    # Signed-in customers (webmessaging only): a fresh key each run, so a cookie never outlives the stack.
    if os.environ["GUEST_TOKEN_SOURCE"] == "webmessaging":
        os.environ.setdefault("AUTH_COOKIE_KEYS_SECRET_ID", COOKIE_KEYS_SECRET_ID)
    if os.environ.get("AUTH_COOKIE_KEYS_SECRET_ID") == COOKIE_KEYS_SECRET_ID:
        secrets_client.create_secret(
            Name=COOKIE_KEYS_SECRET_ID, SecretString=json.dumps({"keys": [Fernet.generate_key().decode()]})
        )

    # Imported only now: Powertools reads its environment variables at import time.
    sys.path.insert(0, str(REPO / "functions" / "guest_token"))
    from guest_token.app import lambda_handler  # noqa: PLC0415

    throttle = (args.throttle[0], int(args.throttle[1])) if args.throttle else None
    api = LocalApi(lambda_handler, HOST, args.port, throttle=throttle)
    # The page and the API on one host name, localhost: the same site, as the refresh cookie needs.
    api_url = _as_localhost(api.url)
    sign_in = bool(os.environ.get("AUTH_COOKIE_KEYS_SECRET_ID"))
    demo = DemoSite(f"{api_url}/guest-tokens", HOST, args.demo_port, emulator.base_url, site, sign_in=sign_in)
    blocked_demo = DemoSite(
        f"{api_url}/guest-tokens", HOST, args.blocked_demo_port, emulator.base_url, site, sign_in=sign_in
    )
    # Known only once the ports are bound; the handler reads its settings at the first request. The API's
    # own origin (the README's curl) and the demo's, each also as localhost; never the blocked demo's.
    # ALLOWED_ORIGINS from the environment replaces them, as it does in AWS.
    os.environ.setdefault(
        "ALLOWED_ORIGINS", ",".join(origin for url in (api.url, demo.origin) for origin in (url, _as_localhost(url)))
    )
    allowed = [origin.strip() for origin in os.environ["ALLOWED_ORIGINS"].split(",") if origin.strip()]
    api_port = urlsplit(api.url).port
    # The curl's Origin: one the service allows.
    curl_origin = f"http://localhost:{api_port}"
    if curl_origin not in allowed and allowed and allowed[0] != "*":
        curl_origin = allowed[0]

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    demo.start()
    blocked_demo.start()

    def say(label: str, value: str) -> None:
        print(f"{label + ':':<23} {value}", flush=True)

    say("Genesys emulator", emulator.base_url)
    say("Genesys Web Messaging", f"{emulator.webmessaging_url}  deployment {os.environ['GENESYS_DEPLOYMENT_ID']}")
    say("Sign-in (OpenID)", f"{emulator.oidc_url}  (the emulator's identity provider for signed-in customers)")
    say("Guest-token source", os.environ["GUEST_TOKEN_SOURCE"])
    say("Secrets Manager (moto)", f"{secrets_url}  secret {SECRET_ID}")
    say("Guest-token API", f"{api_url}/guest-tokens")
    if os.environ.get("AUTH_COOKIE_KEYS_SECRET_ID"):
        keys_secret = os.environ["AUTH_COOKIE_KEYS_SECRET_ID"]
        say("Signed-in API", f"{api_url}/authenticated-sessions  (refresh cookie keys: secret {keys_secret})")
    else:
        say("Signed-in API", "off (needs GUEST_TOKEN_SOURCE webmessaging and AUTH_COOKIE_KEYS_SECRET_ID)")
    say("Demo page", _as_localhost(demo.demo_url))
    say("Demo, origin not allowed", _as_localhost(blocked_demo.demo_url))
    if site is not None:
        say("Your pages (SITE_DIR)", f"{_as_localhost(demo.site_url)}  from {site}")
    else:
        say("Your pages", f"none (SITE_DIR=path/to/folder make run serves one at {_as_localhost(demo.site_url)})")
    say("History relay", f"{_as_localhost(demo.history_relay)}  (the chat's apiBaseUrl with make run)")
    say("Allowed origins", f"{', '.join(allowed) or 'none'}  (ALLOWED_ORIGINS=... make run replaces them)")
    print(
        f"Try: curl -s -X POST {api.url}/guest-tokens -H 'Origin: {curl_origin}' "
        "-H 'Content-Type: application/json' -d '{}'",
        flush=True,
    )
    print("Ctrl-C stops it all.", flush=True)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        demo.stop()
        blocked_demo.stop()
        secrets_manager.stop()
        emulator.stop()
    return 0


def _dest(port: Port) -> str:
    return port.option.removeprefix("--").replace("-", "_")


def _chosen_ports(args: argparse.Namespace) -> tuple[dict[Port, int], list[str]]:
    """The port numbers, checked before anything starts: a bad value or one number given to two servers would
    otherwise end in a traceback or, when moto's thread loses the race, a hang without a word."""
    chosen: dict[Port, int] = {}
    problems = []
    for port in PORTS:
        value = str(getattr(args, _dest(port))).strip()
        number = int(value) if value.isdigit() else -1
        if 0 <= number <= 65535:
            chosen[port] = number
        else:
            problems.append(
                f"{port.variable} (or {port.option}) must be a port number from 0 to 65535 (0 picks a free one), "
                f"not {value!r}"
            )
    owners: dict[int, Port] = {}
    for port, number in chosen.items():
        if number and number in owners:
            first = owners[number]
            problems.append(
                f"{first.variable} and {port.variable} are both {number}: {first.what} and {port.what} need ports "
                f"of their own (0 picks a free one)"
            )
        owners.setdefault(number, port)
    return chosen, problems


def _can_bind(port: int) -> bool:
    """Checked before anything starts: moto's server binds in a thread of its own, where a busy port would
    leave `make run` hanging without a word. The servers set SO_REUSEADDR, so the probe does too."""
    if port == 0:
        return True
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _as_localhost(url: str) -> str:
    return url.replace(f"//{HOST}:", "//localhost:", 1)


if __name__ == "__main__":
    sys.exit(main())
