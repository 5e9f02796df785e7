"""SnapStart: copies restored from one snapshot share nothing that must stay their own.

A process plays Lambda's SnapStart lifecycle with the runtime's own hook runner (awslambdaric's, from
.venv/lambda-runtime, which `make test` installs): it initialises the handler and serves a request (so every
cache is warm, as a function that primes itself would be), runs the before-snapshot hooks, then forks copies of
itself, as Lambda resumes environments from one snapshot; each copy runs the after-restore hooks and serves a
request. The emulator counts the OAuth calls and sees which access token each guest-token call carried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.genesys_emulator import ROUTE_GUEST_TOKEN, ROUTE_OAUTH
from tests.conftest import ORIGIN, REPO, handler_process_env, run_python

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
    out = tmp_path / "copies.json"
    args = ["hooks" if hooks else "none", str(COPIES), str(out), str(LAMBDA_RUNTIME), ORIGIN]
    run_python(SNAPSHOT_AND_RESTORE, args, handler_process_env(emulator, secrets_url), tmp_path)
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
