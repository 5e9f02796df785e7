"""The package `sam build` produces, run the way Lambda runs it, answers every events/ file as docs/api.md says.

No Docker: AWS's runtime interface emulator (the `aws-lambda-rie` binary inside aws-sam-cli) runs
`python -m awslambdaric` with the built function as the task root and the built layer's `python/` where Lambda
puts /opt/python, on 127.0.0.1 only. `.venv/lambda-runtime` (awslambdaric and boto3, installed by
`make test`) plays /var/runtime, and ``python -S`` keeps the development venv out of sight. The function's
environment is what `sam local invoke --env-vars events/env.json` would give it, with host.docker.internal
replaced by the loopback ports of the Genesys emulator and a moto server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
import samcli
import urllib3
from moto.server import ThreadedMotoServer
from samtranslator.yaml_helper import yaml_parse

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID, GenesysEmulator
from devtools.net import free_port, listening
from tests.documented_events import EVENTS, REPO, documented_answers, event_files
from tests.template.cloudformation import evaluate
from tests.template.test_template import make_build

pytestmark = pytest.mark.slow

RIE = (
    Path(samcli.__file__).parent
    / "local"
    / "rapid"
    / f"aws-lambda-rie-{platform.machine().replace('aarch64', 'arm64')}"
)
LAMBDA_RUNTIME = REPO / ".venv" / "lambda-runtime"
# Lambda extracts every layer into /opt, in the function's order; SignatureLayer comes with GenesysJwksUrl.
LAYERS = ("DependenciesLayer", "TracingLayer")
SIGNATURE_LAYER = "SignatureLayer"
ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
# What Lambda's bootstrap does: start the runtime interface client with the handler's name.
BOOTSTRAP = '#!/bin/sh\nexec "$RUNTIME_PYTHON" -S -m awslambdaric "$_HANDLER"\n'


@dataclass(frozen=True)
class Runtime:
    url: str
    log: Path

    def function_log(self) -> str:
        """What the function printed lately (its JSON log lines), without the emulator's own lines."""
        lines = [line for line in self.log.read_text().splitlines() if "(rapid)" not in line]
        return "\n".join(lines[-20:])


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make build ARCH=` this machine's architecture, as a deployment builds (and pins) it."""
    home = tmp_path_factory.mktemp("home")
    build = tmp_path_factory.mktemp("sam") / "build"
    make_build(build, home, ARCHITECTURE)
    return build


def function_environment(build_dir: Path) -> dict[str, str]:
    """The function's variables as `sam local invoke --env-vars events/env.json` resolves them."""
    template = yaml_parse((build_dir / "template.yaml").read_text())
    function = template["Resources"]["GuestTokenFunction"]["Properties"]
    # Every parameter at its default, as `sam local invoke` without --parameter-overrides.
    variables = {
        name: str(evaluate(value, template, {})) for name, value in function["Environment"]["Variables"].items()
    }
    variables.update(json.loads((EVENTS / "env.json").read_text())["GuestTokenFunction"])
    return variables


@pytest.fixture(scope="module")
def local_secrets_manager() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def function_variables(build_dir: Path, emulator: GenesysEmulator, local_secrets_manager: str) -> dict[str, str]:
    """The function's variables pointed at the loopback stand-ins, and the demo secret created."""
    variables = function_environment(build_dir)
    # A container reaches the emulators as host.docker.internal:8100, :8180 and :5100; here they are on loopback.
    for container_url, loopback_url in (
        ("http://host.docker.internal:8100", emulator.base_url),
        ("ws://host.docker.internal:8180", emulator.webmessaging_url),
        ("http://host.docker.internal:5100", local_secrets_manager),
    ):
        names = [name for name, value in variables.items() if value.startswith(container_url)]
        assert names, f"events/env.json points nothing at {container_url}"
        variables.update({name: variables[name].replace(container_url, loopback_url) for name in names})
    boto3.client(
        "secretsmanager",
        endpoint_url=local_secrets_manager,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_secret(
        Name=variables["GENESYS_CREDENTIALS_SECRET_ID"],
        SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET}),
    )
    return variables


@contextlib.contextmanager
def running(build_dir: Path, workdir: Path, variables: dict[str, str], layers: tuple[str, ...]) -> Iterator[Runtime]:
    """The built function with these layers under aws-lambda-rie."""
    if not (LAMBDA_RUNTIME / "awslambdaric").is_dir():
        pytest.fail(f"{LAMBDA_RUNTIME} is missing: run `make test`, which installs it")
    function = yaml_parse((build_dir / "template.yaml").read_text())["Resources"]["GuestTokenFunction"]["Properties"]
    task_root = build_dir / "GuestTokenFunction"
    bootstrap = workdir / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)
    api_port, runtime_api_port = free_port(), free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "LAMBDA_TASK_ROOT": str(task_root),
        # Lambda's /var/task, /opt/python and /var/runtime, in Lambda's order.
        "PYTHONPATH": os.pathsep.join(
            map(str, [task_root, *(build_dir / layer / "python" for layer in layers), LAMBDA_RUNTIME])
        ),
        "RUNTIME_PYTHON": sys.executable,
        "_HANDLER": function["Handler"],
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function["Timeout"]),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function["MemorySize"]),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **variables,
    }
    log_path = workdir / "runtime.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *(str(RIE), "--runtime-interface-emulator-address", f"127.0.0.1:{api_port}"),
                *("--runtime-api-address", f"127.0.0.1:{runtime_api_port}", str(bootstrap)),
            ],
            cwd=task_root,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not listening(api_port):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "aws-lambda-rie did not listen"
                time.sleep(0.05)
            yield Runtime(f"http://127.0.0.1:{api_port}/2015-03-31/functions/function/invocations", log_path)
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def lambda_runtime(
    build_dir: Path, tmp_path_factory: pytest.TempPathFactory, function_variables: dict[str, str]
) -> Iterator[Runtime]:
    """The built function as the template deploys it by default (no GenesysJwksUrl: no signature layer)."""
    with running(build_dir, tmp_path_factory.mktemp("runtime"), function_variables, LAYERS) as runtime:
        yield runtime


def invoke(runtime: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    response = urllib3.request("POST", runtime.url, body=json.dumps(event).encode(), timeout=30.0)
    assert response.status == 200, runtime.function_log()
    result: dict[str, Any] = json.loads(response.data)
    # A broken package shows here: {"errorType": "Runtime.ImportModuleError", "errorMessage": ...}
    assert "errorType" not in result, f"{result}\n{runtime.function_log()}"
    return result


@pytest.mark.parametrize("name", event_files())
def test_the_built_package_answers_each_event_as_documented(lambda_runtime, emulator, name):
    event = json.loads((EVENTS / name).read_text())
    status, code = documented_answers()[name]

    result = invoke(lambda_runtime, event)

    assert result["statusCode"] == status, f"{result}\n{lambda_runtime.function_log()}"
    if code is not None:
        assert json.loads(result["body"])["error"]["code"] == code
    if status == 200:
        body = json.loads(result["body"])
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        # The default source: a Web Messaging session of the configured deployment, for the guest asked for.
        assert claims["aud"] == body["deploymentId"] == DEMO_DEPLOYMENT_ID
        assert body["guestId"] == json.loads(event["body"]).get("guestId", body["guestId"])
        assert result["multiValueHeaders"]["Access-Control-Allow-Origin"] == [event["headers"]["Origin"]]


def test_warm_invocations_reuse_the_container_and_its_access_token(lambda_runtime, emulator):
    event = json.loads((EVENTS / "new-guest.json").read_text())
    oauth_calls = emulator.count("oauth")
    for _ in range(3):
        assert invoke(lambda_runtime, event)["statusCode"] == 200
    assert emulator.count("oauth") == oauth_calls, "a warm container fetched a new OAuth token"


def test_with_a_jwks_url_the_signature_layer_checks_signatures(build_dir, tmp_path, function_variables, emulator):
    variables = {**function_variables, "GENESYS_JWKS_URL": emulator.jwks_url}
    event = json.loads((EVENTS / "new-guest.json").read_text())
    with running(build_dir, tmp_path, variables, (*LAYERS, SIGNATURE_LAYER)) as runtime:
        assert invoke(runtime, event)["statusCode"] == 200, runtime.function_log()
        jwks_calls = emulator.count("jwks")
        assert jwks_calls >= 1, "the signature was not checked against the JWKS"

        emulator.add_fault("get-jwt", bad_signature=True)
        result = invoke(runtime, event)
        assert result["statusCode"] == 502, runtime.function_log()
        assert json.loads(result["body"])["error"]["code"] == "upstream_error"
        assert "InvalidSignatureError" in runtime.function_log()


def test_a_jwks_url_without_the_signature_layer_is_a_configuration_error(build_dir, tmp_path, function_variables):
    # GENESYS_JWKS_URL set by hand (not through the parameter): every token would fail to verify.
    variables = {**function_variables, "GENESYS_JWKS_URL": "https://login.mypurecloud.com/jwks"}
    event = json.loads((EVENTS / "new-guest.json").read_text())
    with running(build_dir, tmp_path, variables, LAYERS) as runtime:
        result = invoke(runtime, event)
        assert result["statusCode"] == 500, runtime.function_log()
        # Settings errors name the variable at fault in the log, never in the caller's answer.
        assert "GENESYS_JWKS_URL is set but cryptography is not installed" in runtime.function_log()
        assert "GENESYS_JWKS_URL" not in result["body"]


# ---- Lambda's own log controls at DEBUG ------------------------------------------------------------------------

# What Lambda sets when the function's LoggingConfig says LogFormat JSON and ApplicationLogLevel DEBUG (an
# operator's console switch): awslambdaric's bootstrap reads both, gives the root logger its JSON handler and sets
# the root logger's level (awslambdaric/bootstrap.py, _setup_logging).
LAMBDA_LOG_CONTROLS_AT_DEBUG = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
# A secret shorter than this could be told from a log line only by a guess; pieces this long are looked for.
SECRET_PIECE_CHARS = 12


def pieces(value: str) -> set[str]:
    """``value`` and every piece of it SECRET_PIECE_CHARS long: none may appear in a log."""
    return {value, *(value[start : start + SECRET_PIECE_CHARS] for start in range(len(value) - SECRET_PIECE_CHARS + 1))}


def assert_nothing_secret(printed: str, values: dict[str, str]) -> None:
    """None of ``values`` (secrets, by name), whole or in part, in ``printed``; names every one that is, with a
    line that shows it."""
    leaks = {}
    for what, value in values.items():
        assert len(value) >= SECRET_PIECE_CHARS, what
        found = [piece for piece in pieces(value) if piece in printed]
        if found:
            line = next(line for line in printed.splitlines() if found[0] in line)
            leaks[what] = f"{len(found)} pieces, e.g. in: {line[:200]}"
    assert not leaks, "\n".join(f"the {what} is in the log ({where})" for what, where in leaks.items())


@pytest.mark.parametrize(
    ("source", "layers", "extra"),
    [
        # Token events with the guest id (EventBridge through botocore) and the Tracer's X-Ray SDK loaded too.
        ("webmessaging", LAYERS, {"POWERTOOLS_TRACE_DISABLED": "false", "TOKEN_EVENTS_INCLUDE_GUEST_ID": "true"}),
        ("webmessaging", (*LAYERS, SIGNATURE_LAYER), {"GENESYS_JWKS_URL": None}),
        ("rest", LAYERS, {"TOKEN_EVENTS_INCLUDE_GUEST_ID": "true"}),
    ],
    ids=["webmessaging-traced-events", "webmessaging-jwks", "rest-events"],
)
def test_at_debug_under_lambdas_log_controls_no_secret_reaches_the_log(
    build_dir, tmp_path, function_variables, emulator, local_secrets_manager, source, layers, extra
):
    """Issue 22, item 3: with ApplicationLogLevel DEBUG, libraries (botocore, websockets, urllib3) log at DEBUG
    through the root logger Lambda configures; none may carry the client secret, an access token, a guest id
    (with webmessaging, the session token) or a JWT, whole or in part."""
    # A client of this test's own, so that every piece of its secret is random (the demo secret is a phrase).
    client_id, client_secret = f"debug-client-{uuid.uuid4()}", secrets.token_urlsafe(32)
    emulator.set_client(client_id, client_secret)
    secret_id = f"genesys-guest-token/debug-{uuid.uuid4()}"
    aws = {"endpoint_url": local_secrets_manager, "region_name": "us-east-1"}
    aws |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("secretsmanager", **aws).create_secret(
        Name=secret_id, SecretString=json.dumps({"clientId": client_id, "clientSecret": client_secret})
    )
    bus = f"debug-{uuid.uuid4().hex}"
    boto3.client("events", **aws).create_event_bus(Name=bus)
    variables = {
        **function_variables,
        **LAMBDA_LOG_CONTROLS_AT_DEBUG,
        "GUEST_TOKEN_SOURCE": source,
        "GENESYS_CREDENTIALS_SECRET_ID": secret_id,
        "TOKEN_EVENTS_BUS_NAME": bus,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": local_secrets_manager,
        **{name: emulator.jwks_url if value is None else value for name, value in extra.items()},
    }
    new_guest = json.loads((EVENTS / "new-guest.json").read_text())
    with running(build_dir, tmp_path, variables, layers) as runtime:
        first = json.loads(invoke(runtime, new_guest)["body"])
        assert "token" in first, f"{first}\n{runtime.function_log()}"
        returning = {**new_guest, "body": json.dumps({"guestId": first["guestId"]})}
        answers = [first, *(json.loads(invoke(runtime, returning)["body"]) for _ in range(2))]
        printed = runtime.log.read_text()

    assert all("token" in answer for answer in answers), answers
    # The function ran at DEBUG: Powertools reads AWS_LAMBDA_LOG_LEVEL as awslambdaric does, and the service's
    # DEBUG line is there. (Before the libraries' loggers were held at WARNING, the runtime's own JSON handler
    # printed botocore's and websockets' DEBUG lines here, the client secret and session tokens among them.)
    debug_lines = [line for line in printed.splitlines() if '"level":"DEBUG"' in line]
    assert any('"event":"token_request_received"' in line for line in debug_lines), printed[-2000:]
    authorizations = [
        value
        for request in emulator.requests
        for name, value in request.headers.items()
        if name.lower() == "authorization"
    ]
    access_tokens = {value.removeprefix("Bearer ") for value in authorizations if value.startswith("Bearer ")}
    assert access_tokens, "no access token was used: the check would pass vacuously"
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    assert_nothing_secret(
        printed,
        {
            "client secret": client_secret,
            "Basic credential": basic,
            **{f"access token {number}": token for number, token in enumerate(sorted(access_tokens))},
            **{f"guest id {number}": guest for number, guest in enumerate(sorted({a["guestId"] for a in answers}))},
            **{f"guest token {number}": token for number, token in enumerate(sorted({a["token"] for a in answers}))},
        },
    )
