"""Checks the Genesys side of a deployment before `sam deploy`, with the handler's own Genesys code: the OAuth
client's credentials are accepted, the Messenger web deployment exists in the region and is Active, and its
allowed domains admit each origin the widget will call from. No AWS account needed.

.venv/bin/python -m devtools.check_genesys --credentials "$client" --region mypurecloud.ie \
    --deployment-id 5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b --origin https://www.example.com,https://shop.example.com

The credentials file is the secret's JSON, {"clientId": "...", "clientSecret": "..."}: the same file (made with
mktemp, outside the repository) that step 3 of the deployment stores in Secrets Manager, so the secret never
reaches the command line. Nothing secret is printed. Each problem with the arguments or the file is one line,
and the exit status 2. GENESYS_OAUTH_BASE_URL and GENESYS_API_BASE_URL override the hosts, as for the function.

--session (issue 21), once those checks pass, opens one guest session as the function does
(wss://webmessaging.<region>/v1, GENESYS_WEBMESSAGING_BASE_URL overriding, with the first --origin as Origin):
configureSession with a new session token, getJwt, echo, a read of the guest's history with the JWT
(GET https://api.<region>/api/v2/webmessaging/messages), closeSession. It prints a transcript of what came back
as JSON (on stdout, or into --transcript PATH; the OK lines go to stderr): the frames' types, classes, codes,
field names and JSON types, whether the tracingId was echoed, the JWT's alg, typ and claim names. Never a
value, a token, a session id or a message text (devtools/genesys_transcript.py defines the format). Then one
line on stderr says what differs from what the service assumes; the status is 1 when a difference would make
the function fail. Opening a session sends no message (echo is Genesys' keep-alive, not a chat message), so
no conversation is started and nothing reaches an agent.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devtools import genesys_transcript as transcripts
from devtools.template import template

if TYPE_CHECKING:
    from collections.abc import Callable

    from guest_token.settings import Settings
    from websockets.sync.client import ClientConnection

REPO = Path(__file__).resolve().parents[1]
# Long enough for the three attempts a call may make; the function has less, but this runs once, by hand.
SECONDS = 25
# How long to wait for each Guest API answer, and for frames after closeSession's: a few seconds, by hand once.
ANSWER_SECONDS = 5.0
AFTER_CLOSE_SECONDS = 1.5
OPEN_SECONDS = 10.0
HISTORY_SECONDS = 10.0
# Frames kept per exchange: a socket pushing more is not answering, and the transcript stays readable.
MAX_FRAMES = 50
HISTORY_PATH = "/api/v2/webmessaging/messages?pageNumber=1&pageSize=25"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--credentials", type=Path, required=True, help="a JSON file: clientId and clientSecret")
    parser.add_argument("--region", required=True, help="the GenesysRegion parameter, e.g. mypurecloud.ie")
    parser.add_argument("--deployment-id", required=True, help="the GenesysDeploymentId parameter")
    parser.add_argument("--origin", action="append", default=[], help="page origins, as AllowedOrigins; repeatable")
    parser.add_argument(
        "--session",
        action="store_true",
        help="then open one guest session and print a transcript of its frames' shapes, never a value; it sends "
        "no message, so no conversation starts and nothing reaches an agent (needs --origin: the first is the "
        "socket's Origin)",
    )
    parser.add_argument("--transcript", type=Path, help="with --session: write the transcript here, not on stdout")
    arguments = parser.parse_args(argv)
    # With --session stdout carries the transcript alone, so that it can be redirected into a file.
    out = sys.stderr if arguments.session else sys.stdout

    # Quiet: the handler's audit lines (one per Genesys attempt) would bury the verdict. With --session whatever
    # the environment says: they carry Genesys' correlation ids, values a transcript's reader never sees.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    if arguments.session:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(REPO / "functions" / "guest_token"))
    from guest_token.budget import Deadline  # noqa: PLC0415 (the package is not on the default path)
    from guest_token.credentials import parse_credentials  # noqa: PLC0415
    from guest_token.errors import ConfigurationError, ServiceError  # noqa: PLC0415
    from guest_token.genesys import rest  # noqa: PLC0415
    from guest_token.settings import load_settings  # noqa: PLC0415
    from guest_token.sources import allows_origin  # noqa: PLC0415

    problems = [problem for value in arguments.origin if (problem := _origin_problem(value))]
    problems += _session_problems(arguments)
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
        print(f"OK   the OAuth client {credentials.client_id} is accepted by {settings.oauth_base_url}", file=out)
        deployment = rest.get_deployment(settings, access_token.value, arguments.deployment_id, deadline)
    except ServiceError as error:
        print(f"FAIL {error.log_detail or error.message} (see docs/operations.md, Troubleshooting)", file=sys.stderr)
        return 1
    if deployment.status != "Active":
        problems.append(f"web deployment {deployment.id} is {deployment.status}, not Active")
    else:
        print(f"OK   web deployment {deployment.id} is Active", file=out)
    origins = [origin.strip() for value in arguments.origin for origin in value.split(",")]
    for origin in origins:
        # Genesys checks the socket's Origin itself and does not publish its rule: our reading is a hint only.
        if allows_origin(deployment, origin):
            print(f"OK   its allowed domains appear to admit {origin}", file=out)
        else:
            print(
                f"WARN its allowed domains {list(deployment.allowed_domains)} appear to leave out {origin} by exact "
                "host or *. wildcard; Genesys decides on the guest's WebSocket (--session tries it)",
                file=sys.stderr,
            )
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems or not arguments.session:
        return 1 if problems else 0
    return _session(settings, origins[0], arguments.transcript)


def _session_problems(arguments: argparse.Namespace) -> list[str]:
    problems = []
    if arguments.session and not arguments.origin:
        problems.append("--session needs --origin: the first origin is the guest socket's Origin")
    if arguments.transcript is not None:
        if not arguments.session:
            problems.append("--transcript goes with --session")
        elif not arguments.transcript.parent.is_dir():
            problems.append(f"--transcript {arguments.transcript}: its directory does not exist")
    return problems


def _session(settings: Settings, origin: str, path: Path | None) -> int:
    """Record the transcript, write it, and say in one line what differs from what the service assumes."""
    from guest_token.verify import ALGORITHMS  # noqa: PLC0415 (the package is not on the default path)
    from websockets.exceptions import InvalidHandshake  # noqa: PLC0415

    try:
        transcript = record_session(settings, origin)
    except (OSError, InvalidHandshake) as error:  # TimeoutError is an OSError
        # The exception's class only: its text may quote the URL or what the peer sent.
        print(f"FAIL the guest session could not be opened ({type(error).__name__})", file=sys.stderr)
        return 1
    text = transcripts.dumps(transcript)
    if path is None:
        sys.stdout.write(text)
        where = "on stdout"
    else:
        try:
            path.write_text(text)
        except OSError as error:
            print(f"FAIL --transcript {path}: cannot write it ({error.strerror})", file=sys.stderr)
            return 2
        where = f"in {path}"
    found = transcripts.differences(transcript, ALGORITHMS)
    fatal = any(breaks for _, breaks in found)
    verdict = "notes: " if found else "as the service expects"
    print(
        f"{'FAIL' if fatal else 'OK  '} session transcript {where}; {verdict}{'; '.join(p for p, _ in found)}",
        file=sys.stderr,
    )
    return 1 if fatal else 0


def record_session(settings: Settings, origin: str) -> dict[str, Any]:
    """One guest session's transcript (devtools/genesys_transcript.py). The session token, tracing ids and JWT
    live in this function's variables only; what leaves it is shapes."""
    from guest_token.genesys import guest_api, rest  # noqa: PLC0415
    from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: PLC0415
    from websockets.sync.client import connect  # noqa: PLC0415
    from websockets.typing import Origin  # noqa: PLC0415

    assert settings.deployment_id is not None  # the checks above required one
    transcript: dict[str, Any] = {
        "format": transcripts.FORMAT,
        "recorded": transcripts.recorded_on(),
        "region": _region(settings),
        "handshake": None,
        "exchanges": [],
        "afterClose": [],
        "history": None,
        "closed": None,
    }
    url = guest_api.websocket_url(settings.webmessaging_base_url, settings.deployment_id)
    try:
        # As the function connects (guest_api._connect), so that what is recorded is what it would meet.
        socket = connect(
            url,
            origin=Origin(origin),
            open_timeout=OPEN_SECONDS,
            close_timeout=2.0,
            compression=None,
            ping_interval=None,
            proxy=None,
            max_size=guest_api.MAX_MESSAGE_BYTES,
            user_agent_header=rest.USER_AGENT,
        )
    except InvalidStatus as error:
        response = error.response
        transcript["handshake"] = {"status": response.status_code, "headers": _header_names(response.headers)}
        return transcript
    with socket:
        assert socket.response is not None and socket.request is not None  # set once the handshake succeeded
        headers = _header_names(socket.response.headers)
        transcript["handshake"] = {"status": socket.response.status_code, "headers": headers}
        # websockets follows redirects; the session token goes only to the host configured, as in the function.
        if socket.request.headers.get("Host") != urlsplit(url).netloc:
            transcript["handshake"]["redirected"] = True
            return transcript
        try:
            _converse(socket, settings, transcript)
        except ConnectionClosed as closed:
            transcript["closed"] = {"by": "genesys", "code": closed.rcvd.code if closed.rcvd else None}
        else:
            transcript["closed"] = {"by": "checker", "code": None}
    return transcript


def _converse(socket: ClientConnection, settings: Settings, transcript: dict[str, Any]) -> None:
    """The four actions, each with the frames up to its answer, the history read before closeSession, and the
    frames that follow closeSession's answer."""
    token = str(uuid.uuid4())
    steps: list[tuple[str, dict[str, Any]]] = [
        ("configureSession", {"deploymentId": settings.deployment_id, "token": token}),
        ("getJwt", {"token": token}),
        ("echo", {"token": token, "message": {"text": "ping", "type": "Text"}}),
        ("closeSession", {"token": token, "closeAllConnections": True}),
    ]
    guest_jwt: str | None = None
    tracing_id = ""
    for action, message in steps:
        if action == "closeSession" and guest_jwt is not None:
            # The history while the session is live, as the widget reads it with the JWT it was given.
            transcript["history"] = _history(settings, guest_jwt)
        tracing_id = str(uuid.uuid4())
        exchange, answer = _exchange(socket, {"action": action, **message, "tracingId": tracing_id})
        transcript["exchanges"].append(exchange)
        body = answer.get("body") if answer is not None else None
        if action == "getJwt" and isinstance(body, dict) and isinstance(body.get("jwt"), str):
            guest_jwt = body["jwt"]
            exchange["jwt"] = transcripts.jwt_shape(guest_jwt)
            exchange["lifetime"] = transcripts.lifetime_of(body.get("exp"))
    transcript["afterClose"] = _frames_until(socket, tracing_id, AFTER_CLOSE_SECONDS, lambda _: False)[0]


def _exchange(socket: ClientConnection, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Send one request; its exchange record and the answer frame (parsed: read here, never recorded)."""
    tracing_id, action = request["tracingId"], request["action"]
    socket.send(json.dumps(request))
    exchange: dict[str, Any] = {"sent": action, "received": [], "answer": None}

    def answers(frame: dict[str, Any]) -> bool:
        if frame.get("tracingId") not in (None, tracing_id):
            return False  # the answer to another request (a null one is recorded, as "other", and taken)
        if frame.get("class") in transcripts.ANSWER_CLASSES:
            return True
        if frame.get("class") != "StructuredMessage" or action != "echo":
            return False
        # An echo comes back as our own text; untagged, it is still recognised (and recorded as untagged).
        body = frame.get("body")
        return frame.get("tracingId") == tracing_id or (isinstance(body, dict) and body.get("text") == "ping")

    exchange["received"], answer = _frames_until(socket, tracing_id, ANSWER_SECONDS, answers)
    if answer is not None:
        exchange["answer"] = len(exchange["received"]) - 1
    return exchange, answer


def _frames_until(
    socket: ClientConnection, tracing_id: str, seconds: float, answers: Callable[[dict[str, Any]], bool]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The shapes of the frames received until one ``answers`` (returned parsed too), ``seconds`` pass, or
    MAX_FRAMES arrive."""
    shapes: list[dict[str, Any]] = []
    until = time.monotonic() + seconds
    while len(shapes) < MAX_FRAMES and (left := until - time.monotonic()) > 0:
        try:
            raw = socket.recv(timeout=left)
        except TimeoutError:
            break
        shapes.append(transcripts.frame_shape(raw, tracing_id))
        frame = _parsed(raw)
        if frame is not None and answers(frame):
            return shapes, frame
    return shapes, None


def _parsed(raw: str | bytes) -> dict[str, Any] | None:
    try:
        frame = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return None
    return frame if isinstance(frame, dict) else None


def _history(settings: Settings, guest_jwt: str) -> dict[str, Any]:
    """GET the guest's history with the JWT: its status and the shape of its body."""
    import urllib3  # noqa: PLC0415
    from guest_token.genesys import rest  # noqa: PLC0415

    try:
        response = urllib3.request(
            "GET",
            f"{settings.api_base_url}{HISTORY_PATH}",
            headers={"Authorization": f"Bearer {guest_jwt}", "User-Agent": rest.USER_AGENT},
            timeout=urllib3.Timeout(connect=5.0, read=HISTORY_SECONDS),
            retries=False,
            redirect=False,  # the JWT goes only to the host configured
            preload_content=False,
        )
    except urllib3.exceptions.HTTPError as error:
        return {"status": None, "error": type(error).__name__}
    try:
        data = response.read(rest.MAX_ANSWER_BYTES + 1)
    except urllib3.exceptions.HTTPError as error:
        return {"status": response.status, "error": type(error).__name__}
    finally:
        response.release_conn()
    body = "too-large" if len(data) > rest.MAX_ANSWER_BYTES else transcripts.body_shape(data)
    return {"status": response.status, "body": body}


def _header_names(headers: Any) -> list[str]:
    return transcripts.header_names(headers.keys())


def _region(settings: Settings) -> str:
    """The region, when the hosts are its own; "emulator" on this machine; "other" elsewhere."""
    region = settings.region
    if (settings.webmessaging_base_url, settings.api_base_url) == (
        f"wss://webmessaging.{region}",
        f"https://api.{region}",
    ):
        return region
    host = urlsplit(settings.webmessaging_base_url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return "emulator" if local else "other"


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
