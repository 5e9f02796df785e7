"""What reaches the log besides the audit entries (issue 22, items 3 and 5): the libraries' own lines, whatever
level Lambda's log controls give the root logger, and the line of an error no handler expected."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from cryptography.fernet import Fernet
from guest_token import app as app_module
from guest_token import observability

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID
from devtools.oidc_emulator import pkce_challenge
from tests.conftest import ORIGIN, handler_process_env, run_python
from tests.integration.test_observability import COMMON_KEYS, documented_audit

# ---- the libraries' loggers ------------------------------------------------------------------------------------

# Token requests through every source in a fresh interpreter whose root logger is at DEBUG with a handler, as
# awslambdaric leaves it under LogFormat JSON and ApplicationLogLevel DEBUG; then every logger logging knows of,
# with its effective level. argv: the census file, then (source, JWKS URL or "") pairs.
REQUESTS_THROUGH_EVERY_SOURCE = """
import json, logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
from guest_token import app, credentials, oauth, observability, settings, sources, token_events, verify

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "GuestTokenFunction", 512, "census"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:GuestTokenFunction"
    def get_remaining_time_in_millis(self):
        return 10_000

def invoke(body, path="/guest-tokens", method="POST", cookie=None, status=200, full=False):
    headers = {"Origin": os.environ["ALLOWED_ORIGINS"], "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = "guest_refresh=" + cookie
    event = {"resource": path, "path": path, "httpMethod": method, "headers": headers,
             "multiValueHeaders": {name: [value] for name, value in headers.items()},
             "requestContext": {"requestId": "census", "stage": "v1", "path": "/v1" + path},
             "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}
    result = app.lambda_handler(event, Context())
    assert result["statusCode"] == status, result
    answer = json.loads(result["body"]) if result.get("body") else {}
    if not full:
        return answer
    multi = result.get("multiValueHeaders") or {}
    headers = {**(result.get("headers") or {}), **{name: values[-1] for name, values in multi.items()}}
    return answer, headers.get("Set-Cookie", "").partition(";")[0].partition("=")[2]

answers = []
pairs = sys.argv[2:]
for source, jwks_url in zip(pairs[::2], pairs[1::2]):
    for module in (settings, credentials, oauth, sources, verify, observability, token_events):
        module.reset()
    os.environ["GUEST_TOKEN_SOURCE"] = source
    os.environ["GENESYS_JWKS_URL"] = jwks_url
    first = invoke({})
    answers += [first, invoke({"guestId": first["guestId"]})]
# A signed-in customer (webmessaging with the cookie keys): sign-in, refresh through the cookie, sign-out.
signed_in = {}
if os.environ.get("SIGN_IN_BODY"):
    for module in (settings, credentials, oauth, sources, verify, observability, token_events):
        module.reset()
    os.environ.update(GUEST_TOKEN_SOURCE="webmessaging", GENESYS_JWKS_URL="",
                      AUTH_COOKIE_KEYS_SECRET_ID=os.environ["COOKIE_KEYS_SECRET"])
    body, cookie = invoke(json.loads(os.environ["SIGN_IN_BODY"]), "/authenticated-sessions", full=True)
    renewed, renewed_cookie = invoke({}, "/authenticated-sessions/refresh", cookie=cookie, full=True)
    invoke(None, "/authenticated-sessions", "DELETE", cookie=renewed_cookie, status=204)
    answers += [body, renewed]
    signed_in = {"cookies": [cookie, renewed_cookie]}
logging.getLogger("botocore.endpoint").warning("a library's warning still reaches the root's handler")
loggers = {name: logger for name, logger in logging.Logger.manager.loggerDict.items()
           if isinstance(logger, logging.Logger)}
census = {
    "root": logging.getLogger().level,
    "loggers": {name: [logger.getEffectiveLevel(), logger.propagate] for name, logger in loggers.items()},
    "answers": answers,
    "signedIn": signed_in,
}
with open(sys.argv[1], "w") as out:
    json.dump(census, out)
"""
SERVICE = "genesys-guest-token"
# Powertools' own loggers: its package logger does not propagate, and the service's follows POWERTOOLS_LOG_LEVEL.
OURS = ("aws_lambda_powertools", SERVICE)
SECRET_PIECE_CHARS = 12


def pieces(value: str) -> set[str]:
    return {value, *(value[start : start + SECRET_PIECE_CHARS] for start in range(len(value) - SECRET_PIECE_CHARS + 1))}


def leaked(printed: str, secrets_by_name: dict[str, str]) -> dict[str, list[str]]:
    """Each secret of which a piece SECRET_PIECE_CHARS long (or the whole) is in ``printed``, with those pieces."""
    found = {
        name: sorted(piece for piece in pieces(value) if piece in printed) for name, value in secrets_by_name.items()
    }
    return {name: hits for name, hits in found.items() if hits}


@pytest.fixture
def own_client(emulator: Any, secrets_manager_server: str) -> tuple[str, str, str]:
    """A Genesys client of the test's own, with a random secret (every piece of it is then telling), in a secret
    of moto's server: (secret id, client id, client secret)."""
    client_id, client_secret = f"logging-{uuid.uuid4()}", secrets.token_urlsafe(32)
    emulator.set_client(client_id, client_secret)
    secret_id = f"genesys-guest-token/logging-{uuid.uuid4()}"
    boto3.client("secretsmanager", endpoint_url=secrets_manager_server, region_name="us-east-1").create_secret(
        Name=secret_id, SecretString=json.dumps({"clientId": client_id, "clientSecret": client_secret})
    )
    return secret_id, client_id, client_secret


def test_at_debug_every_librarys_logger_stays_at_warning_and_logs_no_secret(
    tmp_path: Path, emulator: Any, secrets_manager_server: str, own_client: tuple[str, str, str]
) -> None:
    """Both sources, with and without a JWKS, token events carrying the guest id and tracing on: every logger
    but Powertools' and the service's is at WARNING or above, while the root logger stays at DEBUG and the
    libraries' warnings still propagate to it; and nothing printed holds a secret."""
    secret_id, client_id, client_secret = own_client
    # A signed-in customer too: the cookie's key, and the code, verifier and nonce the identity provider gave.
    cookie_key = Fernet.generate_key().decode()
    keys_secret = f"genesys-guest-token/logging-keys-{uuid.uuid4()}"
    boto3.client("secretsmanager", endpoint_url=secrets_manager_server, region_name="us-east-1").create_secret(
        Name=keys_secret, SecretString=json.dumps({"keys": [cookie_key]})
    )
    verifier, nonce, redirect_uri = secrets.token_urlsafe(48), secrets.token_urlsafe(16), f"{ORIGIN}/signed-in"
    code = emulator.authorize(redirect_uri, pkce_challenge(verifier), nonce)
    sign_in = {"code": code, "redirectUri": redirect_uri, "codeVerifier": verifier, "nonce": nonce}
    bus = f"logging-{uuid.uuid4().hex}"
    boto3.client("events", endpoint_url=secrets_manager_server, region_name="us-east-1").create_event_bus(Name=bus)
    env = {
        **handler_process_env(emulator, secrets_manager_server),
        "GENESYS_CREDENTIALS_SECRET_ID": secret_id,
        "ALLOWED_ORIGINS": ORIGIN,
        "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID,
        "GENESYS_WEBMESSAGING_BASE_URL": emulator.webmessaging_url,
        "TOKEN_EVENTS_BUS_NAME": bus,
        "TOKEN_EVENTS_INCLUDE_GUEST_ID": "true",
        "AWS_ENDPOINT_URL_EVENTBRIDGE": secrets_manager_server,
        # Lambda-like, so that Powertools' Tracer is on and loads the X-Ray SDK (its daemon: a port nobody reads).
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "_X_AMZN_TRACE_ID": "Root=1-6745c0de-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "SIGN_IN_BODY": json.dumps(sign_in),
        "COOKIE_KEYS_SECRET": keys_secret,
    }
    census_file = tmp_path / "census.json"
    sources = ["webmessaging", "", "webmessaging", emulator.jwks_url, "rest", "", "rest", emulator.jwks_url]
    process = run_python(REQUESTS_THROUGH_EVERY_SOURCE, [str(census_file), *sources], env, tmp_path)
    census = json.loads(census_file.read_text())
    printed = process.stdout + process.stderr

    assert census["root"] == logging.DEBUG, "the root logger is Lambda's: the function must not change its level"
    loggers = census["loggers"]
    libraries = {name for name in loggers if not name.startswith(OURS)}
    # The census saw the libraries that log secrets at DEBUG: it would pass vacuously otherwise.
    assert {"botocore.endpoint", "botocore.parsers", "websockets.client", "urllib3.connectionpool"} <= libraries
    loud = {name: level for name in libraries if (level := loggers[name][0]) < logging.WARNING}
    assert not loud, f"add these libraries to observability.LIBRARY_LOGGERS: {sorted(loud)}"
    assert all(loggers[name][1] for name in libraries), "a library's warnings and errors must still propagate"
    assert "WARNING botocore.endpoint a library's warning still reaches the root's handler" in printed
    assert loggers[SERVICE][0] == logging.INFO  # POWERTOOLS_LOG_LEVEL, from handler_process_env's environment

    answers = census["answers"]
    access_tokens = {
        value.removeprefix("Bearer ")
        for request in emulator.requests
        for name, value in request.headers.items()
        if name.lower() == "authorization" and value.startswith("Bearer ")
    }
    assert access_tokens
    cookies = census["signedIn"]["cookies"]
    secrets_by_name = {
        "client secret": client_secret,
        "Basic credential": base64.b64encode(f"{client_id}:{client_secret}".encode()).decode(),
        **{f"access token {index}": token for index, token in enumerate(sorted(access_tokens))},
        **{f"guest id {index}": guest for index, guest in enumerate(sorted({a["guestId"] for a in answers}))},
        **{f"guest token {index}": token for index, token in enumerate(sorted({a["token"] for a in answers}))},
        **{f"auth JWT {index}": a["authToken"] for index, a in enumerate(answers) if "authToken" in a},
        **{f"cookie {index}": cookie for index, cookie in enumerate(cookies)},
        "refresh token": json.loads(Fernet(cookie_key.encode()).decrypt(cookies[0].encode()))["r"],
        **{f"sign-in {name}": value for name, value in sign_in.items() if name != "redirectUri"},
    }
    assert sum(1 for a in answers if a.get("authenticated")) == 2
    assert not leaked(printed, secrets_by_name)


# ---- the unhandled-error line -----------------------------------------------------------------------------------

# Issue 22, item 5: an access token with CR/LF (OAuth now refuses one) made every later request of the container
# fail in http.client, whose ValueError quotes the Authorization header, token and all; the unhandled-error
# line logged that text, once per request. Genesys' answers can no longer get such a value into a header, so a
# route of the handler's own resolver makes the same call the same library refuses.
PROBE_PATH = "/unhandled-error-probe"
ACCESS_TOKEN = secrets.token_urlsafe(48)
INJECTED = f"Bearer {ACCESS_TOKEN}\r\nX-Injected: 1"


@pytest.fixture
def route_raising() -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Registers ``fail`` as POST PROBE_PATH on the handler's resolver, for this test only."""
    resolver = app_module.app
    saved = {name: list(getattr(resolver, name)) for name in ("_static_routes", "_dynamic_routes", "_route_keys")}

    def register(fail: Callable[[], Any]) -> None:
        resolver.post(PROBE_PATH)(fail)

    yield register
    for name, routes in saved.items():
        setattr(resolver, name, routes)


def send_with_injected_header(url: str) -> None:
    # What genesys/rest.py's send did with such a token: http.client refuses the header before connecting.
    urllib3.PoolManager(retries=False).request("GET", url, headers={"Authorization": INJECTED})


def unhandled_lines(answer: Any) -> list[dict[str, Any]]:
    lines = answer.events("unhandled_error")
    assert answer.status == 500 and answer.error_code == "internal_error", answer.body
    return lines


FRAME = re.compile(r"^(?P<file>/.+\.py):(?P<line>\d+):(?P<function>[\w<>]+)$")


def test_an_unhandled_error_logs_its_type_a_redacted_message_and_where_never_the_token(invoke, route_raising, emulator):
    route_raising(lambda: send_with_injected_header(f"{emulator.base_url}/api/v2/anything"))

    answers = [invoke({}, path=PROBE_PATH) for _ in range(3)]

    written = json.dumps([answer.logs for answer in answers])
    assert not leaked(written, {"access token": ACCESS_TOKEN}), "the token is in the log"
    assert "Traceback" not in written  # nor Powertools' rendering of the exception, which quotes its text
    for answer in answers:
        [line] = unhandled_lines(answer)  # one line per request, each without the token
        assert line["level"] == "ERROR" and line["message"] == "unhandled error"
        assert line["exception_name"] == "ValueError"
        assert line["exception"].startswith("Invalid header value b'[credentials]")
        assert len(line["exception"]) <= observability.MAX_LOGGED_CHARS
        frames = [FRAME.fullmatch(frame) for frame in line["stack_trace"]]
        assert all(frames), line["stack_trace"]
        where = [(Path(frame["file"]).name, frame["function"]) for frame in frames if frame]
        # Where it happened: this test's route down to the library line that refused the header.
        assert ("test_logging.py", "send_with_injected_header") in where
        assert ("client.py", "putheader") in where
        # The documented fields (docs/operations.md), and no more: Powertools' own rendering of an exception
        # (exc_info: the whole traceback as text, its stack_trace's "value") would carry the text as it is.
        levels, fields = documented_audit()["unhandled_error"]
        assert line["level"] in levels and set(line) - COMMON_KEYS == fields, line


def test_an_unhandled_errors_text_is_bounded_and_its_frames_too(invoke, route_raising):
    def recurse(depth: int) -> None:
        if depth:
            recurse(depth - 1)
        else:
            int("not a number, " * 100 + f"Basic {base64.b64encode(b'id:secret').decode()} {ACCESS_TOKEN}")

    route_raising(lambda: recurse(sys.getrecursionlimit() // 2))

    [line] = unhandled_lines(invoke({}, path=PROBE_PATH))

    assert line["exception_name"] == "ValueError"
    message = line["exception"]
    assert message.startswith("invalid literal for int() with base 10: 'not a number, not a number,")
    assert re.search(r"\.\.\.\(\d+ chars\)$", message), message  # cut, and marked as cut
    assert len(message) <= observability.MAX_LOGGED_CHARS + len("...(99999 chars)")
    frames = line["stack_trace"]
    assert len(frames) == observability.MAX_LOGGED_FRAMES + 1  # and the marker of the frames left out
    assert re.fullmatch(r"\.\.\.\(\d+ frames\)", frames[5]), frames
    assert frames[-1].endswith(":recurse")
    assert not leaked(json.dumps(line), {"access token": ACCESS_TOKEN})
