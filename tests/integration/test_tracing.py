"""X-Ray tracing, in fresh interpreters that look like Lambda to Powertools: with tracing off the X-Ray SDK is
never loaded; with it on, the request's trace reaches the X-Ray daemon (a UDP listener here) with the Genesys
and Secrets Manager calls and the outcome, and never a token or a secret."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.genesys_emulator import DEMO_CLIENT_SECRET
from tests.conftest import ORIGIN, handler_process_env, run_python

TRACE_ID = "1-6745c0de-0123456789abcdef01234567"
# One cold invocation, as Lambda would run it; the answer and the modules loaded go to the file in argv[2].
INVOKE = """
import json, sys
from devtools.local_api import LocalContext, build_event
from guest_token.app import lambda_handler
headers = {"Origin": sys.argv[1], "Content-Type": "application/json"}
event = build_event("POST", "/guest-tokens", headers=headers, body="{}")
result = lambda_handler(event, LocalContext())
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"aws_xray_sdk", "wrapt"})
with open(sys.argv[2], "w") as out:
    json.dump({"result": result, "loaded": loaded}, out)
"""


@pytest.fixture
def xray_daemon() -> Iterator[tuple[str, Any]]:
    """A UDP port like the X-Ray daemon's, and a function returning what the X-Ray SDK sent there (one
    datagram per entity) once the sender has exited."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)

    def received() -> list[bytes]:
        datagrams = []
        with contextlib.suppress(BlockingIOError):  # the kernel holds what was sent; stop when it is empty
            while True:
                datagrams.append(listener.recv(65535))
        return datagrams

    yield str(listener.getsockname()[1]), received
    listener.close()


def invoke_in_lambda_like_process(
    tmp_path: Path,
    emulator: Any,
    secrets_url: str,
    *,
    tracing: bool,
    daemon_port: str = "2000",
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {
        **handler_process_env(emulator, secrets_url),
        **(extra_env or {}),
        # Not POWERTOOLS_TRACER_CAPTURE_RESPONSE, which the template also sets: the code alone must keep the
        # token out of traces.
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        # What Lambda sets: Powertools enables its Tracer only inside Lambda.
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon_port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    out = tmp_path / "answer.json"
    process = run_python(INVOKE, [ORIGIN, str(out)], env, tmp_path)
    return {**json.loads(out.read_text()), "output": process.stdout + process.stderr}


def test_with_tracing_off_the_xray_sdk_is_never_loaded(tmp_path, emulator, secrets_manager_server, xray_daemon):
    port, received = xray_daemon
    answer = invoke_in_lambda_like_process(tmp_path, emulator, secrets_manager_server, tracing=False, daemon_port=port)
    assert answer["result"]["statusCode"] == 200
    assert answer["loaded"] == []
    assert received() == []


def entities(datagrams: list[bytes]) -> list[dict[str, Any]]:
    """Every segment document sent, nested subsegments included."""
    found = []

    def walk(entity: dict[str, Any]) -> None:
        found.append(entity)
        for child in entity.get("subsegments", []):
            walk(child)

    for datagram in datagrams:
        header, _, body = datagram.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        walk(json.loads(body))
    return found


def test_with_tracing_on_the_trace_has_the_calls_and_the_outcome_but_no_token(
    tmp_path, emulator, secrets_manager_server, xray_daemon
):
    port, received = xray_daemon
    answer = invoke_in_lambda_like_process(tmp_path, emulator, secrets_manager_server, tracing=True, daemon_port=port)
    datagrams = received()
    assert answer["result"]["statusCode"] == 200
    assert answer["loaded"] == ["aws_xray_sdk", "wrapt"]

    sent = b"".join(datagrams).decode()
    token = json.loads(answer["result"]["body"])["token"]
    for secret in (token, DEMO_CLIENT_SECRET, "Bearer ", "Basic "):
        assert secret not in sent
    traced = entities(datagrams)
    assert {entity["trace_id"] for entity in traced if "trace_id" in entity} == {TRACE_ID}

    [handler] = [entity for entity in traced if entity["name"] == "## lambda_handler"]
    assert handler["annotations"]["outcome"] == "issued"
    assert "metadata" not in handler or "lambda_handler response" not in json.dumps(handler["metadata"])
    # Each Genesys attempt and each AWS call is a subsegment of the handler's.
    genesys = {entity["name"]: entity for entity in traced if entity["name"].startswith("Genesys ")}
    assert set(genesys) == {"Genesys oauth", "Genesys guest-token"}
    attempt = genesys["Genesys guest-token"]["metadata"]["genesys-guest-token"]["attempt"]
    assert (attempt["attempt"], attempt["status"]) == (1, 200) and attempt["genesysCorrelationId"]
    assert any(entity.get("aws", {}).get("operation") == "GetSecretValue" for entity in traced)
    # The log lines name the trace, so an operator can go from an audit entry to its trace.
    assert f"1-{TRACE_ID.split('-', 1)[1]}" in answer["output"]


# Three invocations in one container, as X-Ray's sampling would decide them (argv[4]: the first, cold, one and the
# second not sampled, or undecided, and the third sampled).
INVOKE_THREE = """
import json, os, sys
from devtools.local_api import LocalContext, build_event
from guest_token.app import lambda_handler
headers = {"Origin": sys.argv[1], "Content-Type": "application/json"}
statuses = []
for root, sampled in zip(sys.argv[3].split(","), sys.argv[4].split(",")):
    os.environ["_X_AMZN_TRACE_ID"] = f"Root={root};Parent=53995c3f42cd8ad8;Sampled={sampled}"
    event = build_event("POST", "/guest-tokens", headers=headers, body="{}")
    statuses.append(lambda_handler(event, LocalContext())["statusCode"])
with open(sys.argv[2], "w") as out:
    json.dump(statuses, out)
"""


@pytest.mark.parametrize("decisions", ["0,0,1", "0,?,1"])
def test_an_unsampled_invocation_sends_nothing_and_the_next_sampled_one_is_traced_whole(
    tmp_path, emulator, secrets_manager_server, xray_daemon, decisions
):
    port, received = xray_daemon
    roots = [f"1-6745c0de-{index:024x}" for index in (1, 2, 3)]
    env = {
        **handler_process_env(emulator, secrets_manager_server),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "GuestTokenFunction",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    out = tmp_path / "statuses.json"
    process = run_python(INVOKE_THREE, [ORIGIN, str(out), ",".join(roots), decisions], env, tmp_path)
    # An undecided trace (Sampled=?) records nothing: the X-Ray SDK would drop it, complaining on stderr.
    assert "No subsegment to end" not in process.stdout + process.stderr
    assert json.loads(out.read_text()) == [200, 200, 200]

    traced = entities(received())
    assert {entity["trace_id"] for entity in traced if "trace_id" in entity} == {roots[2]}
    [handler] = [entity for entity in traced if entity["name"] == "## lambda_handler"]
    # Powertools' cold start annotation belongs to the container's first invocation, even unsampled.
    assert handler["annotations"]["ColdStart"] is False
    assert handler["annotations"]["outcome"] == "issued"
    assert {entity["name"] for entity in traced if entity["name"].startswith("Genesys ")} == {"Genesys guest-token"}


# An event as a test or an operator might send it by hand: no requestContext, from an origin not allowed.
INVOKE_BARE = """
import json, sys
from devtools.local_api import LocalContext, build_event
from guest_token.app import lambda_handler
headers = {"Origin": "https://elsewhere.example", "Content-Type": "application/json"}
event = build_event("POST", "/guest-tokens", headers=headers, body=json.dumps({"guestId": sys.argv[2]}))
del event["requestContext"]
with open(sys.argv[1], "w") as out:
    json.dump(lambda_handler(event, LocalContext()), out)
"""


def test_an_event_without_request_context_gets_its_answer_and_the_event_is_never_logged(
    tmp_path, emulator, secrets_manager_server
):
    env = {**handler_process_env(emulator, secrets_manager_server), "POWERTOOLS_LOGGER_LOG_EVENT": "true"}
    out, guest = tmp_path / "answer.json", "5d9b6c1e-5b39-4b4c-9f33-0a2b1c3d4e5f"
    process = run_python(INVOKE_BARE, [str(out), guest], env, tmp_path)
    answer = json.loads(out.read_text())
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["requestId"] is None
    # Powertools' switch to log every event would write the guest's id: the handler turns it off.
    assert guest not in process.stdout + process.stderr


def test_a_failed_attempt_is_traced_as_a_fault_without_the_exceptions_text(
    tmp_path, emulator, secrets_manager_server, xray_daemon, hostile_http
):
    # X-Ray records an exception's text, which a library may fill with a header it quotes: the subsegment
    # carries the fault and the exception's type only. (An answer over 1 MiB fails inside the attempt.)
    port, received = xray_daemon
    body = b'{"token": "' + b"x" * ((1 << 20) + 1024) + b'"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    oversized = hostile_http(head, body, 0)
    env = {"GENESYS_API_BASE_URL": oversized}
    answer = invoke_in_lambda_like_process(
        tmp_path, emulator, secrets_manager_server, tracing=True, daemon_port=port, extra_env=env
    )
    assert answer["result"]["statusCode"] == 502, answer["output"][-3000:]
    [attempt] = [entity for entity in entities(received()) if entity["name"] == "Genesys guest-token"]
    assert attempt.get("fault") is True and "cause" not in attempt
    assert attempt["metadata"]["default"]["exception"] == "UpstreamError"
