"""SnapStart: copies restored from one snapshot share nothing that must stay their own.

A process plays Lambda's SnapStart lifecycle with the runtime's own hook runner (awslambdaric's, from
.venv/lambda-runtime, which `make test` installs): it initialises the handler and serves a request (so every
cache is warm, as a function that primes itself would be), runs the before-snapshot hooks, then forks copies of
itself, as Lambda resumes environments from one snapshot; each copy runs the after-restore hooks and serves a
request. The emulator counts the OAuth calls and sees which access token each guest-token call carried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.genesys_emulator import ROUTE_GUEST_TOKEN, ROUTE_OAUTH
from tests.conftest import ORIGIN, SECRET_ID

REPO = Path(__file__).resolve().parents[2]
LAMBDA_RUNTIME = REPO / ".venv" / "lambda-runtime"
COPIES = 3

SNAPSHOT_AND_RESTORE = """
import json, os, random, sys
sys.path.append(sys.argv[4])  # /var/runtime's stand-in, after the function's own packages
from awslambdaric import lambda_runtime_hooks_runner
from devtools.local_api import LocalContext, build_event
from guest_token.app import lambda_handler

hooks, copies, out = sys.argv[1] == "hooks", int(sys.argv[2]), sys.argv[3]
headers = {"Origin": sys.argv[5], "Content-Type": "application/json"}
event = build_event("POST", "/guest-tokens", headers=headers, body="{}")
primed = lambda_handler(event, LocalContext())["statusCode"]
if hooks:
    lambda_runtime_hooks_runner.run_before_snapshot()
# A restored snapshot holds the memory as it was; fork would reseed random in the child, a restore does not.
snapshot_random = random.getstate()
restored = []
for _ in range(copies):
    read, write = os.pipe()
    if os.fork() == 0:
        random.setstate(snapshot_random)
        if hooks:
            lambda_runtime_hooks_runner.run_after_restore()
        status = lambda_handler(event, LocalContext())["statusCode"]
        os.write(write, json.dumps({"status": status, "random": random.random()}).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        restored.append(json.loads(pipe.read()))
    os.wait()
with open(out, "w") as file:
    json.dump({"primed": primed, "restored": restored}, file)
"""


def snapshot_and_restore(tmp_path: Path, emulator: Any, secrets_url: str, *, hooks: bool) -> dict[str, Any]:
    if not (LAMBDA_RUNTIME / "awslambdaric").is_dir():
        pytest.fail(f"{LAMBDA_RUNTIME} is missing: run `make test`, which installs it")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("AWS_ENDPOINT", "_X_AMZN"))},
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / "guest_token"), str(REPO)]),
        "GENESYS_CREDENTIALS_SECRET_ID": SECRET_ID,
        "GUEST_TOKEN_SOURCE": "rest",
        "GENESYS_OAUTH_BASE_URL": emulator.base_url,
        "GENESYS_API_BASE_URL": emulator.base_url,
        "ALLOWED_ORIGINS": ORIGIN,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = tmp_path / "copies.json"
    extra = [str(LAMBDA_RUNTIME), ORIGIN]
    process = subprocess.run(
        [sys.executable, "-c", SNAPSHOT_AND_RESTORE, "hooks" if hooks else "none", str(COPIES), str(out), *extra],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["primed"] == 200
    assert [copy["status"] for copy in result["restored"]] == [200] * COPIES
    return result


def access_tokens_used(emulator: Any) -> list[str]:
    return [
        {k.lower(): v for k, v in request.headers.items()}["authorization"]
        for request in emulator.requests
        if request.route == ROUTE_GUEST_TOKEN
    ]


def test_each_restored_copy_fetches_its_own_access_token_and_draws_its_own_numbers(
    tmp_path, emulator, secrets_manager_server
):
    result = snapshot_and_restore(tmp_path, emulator, secrets_manager_server, hooks=True)
    assert emulator.count(ROUTE_OAUTH) == 1 + COPIES
    assert len(set(access_tokens_used(emulator))) == 1 + COPIES
    assert len({copy["random"] for copy in result["restored"]}) == COPIES


def test_without_the_hooks_the_copies_would_share_the_snapshots_token_and_random_state(
    tmp_path, emulator, secrets_manager_server
):
    # What the hooks are for: the same lifecycle with the hooks left out shares one token among all copies.
    result = snapshot_and_restore(tmp_path, emulator, secrets_manager_server, hooks=False)
    assert emulator.count(ROUTE_OAUTH) == 1
    assert len(set(access_tokens_used(emulator))) == 1
    assert len({copy["random"] for copy in result["restored"]}) == 1
