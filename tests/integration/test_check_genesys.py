"""The deployment's check of the Genesys side (docs/deploy.md, step 1), run as written against the Genesys emulator."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from devtools import check_genesys
from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID, GenesysEmulator

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
    deploy = (REPO / "docs" / "deploy.md").read_text()
    lines = re.findall(r"^\.venv/bin/python -m devtools\.check_genesys .*$", deploy, re.M)
    [line] = [line for line in lines if "--session" not in line]  # the check; tests add --session themselves
    # The shell's work: the variables the deployment's choices set.
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
    """The documented command; ``credentials`` is the file's text ("": the client's, None: no file)."""
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


def test_allowed_domains_that_appear_to_leave_out_an_origin_warn_without_failing(
    genesys: GenesysEmulator, tmp_path: Path
) -> None:
    # Genesys' matching rule is not public: our reading is a hint, and Genesys decides on the WebSocket.
    genesys.set_deployment(DEPLOYMENT, allow_all_domains=False, allowed_domains=["shop.example.com"])
    result = check(genesys, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN its allowed domains ['shop.example.com'] appear to leave out https://www.example.com" in result.stderr


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


# -- --session: one guest session's transcript (devtools/genesys_transcript.py) ---------------------------------


def check_session(
    genesys: GenesysEmulator, tmp_path: Path, *extra: str, origins: str = VARIABLES["ORIGINS"]
) -> subprocess.CompletedProcess[str]:
    """The documented command with --session (and ``extra``), its guest socket pointed at the emulator too."""
    (tmp_path / "genesys-client.json").write_text(
        json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
    )
    command = [*readme_check({**VARIABLES, "DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID, "ORIGINS": origins}), *extra]
    command[0] = str(REPO / command[0])
    env = {
        **os.environ,
        "GENESYS_OAUTH_BASE_URL": genesys.base_url,
        "GENESYS_API_BASE_URL": genesys.base_url,
        "GENESYS_WEBMESSAGING_BASE_URL": genesys.webmessaging_url,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)


def answer_of(exchange: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = exchange["received"][exchange["answer"]]
    return answer


def test_session_prints_the_transcript_on_stdout_and_the_verdict_on_stderr(
    genesys: GenesysEmulator, tmp_path: Path
) -> None:
    genesys.reset()
    result = check_session(genesys, tmp_path, "--session")
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)  # stdout is the transcript alone: the OK lines go to stderr
    assert transcript["format"] == 1 and transcript["region"] == "emulator"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", transcript["recorded"])
    assert transcript["handshake"]["status"] == 101 and "inin-correlation-id" in transcript["handshake"]["headers"]
    answers = {exchange["sent"]: answer_of(exchange) for exchange in transcript["exchanges"]}
    assert list(answers) == ["configureSession", "getJwt", "echo", "closeSession"]
    assert {action: (a["type"], a["class"], a["code"]) for action, a in answers.items()} == {
        "configureSession": ("response", "SessionResponse", 200),
        "getJwt": ("response", "JwtResponse", 200),
        "echo": ("response", "StructuredMessage", 200),
        "closeSession": ("response", "SessionResponse", 200),
    }
    # As Genesys' SDK fixtures show: answers untagged, the echo tagged.
    assert {action: a["tracingId"] for action, a in answers.items()} == {
        "configureSession": "absent",
        "getJwt": "absent",
        "echo": "echoed",
        "closeSession": "absent",
    }
    assert answers["getJwt"]["body"] == {"object": {"exp": "integer", "jwt": "string"}}
    assert transcript["exchanges"][1]["jwt"] == {
        "alg": "RS256",
        "typ": "JWT",
        "segments": 3,
        "headerFields": ["alg", "kid", "typ"],
        "claims": ["aud", "deploymentId", "exp", "iat", "iss", "jti", "sub"],
    }
    assert transcript["history"]["status"] == 200 and "entities" in transcript["history"]["body"]["object"]
    assert transcript["closed"] == {"by": "checker", "code": None}
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        f"OK   the OAuth client {DEMO_CLIENT_ID} is accepted by {genesys.base_url}",
        f"OK   web deployment {DEMO_DEPLOYMENT_ID} is Active",
        "OK   its allowed domains appear to admit https://www.example.com",
    ]
    # Untagged answers are what Genesys' SDK fixtures show, and the service takes them: a note, not a failure.
    assert lines[3:] == [
        "OK   session transcript on stdout; notes: no tracingId on configureSession, getJwt, closeSession"
    ]
    # One session was opened and closed again; no message reached the conversation.
    [session] = genesys.sessions()
    assert session["messages"] == 0


def test_session_as_the_service_assumes_says_so_and_writes_the_file(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.reset()
    genesys.tag_answers = True
    result = check_session(genesys, tmp_path, "--session", "--transcript", "out.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "OK   session transcript in out.json; as the service expects"
    transcript = json.loads((tmp_path / "out.json").read_text())
    assert {answer_of(exchange)["tracingId"] for exchange in transcript["exchanges"]} == {"echoed"}


def test_session_fails_when_genesys_answers_what_the_service_would_refuse(
    genesys: GenesysEmulator, tmp_path: Path
) -> None:
    genesys.reset()
    # An HMAC JWT is only a note (opaque without a JWKS); one announced to live two days is refused.
    forged = jwt.encode({"sub": "guest", "exp": int(time.time()) + 2 * 86400}, "k" * 64, algorithm="HS256")
    genesys.add_fault("get-jwt", token=forged)
    result = check_session(genesys, tmp_path, "--session")
    assert result.returncode == 1, result.stderr
    summary = result.stderr.splitlines()[-1]
    assert summary.startswith("FAIL session transcript on stdout; notes:")
    assert "the JWT's exp is over a day away (the service refuses it)" in summary
    assert "JWT alg HS256: GENESYS_JWKS_URL would refuse it" in summary and "the history answered 401" in summary
    getjwt = json.loads(result.stdout)["exchanges"][1]
    assert getjwt["jwt"]["claims"] == ["exp", "sub"] and getjwt["lifetime"] == "over a day"


def test_a_refused_handshake_is_recorded_and_fails(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.reset()
    genesys.add_fault("ws-connect", status=503)
    result = check_session(genesys, tmp_path, "--session")
    assert result.returncode == 1, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["handshake"]["status"] == 503 and transcript["exchanges"] == []
    assert result.stderr.splitlines()[-1].endswith("the handshake was answered 503, not 101")


def test_an_unreachable_socket_is_one_line(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.reset()
    genesys.add_fault("ws-connect", refuse=True)
    result = check_session(genesys, tmp_path, "--session")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("FAIL the guest session could not be opened (")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "origins", "says"),
    [
        (["--transcript", "out.json"], VARIABLES["ORIGINS"], "--transcript goes with --session"),
        (["--session", "--transcript", "no/such/dir/out.json"], VARIABLES["ORIGINS"], "its directory does not exist"),
    ],
)
def test_session_arguments_are_checked_first(
    genesys: GenesysEmulator, tmp_path: Path, extra: list[str], origins: str, says: str
) -> None:
    genesys.reset()
    result = check_session(genesys, tmp_path, *extra, origins=origins)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("FAIL ") and says in line
    assert genesys.count("oauth") == 0


def test_session_needs_an_origin(genesys: GenesysEmulator, tmp_path: Path) -> None:
    genesys.reset()
    command = [
        str(REPO / ".venv/bin/python"),
        *("-m", "devtools.check_genesys", "--credentials", "genesys-client.json", "--region", "mypurecloud.ie"),
        *("--deployment-id", DEMO_DEPLOYMENT_ID, "--session"),
    ]
    (tmp_path / "genesys-client.json").write_text(
        json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET})
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENESYS_OAUTH_BASE_URL": genesys.base_url}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "FAIL --session needs --origin: the first origin is the guest socket's Origin"
    ]


def test_the_session_transcript_carries_no_value_genesys_or_the_checker_produced(
    genesys: GenesysEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_stream: Any,
) -> None:
    """Run in this process, so that every value either side makes is seen being made: each UUID (the session
    token, tracing ids, the guest id, message ids, correlation ids, jti), each access token, each JWT; the JWT's
    claims and a message in the history are made distinctive. None may reach stdout, stderr or the file. The
    service's own audit lines go to ``log_stream``: the command silences them (POWERTOOLS_LOG_LEVEL)."""
    genesys.reset()
    made: list[str] = []
    real_uuid4, real_token_urlsafe, real_encode = uuid.uuid4, secrets.token_urlsafe, jwt.encode

    def uuid4() -> uuid.UUID:
        value = real_uuid4()
        made.extend([str(value), value.hex])
        return value

    def token_urlsafe(nbytes: int | None = None) -> str:
        value = real_token_urlsafe(nbytes)
        made.append(value)
        return value

    def encode(*args: Any, **kwargs: Any) -> str:
        value = real_encode(*args, **kwargs)
        made.append(value)
        return value

    monkeypatch.setattr(uuid, "uuid4", uuid4)
    monkeypatch.setattr(secrets, "token_urlsafe", token_urlsafe)
    monkeypatch.setattr(jwt, "encode", encode)
    canaries = ["claim-value-7d1e9b3c55", "message-text-0a9f4e2d77", "header-value-5c3b1a8e99"]
    real_mint = genesys.mint_session_jwt

    def mint(session_id: str, deployment_id: str, fault: Any) -> tuple[str, int]:
        token, exp = real_mint(session_id, deployment_id, fault)
        claims = {**jwt.decode(token, options={"verify_signature": False}), "custom": canaries[0]}
        headers = {"kid": genesys.kid, "x5t": canaries[2]}
        genesys._webmessaging.add_message(session_id, {"text": canaries[1], "type": "Text", "direction": "Inbound"})
        return jwt.encode(claims, genesys.signing_key, algorithm="RS256", headers=headers), exp

    monkeypatch.setattr(genesys, "mint_session_jwt", mint)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")  # so that it is restored after --session sets WARNING
    credentials = tmp_path / "client.json"
    credentials.write_text(json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET}))
    for name, value in {
        "GENESYS_OAUTH_BASE_URL": genesys.base_url,
        "GENESYS_API_BASE_URL": genesys.base_url,
        "GENESYS_WEBMESSAGING_BASE_URL": genesys.webmessaging_url,
    }.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "transcript.json"
    status = check_genesys.main(
        [
            *("--credentials", str(credentials), "--region", "mypurecloud.ie", "--deployment-id", DEMO_DEPLOYMENT_ID),
            *("--origin", VARIABLES["ORIGINS"], "--session", "--transcript", str(path)),
        ]
    )
    printed = capsys.readouterr()
    written = printed.out + printed.err + path.read_text()
    assert status == 0, written

    transcript = json.loads(path.read_text())
    # The history held the distinctive message: its shape is there, its text is not.
    entities = transcript["history"]["body"]["object"]["entities"]
    assert transcript["history"]["status"] == 200
    assert entities == {"array": {"object": {"direction": "string", "text": "string", "type": "string"}}}
    assert "custom" in transcript["exchanges"][1]["jwt"]["claims"]
    assert "x5t" in transcript["exchanges"][1]["jwt"]["headerFields"]
    tokens = [value for value in made if value.count(".") == 2 and value.startswith("ey")]
    assert len(tokens) >= 2 and len(made) > 10  # the emulator's JWT and ours, and the ids made on the way
    assert DEMO_CLIENT_SECRET not in written
    for value in [*made, *canaries]:  # nor any piece of one: made at random, a piece is the value's alone
        for start in range(max(1, len(value) - 11)):
            assert value[start : start + 12] not in written, "a piece of a value"
    assert '"ping"' not in written  # the echo's text
    assert not re.search(r"\d{9,}|\d{2}:\d{2}:\d{2}", written)  # no exp, expirationDate or message time
    assert "Bearer" not in written and "Basic" not in written
