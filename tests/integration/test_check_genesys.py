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
VARIABLES = {
    "GENESYS_REGION": "mypurecloud.ie",
    "DEPLOYMENT_ID": DEPLOYMENT,
    "ORIGINS": "https://www.example.com",
    "client": "genesys-client.json",
}


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as server:  # its own: the test changes its deployments
        yield server


def readme_check(variables: dict[str, str]) -> list[str]:
    [line] = re.findall(r"^\.venv/bin/python -m devtools\.check_genesys .*$", (REPO / "README.md").read_text(), re.M)
    # The shell's work: the variables the README sets a few lines above.
    return [re.sub(r"\$(\w+)", lambda match: variables[match[1]], word) for word in shlex.split(line)]


def check(
    genesys: GenesysEmulator,
    tmp_path: Path,
    secret: str = DEMO_CLIENT_SECRET,
    *,
    origins: str = VARIABLES["ORIGINS"],
    credentials: str | None = "",
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    """The README's command; ``credentials`` is the file's text ("": the client's, None: no file)."""
    if credentials is not None:
        text = credentials or json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": secret})
        (tmp_path / "genesys-client.json").write_text(text)
    command = readme_check({**VARIABLES, "ORIGINS": origins, **variables})
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


@pytest.mark.parametrize(
    "origin",
    [
        "https://www.example.com/",
        "www.example.com",
        "https://WWW.example.com",
        "https://www.example.com:443",
        "https://www.example.com/shop",
    ],
)
def test_an_origin_the_template_would_refuse_is_refused_before_asking_genesys(
    genesys: GenesysEmulator, tmp_path: Path, origin: str
) -> None:
    # Genesys' allowed domains would admit it: only the template's own pattern says no.
    genesys.set_deployment(DEPLOYMENT, allow_all_domains=True)
    result = check(genesys, tmp_path, origins=origin)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--origin {origin!r}: the template's AllowedOrigins must be" in result.stderr
    assert "OK" not in result.stdout and "Traceback" not in result.stderr


def test_two_origins_as_the_template_accepts_them_pass(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.set_deployment(DEPLOYMENT, allow_all_domains=False, allowed_domains=["www.example.com", "b.example.com"])
    result = check(genesys, tmp_path, origins="https://www.example.com, https://b.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "admit https://www.example.com" in result.stdout and "admit https://b.example.com" in result.stdout


@pytest.mark.parametrize(
    ("contents", "says"),
    [
        (None, "cannot read it (No such file or directory)"),
        (f'{{"clientId": "{DEMO_CLIENT_ID}", "clientSecret": "{DEMO_CLIENT_SECRET}"', "is not JSON (line 1"),
        (f'{{"client_id": "{DEMO_CLIENT_ID}", "client_secret": "{DEMO_CLIENT_SECRET}"}}', "must be a JSON object"),
        (f'["{DEMO_CLIENT_ID}", "{DEMO_CLIENT_SECRET}"]', "must be a JSON object with non-empty string fields"),
        (f'{{"clientId": "{DEMO_CLIENT_ID}", "clientSecret": ""}}', "fields clientId and clientSecret"),
    ],
)
def test_a_bad_credentials_file_is_one_line_without_the_secret(
    genesys: GenesysEmulator, tmp_path: Path, contents: str | None, says: str
) -> None:
    result = check(genesys, tmp_path, credentials=contents)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("FAIL --credentials genesys-client.json") and says in line
    assert DEMO_CLIENT_SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DEPLOYMENT_ID", "not-a-uuid", "GENESYS_DEPLOYMENT_ID must be a web deployment id (a UUID)"),
        ("GENESYS_REGION", "mypurecloud.example", "GENESYS_REGION must be one of Genesys' regions"),
    ],
)
def test_a_bad_deployment_id_or_region_is_one_line(
    genesys: GenesysEmulator, tmp_path: Path, variable: str, value: str, says: str
) -> None:
    result = check(genesys, tmp_path, **{variable: value})
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("FAIL ") and says in line
