"""Checks the Genesys side of a deployment before `sam deploy`, with the handler's own Genesys code: the OAuth
client's credentials are accepted, the Messenger web deployment exists in the region and is Active, and its
allowed domains admit each origin the widget will call from. No AWS account needed.

.venv/bin/python -m devtools.check_genesys --credentials "$client" --region mypurecloud.ie \
    --deployment-id 5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b --origin https://www.example.com,https://shop.example.com

The credentials file is the secret's JSON, {"clientId": "...", "clientSecret": "..."}: the same file (made with
mktemp, outside the repository) that step 3 of the deployment stores in Secrets Manager, so the secret never
reaches the command line. Nothing secret is printed. Each problem with the arguments or the file is one line,
and the exit status 2. GENESYS_OAUTH_BASE_URL and GENESYS_API_BASE_URL override the hosts, as for the function.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from devtools.template import template

REPO = Path(__file__).resolve().parents[1]
# Long enough for the three attempts a call may make; the function has less, but this runs once, by hand.
SECONDS = 25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--credentials", type=Path, required=True, help="a JSON file: clientId and clientSecret")
    parser.add_argument("--region", required=True, help="the GenesysRegion parameter, e.g. mypurecloud.ie")
    parser.add_argument("--deployment-id", required=True, help="the GenesysDeploymentId parameter")
    parser.add_argument("--origin", action="append", default=[], help="page origins, as AllowedOrigins; repeatable")
    arguments = parser.parse_args(argv)

    # Quiet: the handler's audit lines (one per Genesys attempt) would bury the verdict.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO / "functions" / "guest_token"))
    from guest_token.budget import Deadline  # noqa: PLC0415 (the package is not on the default path)
    from guest_token.credentials import parse_credentials  # noqa: PLC0415
    from guest_token.errors import ConfigurationError, ServiceError  # noqa: PLC0415
    from guest_token.genesys import rest  # noqa: PLC0415
    from guest_token.settings import load_settings  # noqa: PLC0415
    from guest_token.sources import allows_origin  # noqa: PLC0415

    problems = [problem for value in arguments.origin if (problem := _origin_problem(value))]
    try:
        settings = load_settings(
            {
                **os.environ,
                "GENESYS_REGION": arguments.region,
                "GENESYS_DEPLOYMENT_ID": arguments.deployment_id,
                "GENESYS_CREDENTIALS_SECRET_ID": "not read: --credentials",
            }
        )
    except ConfigurationError as error:
        problems.append(str(error.log_detail))
    try:
        credentials = parse_credentials(_read_json(arguments.credentials), f"--credentials {arguments.credentials}")
    except ValueError as error:
        problems.append(str(error))
    except ConfigurationError as error:
        problems.append(str(error.log_detail))
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        return 2
    deadline = Deadline.after(SECONDS)
    try:
        access_token = rest.request_access_token(settings, credentials, deadline)
        print(f"OK   the OAuth client {credentials.client_id} is accepted by {settings.oauth_base_url}")
        deployment = rest.get_deployment(settings, access_token.value, arguments.deployment_id, deadline)
    except ServiceError as error:
        print(f"FAIL {error.log_detail or error.message} (see the README's Troubleshooting)", file=sys.stderr)
        return 1
    if deployment.status != "Active":
        problems.append(f"web deployment {deployment.id} is {deployment.status}, not Active")
    else:
        print(f"OK   web deployment {deployment.id} is Active")
    for origin in [origin.strip() for value in arguments.origin for origin in value.split(",")]:
        if allows_origin(deployment, origin):
            print(f"OK   its allowed domains admit {origin}")
        else:
            problems.append(f"its allowed domains {list(deployment.allowed_domains)} leave out {origin}")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


def _origin_problem(value: str) -> str | None:
    """Why the template would refuse ``value`` as AllowedOrigins, checked with the template's own pattern."""
    parameter = template()["Parameters"]["AllowedOrigins"]
    if re.fullmatch(parameter["AllowedPattern"], value):
        return None
    return f"--origin {value!r}: the template's AllowedOrigins {parameter['ConstraintDescription']}"


def _read_json(path: Path) -> Any:
    """The credentials file's JSON; the messages never quote its contents: they are the secret."""
    try:
        return json.loads(path.read_bytes())
    except OSError as error:
        raise ValueError(f"--credentials {path}: cannot read it ({error.strerror})") from None
    except ValueError as error:  # not JSON, or not UTF-8; the position only, never the text
        where = f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        raise ValueError(f"--credentials {path} is not JSON{where}") from None


if __name__ == "__main__":
    sys.exit(main())
