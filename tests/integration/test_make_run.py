"""`make run`'s server, driven by the README's own curl command: the token's claims match the request; a busy
port stops it with a message naming the port and the variable that moves it; SITE_DIR and ALLOWED_ORIGINS
serve your own pages and allow your own origins, and it says so."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import urllib3

from devtools.genesys_emulator import DEMO_DEPLOYMENT_ID
from devtools.net import free_port, listening
from devtools.run_local import PORTS, Port

REPO = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        if listening(port):
            return
        time.sleep(0.1)
    pytest.fail(f"make run's server did not listen on {port}")


def readme_curl() -> str:
    [command] = re.findall(
        r"^curl -s -X POST http://127\.0\.0\.1:3000/guest-tokens .*$", (REPO / "README.md").read_text(), re.MULTILINE
    )
    return command


@pytest.mark.slow
def test_make_run_serves_the_readme_curl_a_token_matching_the_request():
    api, genesys, secrets = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.run_local",
            "--port",
            str(api),
            "--genesys-port",
            str(genesys),
            "--secrets-port",
            str(secrets),
            "--webmessaging-port",
            "0",
            "--demo-port",
            "0",
            "--blocked-demo-port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(api, server)
        command = readme_curl().replace(":3000", f":{api}")
        started = time.time()
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=True)
        ended = time.time()
        body = json.loads(result.stdout)
        assert json.loads(shlex.split(command)[-1]) == {}  # the webmessaging source decides lifetime and rights

        jwks = jwt.PyJWKClient(f"http://127.0.0.1:{genesys}/.well-known/jwks.json")
        key = jwks.get_signing_key_from_jwt(body["token"]).key
        claims = jwt.decode(body["token"], key, algorithms=["RS256"], audience=DEMO_DEPLOYMENT_ID)
        # The token's exp less the service's clock in whole seconds, read while curl waited.
        assert claims["exp"] - int(ended) <= body["expiresIn"] <= claims["exp"] - int(started)
        assert body["newSession"] is True and body["deploymentId"] == DEMO_DEPLOYMENT_ID
        assert body["webSocketUrl"].startswith("ws://127.0.0.1:")
        # The JWT opens the guest's history through Genesys' guest REST call.
        history = urllib3.request(
            "GET",
            f"http://127.0.0.1:{genesys}/api/v2/webmessaging/messages",
            headers={"Authorization": f"Bearer {body['token']}"},
            timeout=5,
        )
        assert history.status == 200, history.data
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "demo-client-secret" not in output
    assert body["token"] not in output
    assert body["guestId"] not in output  # the session token, the key to the guest's conversation


@pytest.mark.parametrize("port", PORTS, ids=[port.variable for port in PORTS])
def test_a_busy_port_is_named_with_the_variable_that_moves_it_and_make_run_exits(port: Port) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        # Every other server on a free port; the one under test on the port something already listens on.
        arguments = [argument for other in PORTS if other != port for argument in (other.option, "0")]
        result = subprocess.run(
            [sys.executable, "-m", "devtools.run_local", *arguments, port.option, str(busy)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Port {busy} ({port.what}) is in use" in result.stderr
    assert f"{port.variable}={busy + 1} make run" in result.stderr
    assert "Traceback" not in result.stderr and "Guest-token API" not in result.stdout


def run_local(**env: str) -> subprocess.CompletedProcess[str]:
    """`make run`'s server with its ports set as `make run` passes them: from the environment."""
    ports = {port.variable: "0" for port in PORTS}
    return subprocess.run(
        [sys.executable, "-m", "devtools.run_local"],
        cwd=REPO,
        env={**os.environ, **ports, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [("SECRETS_MANAGER_PORT", "GENESYS_EMULATOR_PORT"), ("PORT", "GENESYS_EMULATOR_PORT"), ("PORT", "DEMO_PORT")],
)
def test_two_servers_given_one_port_are_refused_up_front_naming_both_variables(first: str, second: str) -> None:
    number = str(free_port())
    result = run_local(**{first: number, second: number})
    assert result.returncode == 2, result.stdout + result.stderr
    names = sorted((first, second), key=[port.variable for port in PORTS].index)
    assert f"{names[0]} and {names[1]} are both {number}" in result.stderr
    assert "Traceback" not in result.stderr and "Guest-token API" not in result.stdout


@pytest.mark.parametrize("value", ["abc", "", "70000", "-5"])
def test_a_port_that_is_not_a_port_number_is_named_with_the_valid_range(value: str) -> None:
    result = run_local(PORT=value)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"PORT (or --port) must be a port number from 0 to 65535 (0 picks a free one), not {value!r}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "Guest-token API" not in result.stdout


def test_a_site_dir_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "my-site"
    result = run_local(SITE_DIR=str(missing))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"SITE_DIR (or --site) must be a folder of your pages: {str(missing)!r} is not one" in result.stderr
    assert "Traceback" not in result.stderr and "Guest-token API" not in result.stdout


@pytest.mark.slow
def test_allowed_origins_from_the_environment_replace_the_local_ones_and_make_run_says_so(tmp_path: Path) -> None:
    """`ALLOWED_ORIGINS=... SITE_DIR=... make run`: a page of your own on your own dev server's origin; the
    folder served at the demo's origin, which the variable no longer allows."""
    (tmp_path / "index.html").write_text("<!doctype html><title>Mine</title>")
    env = {**os.environ, **{port.variable: "0" for port in PORTS}}
    env |= {"ALLOWED_ORIGINS": "http://localhost:5173", "SITE_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "devtools.run_local"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    lines: list[str] = []
    try:
        for line in server.stdout:  # until the line that says it serves
            lines.append(line)
            if line.startswith("Try: "):
                break
        printed = "".join(lines)
        assert "Try: " in printed, printed

        def shown(label: str) -> str:
            match = re.search(rf"^{re.escape(label)}:\s+(.+)$", printed, re.MULTILINE)
            assert match, printed
            return match.group(1)

        assert shown("Allowed origins").startswith("http://localhost:5173  ")
        site, folder = shown("Your pages (SITE_DIR)").split("  from ")
        assert Path(folder) == tmp_path.resolve()
        assert urllib3.request("GET", site, timeout=5).data.startswith(b"<!doctype html><title>Mine")
        assert urllib3.request("GET", f"{site}guest-chat.js", timeout=5).status == 200  # widget/'s, beside it
        endpoint = shown("Guest-token API")
        # The printed curl uses an origin the service allows.
        [curl] = [line for line in lines if line.startswith("Try: ")]
        assert "-H 'Origin: http://localhost:5173'" in curl

        def status(origin: str) -> int:
            headers = {"Origin": origin, "Content-Type": "application/json"}
            return urllib3.request("POST", endpoint, body=b"{}", headers=headers, timeout=30).status

        assert status("http://localhost:5173") == 200
        assert status(site.rstrip("/")) == 403  # the demo's origin: not in the list any more
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0
