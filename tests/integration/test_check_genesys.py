"""The README's check of the Genesys side before deploying, run as written against the Genesys emulator."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenesysEmulator

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = "0b6a3c2d-1e4f-4a5b-8c7d-9e0f1a2b3c4d"
VARIABLES = {"GENESYS_REGION": "mypurecloud.ie", "DEPLOYMENT_ID": DEPLOYMENT, "ORIGINS": "https://www.example.com"}


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as server:  # its own: the test changes its deployments
        yield server


def readme_check() -> list[str]:
    [line] = re.findall(r"^\.venv/bin/python -m devtools\.check_genesys .*$", (REPO / "README.md").read_text(), re.M)
    # The shell's work: the variables the README sets a few lines above.
    return [re.sub(r"\$(\w+)", lambda match: VARIABLES[match[1]], word) for word in shlex.split(line)]


def check(
    genesys: GenesysEmulator, tmp_path: Path, secret: str = DEMO_CLIENT_SECRET
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "genesys-client.json").write_text(json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": secret}))
    command = readme_check()
    command[0] = str(REPO / command[0])
    env = {**os.environ, "GENESYS_OAUTH_BASE_URL": genesys.base_url, "GENESYS_API_BASE_URL": genesys.base_url}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_an_active_deployment_admitting_the_origins_passes(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.set_deployment(DEPLOYMENT, allow_all_domains=False, allowed_domains=["www.example.com"])
    result = check(genesys, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"web deployment {DEPLOYMENT} is Active" in result.stdout
    assert "admit https://www.example.com" in result.stdout
    assert DEMO_CLIENT_SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("status", "domains", "secret", "says"),
    [
        ("Active", ["shop.example.com"], DEMO_CLIENT_SECRET, "leave out https://www.example.com"),
        ("Inactive", ["www.example.com"], DEMO_CLIENT_SECRET, "is Inactive, not Active"),
        ("Active", ["www.example.com"], "a wrong secret", "Genesys OAuth answered 401"),
    ],
)
def test_what_would_fail_in_aws_fails_here_naming_it(
    genesys: GenesysEmulator, tmp_path: Path, status: str, domains: list[str], secret: str, says: str
) -> None:
    genesys.set_deployment(DEPLOYMENT, status=status, allow_all_domains=False, allowed_domains=domains)
    result = check(genesys, tmp_path, secret)
    assert result.returncode == 1 and says in result.stderr, result.stdout + result.stderr
    assert "a wrong secret" not in result.stdout + result.stderr
