"""The deployment of docs/deploy.md, as SAM CLI really runs it, offline, against the template `make build` leaves,
with the choices `deploy.env` holds, up to where SAM CLI needs AWS: step 4's `sam deploy` and
production's ask nothing; the guided alternative asks what the walk-through says, in its order, answered row by
row. Step 1 reads the credentials into a private file without swallowing what follows it; step 2 sets API
Gateway's role only where none is set, and waits for IAM. And every block reads `deploy.env` first, so an
operator's task in a new shell (docs/operations.md, the README's clean-up) has the deployment's region and
architecture; no pasted block holds a comment, which zsh (macOS's shell) would run as a command."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_dump, yaml_parse

from devtools.pin_parameters import pin
from tests.template.test_template import BIN, REPO, TEMPLATE, offline_env

DEPLOY = (REPO / "docs" / "deploy.md").read_text()
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
README = (REPO / "README.md").read_text()
ROW = re.compile(r"^\| (\d+) \| `([^`]+)` \| (.+) \|$", re.MULTILINE)
# A prompt as SAM CLI writes it when stdin is not a terminal: a tab, the text, its default in brackets, ": ".
PROMPT = re.compile(r"\t([A-Z][^\t\n\[]*?[^\s\[])(?: \[([^\]\n]*)\])?: ")


def section(text: str, heading: str) -> str:
    """From the heading that starts with ``heading`` to the next heading of the same or a higher level (a line
    starting with as many #s or fewer, outside code blocks, where a shell comment may start with one)."""
    level = len(heading.split(" ", 1)[0])
    lines = text.splitlines(keepends=True)
    [start] = [number for number, line in enumerate(lines) if line.startswith(heading)][:1]
    fenced = False
    for number in range(start + 1, len(lines)):
        fenced ^= lines[number].lstrip().startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", lines[number]):
            return "".join(lines[start:number])
    return "".join(lines[start:])


def bash_blocks(text: str) -> list[str]:
    """Each ```bash block of ``text``, dedented as a shell gets it when the block is copied."""
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL)
    return ["".join(line[len(indent) :] + "\n" for line in block.splitlines()) for indent, block in blocks]


def one_line(block: str) -> str:
    """A block with the shell's backslash continuations joined."""
    return re.sub(r" *\\\n *", " ", block)


WALK_THROUGH = section(DEPLOY, "## The guided run, prompt by prompt")
[CHOICES] = bash_blocks(section(DEPLOY, "## Your choices"))  # what deploy.env holds
READ_CHOICES = ". ./deploy.env"
PRODUCTION = section(DEPLOY, "## Production")


def choices() -> dict[str, str]:
    """The variables the deployment's choices set, expanded as the shell would."""
    values: dict[str, str] = {}
    for name, value in re.findall(r'^(?:export )?([A-Z_]+)=("[^"]*"|\S+)', CHOICES, re.MULTILINE):
        [values[name]] = shlex.split(re.sub(r"\$(\w+)", lambda match: values.get(match[1], ""), value))
    return values


def expand(text: str, values: dict[str, str] | None = None) -> str:
    return re.sub(r"\$(\w+)", lambda match: (values or choices())[match[1]], text)


def built_template(tmp_path: Path) -> None:
    """What `make build` leaves: the template, pinned, at SAM's default build path; the repo's samconfig.toml."""
    built = tmp_path / ".aws-sam" / "build" / "template.yaml"
    built.parent.mkdir(parents=True)
    built.write_text(yaml_dump(pin(yaml_parse(TEMPLATE.read_text()), pinned_by_make_build())))
    shutil.copy(REPO / "samconfig.toml", tmp_path)


def sam_offline(tmp_path: Path, command: str, answers: str) -> subprocess.CompletedProcess[str]:
    env = offline_env(
        HOME=str(tmp_path),
        AWS_DEFAULT_REGION=choices()["AWS_DEFAULT_REGION"],
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [BIN / "sam", *shlex.split(command)[1:]],
        input=answers,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def pinned_by_make_build() -> dict[str, str]:
    [line] = re.findall(
        r"-m devtools\.pin_parameters \$\(BUILD_DIR\)/template\.yaml (.*)$", (REPO / "Makefile").read_text(), re.M
    )
    values = [value.replace("$(ARCH)", choices()["ARCH"]) for value in line.split()]
    return dict(value.split("=", 1) for value in values)


def walk_through() -> list[tuple[str, str]]:
    rows = ROW.findall(WALK_THROUGH)
    assert [int(number) for number, _, _ in rows] == list(range(1, len(rows) + 1)), "rows out of sequence"
    return [(prompt, "" if answer.startswith("Enter") else answer.split("`")[1]) for _, prompt, answer in rows]


def step(number: int) -> str:
    """Step ``number``'s commands in docs/deploy.md: its blocks, in order."""
    return "".join(bash_blocks(section(DEPLOY, f"## Step {number}:")))


def test_every_template_parameter_is_in_the_walk_through_or_pinned_by_make_build() -> None:
    parameters: dict[str, Any] = yaml_parse(TEMPLATE.read_text())["Parameters"]
    asked = {prompt.removeprefix("Parameter ") for prompt, _ in walk_through() if prompt.startswith("Parameter ")}
    pinned = set(pinned_by_make_build())
    assert asked == set(parameters) - pinned
    for name in pinned:
        assert f"`{name}`" in WALK_THROUGH, f"the walk-through does not say why {name} is not asked"


@pytest.mark.slow
def test_sam_deploy_guided_asks_what_the_walk_through_says_in_its_order(tmp_path: Path) -> None:
    built_template(tmp_path)
    [command] = re.findall(r"^sam deploy --guided .*$", WALK_THROUGH, re.MULTILINE)
    answers = walk_through()
    result = sam_offline(tmp_path, expand(command), "".join(f"{answer}\n" for _, answer in answers))
    output = result.stdout + result.stderr
    asked = PROMPT.findall(output)
    assert [prompt for prompt, _ in asked] == [prompt for prompt, _ in answers], output
    # The command line's choices are the defaults, so Enter keeps them.
    defaults = {prompt: default for prompt, default in asked}
    assert defaults["Parameter GenesysRegion"] == choices()["GENESYS_REGION"]
    assert defaults["Parameter GenesysDeploymentId"] == choices()["DEPLOYMENT_ID"]
    assert defaults["Parameter AllowedOrigins"] == choices()["ORIGINS"]
    assert defaults["AWS Region"] == choices()["AWS_DEFAULT_REGION"] == choices()["AWS_REGION"]
    assert defaults["Stack Name"] == "genesys-guest-token"
    # Every answer was taken, and the run stopped where the walk-through says AWS is needed.
    assert "Security Constraints Not Satisfied" not in output
    assert "Looking for resources needed for deployment" in output.split("SAM configuration environment")[-1]
    assert result.returncode != 0
    assert (tmp_path / "samconfig.toml").read_text() == (REPO / "samconfig.toml").read_text()


@pytest.mark.slow
def test_step_4_asks_nothing_before_aws_and_keeps_two_origins_with_a_space(tmp_path: Path) -> None:
    built_template(tmp_path)
    [command] = re.findall(r"^sam deploy (?!--guided).*$", step(4), re.MULTILINE)
    origins = "https://www.example.com, https://shop.example.com"
    # Nothing on stdin: a prompt would read end-of-file, fail and show itself.
    result = sam_offline(tmp_path, expand(command, {**choices(), "ORIGINS": origins}), "")
    output = result.stdout + result.stderr
    assert PROMPT.findall(output) == [] and "?" not in output, output
    # It got as far as the first AWS call (the managed bucket), which fails without credentials.
    assert "Unable to locate credentials" in output and result.returncode != 0, output
    saved = tomllib.loads((tmp_path / "samconfig.toml").read_text())["default"]["deploy"]["parameters"]
    assert saved["parameter_overrides"] == {
        "GenesysRegion": choices()["GENESYS_REGION"],
        "GenesysDeploymentId": choices()["DEPLOYMENT_ID"],
        "AllowedOrigins": origins,
    }
    assert re.fullmatch(yaml_parse(TEMPLATE.read_text())["Parameters"]["AllowedOrigins"]["AllowedPattern"], origins)


@pytest.mark.slow
def test_production_keeps_its_own_parameters_and_takes_the_three_choices(tmp_path: Path) -> None:
    built_template(tmp_path)
    [command] = re.findall(r"^sam deploy .*$", one_line("".join(bash_blocks(PRODUCTION))), re.MULTILINE)
    result = sam_offline(tmp_path, expand(command), "")
    output = result.stdout + result.stderr
    assert PROMPT.findall(output) == [] and "?" not in output, output
    assert "Unable to locate credentials" in output and result.returncode != 0, output
    # samconfig.toml's prod parameters, which a command-line --parameter-overrides replaces: every one kept.
    checked_in = tomllib.loads((REPO / "samconfig.toml").read_text())["prod"]["deploy"]["parameters"]
    own = dict(pair.split("=", 1) for pair in checked_in["parameter_overrides"].split())
    saved = tomllib.loads((tmp_path / "samconfig.toml").read_text())["prod"]["deploy"]["parameters"]
    assert saved["parameter_overrides"] == {
        **own,
        "GenesysRegion": choices()["GENESYS_REGION"],
        "GenesysDeploymentId": choices()["DEPLOYMENT_ID"],
        "AllowedOrigins": choices()["ORIGINS"],
    }
    # The secret it makes is the one those parameters name.
    [secret] = re.findall(r"create-secret --name (\S+)", one_line(PRODUCTION))
    assert secret == own["GenesysCredentialsSecretName"]


def operators_blocks() -> list[str]:
    """The blocks an operator runs later, in a new shell: docs/operations.md's and the README's clean-up."""
    return [*bash_blocks(OPERATIONS), *bash_blocks(section(README, "## Clean up"))]


def test_every_block_reads_the_choices_first_so_a_new_shell_has_the_region_and_architecture(tmp_path: Path) -> None:
    # deploy.env, sourced by bash and by zsh (macOS's shell), exports what every AWS and SAM command reads.
    (tmp_path / "deploy.env").write_text(CHOICES)
    shells = [shell for shell in ("bash", "zsh") if shutil.which(shell)]
    for shell in shells:
        result = subprocess.run(
            [shell, "-c", f"{READ_CHOICES} && env"], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "ARCH", "GENESYS_REGION", "DEPLOYMENT_ID", "ORIGINS"):
            assert exported[name] == choices()[name], (shell, name)
        assert exported["PATH"].startswith(f"{tmp_path}/.venv/bin:"), "sam is not the one make build installs"
    commands = 0
    made_client = False
    for block in [*bash_blocks(DEPLOY)[1:], *operators_blocks()]:
        # A block that goes on with the file the previous block made runs in that block's shell.
        continues = made_client and '"$client"' in block and "client=" not in block
        if (
            re.search(r"^\s*(aws|sam|make|endpoint=|role=|keys=|\.venv/bin/python) |^client=", block, re.MULTILINE)
            and not continues
        ):
            assert block.splitlines()[0] == READ_CHOICES, block
            commands += 1
        made_client = "client=$(mktemp)" in block
    assert commands >= 9
    assert "deploy.env" in (REPO / ".gitignore").read_text().split()


def test_no_pasted_block_holds_a_comment() -> None:
    # zsh, macOS's default shell, runs a pasted "# ..." line as a command, and a quote or ">" in it swallows or
    # redirects what follows. deploy.env is a file, read by the shell, where comments are comments.
    pages = [README, *(path.read_text() for path in [REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))])]
    blocks = [block for page in pages for block in bash_blocks(page) if block != CHOICES]
    assert len(blocks) >= 15
    for block in blocks:
        assert not re.search(r"(^|\s)#", block), block
    # Commands given in prose run in a shell that the clean-up block has set up.
    remove = section(DEPLOY, "## Remove")
    assert "(../README.md#clean-up)" in remove
    prose = re.findall(r"`aws [^`]+`", remove)
    assert prose and all(remove.index(command) > remove.index("Two things stay") for command in prose)
    # docs/operations.md names commands in prose (`sam deploy`) but gives none to run there.
    outside = re.sub(r"^ *```bash\n.*?^ *```", "", OPERATIONS, flags=re.MULTILINE | re.DOTALL)
    assert not re.findall(r"`(?:aws|sam) [^`]* --[^`]+`", outside)


def stand_in(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}")
    path.chmod(0o755)


def run_step_2(tmp_path: Path, role: str, *, role_exists: bool = True, refusals: int = 0) -> tuple[list[str], str]:
    """Step 2 under `bash -e`, with a stand-in `aws` that records its calls (`get-account` prints ``role``, the
    first ``refusals`` `update-account` calls fail as IAM's delay makes them) and a `sleep` that only records."""
    calls = tmp_path / "calls"
    get_role = "exit 0" if role_exists else "echo NoSuchEntity >&2; exit 254"
    get_account = "echo AccessDeniedException >&2; exit 254" if role == "unreadable" else f'echo "{role}"'
    refused = "The role ARN does not have required permissions set to API Gateway"
    role_arn = "value=arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs"
    stand_in(
        tmp_path,
        "aws",
        f'echo "$1 $2" >> "{calls}"\n'
        f'case "$2" in\n'
        f"  get-account) {get_account} ;;\n"
        f"  get-role) {get_role} ;;\n"
        f"  get-caller-identity) echo 123456789012 ;;\n"
        f'  update-account) echo "$@" | grep -q "{role_arn}" || exit 9\n'
        f'    [ "$(grep -c update-account "{calls}")" -gt {refusals} ] || {{ echo "{refused}" >&2; exit 254; }} ;;\n'
        f"esac\nexit 0\n",
    )
    stand_in(tmp_path, "sleep", f'echo "sleep $1" >> "{calls}"\n')
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "AWS_REGION": "eu-west-1"}
    (tmp_path / "deploy.env").write_text(CHOICES)
    result = subprocess.run(
        ["bash", "-e", "-c", step(2)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines(), result.stdout + result.stderr


def test_step_2_changes_nothing_where_the_region_already_logs_through_a_role(tmp_path: Path) -> None:
    # Another team's role, say: the setting is the region's, shared by every API of the account there.
    role = "arn:aws:iam::123456789012:role/another-teams-role"
    calls, output = run_step_2(tmp_path, role)
    assert calls == ["apigateway get-account"]
    assert role in output


def test_step_2_changes_nothing_when_it_cannot_read_the_setting(tmp_path: Path) -> None:
    # No permission, or expired credentials: a setting it cannot read is not one that is empty.
    calls, output = run_step_2(tmp_path, "unreadable")
    assert calls == ["apigateway get-account"]
    assert "nothing changed" in output


@pytest.mark.parametrize("exists", [True, False], ids=["role exists", "new account"])
def test_step_2_makes_the_account_wide_role_only_when_it_is_missing(tmp_path: Path, exists: bool) -> None:
    # The AWS CLI prints None for a setting that is not set.
    calls, output = run_step_2(tmp_path, "None", role_exists=exists)
    made = ["iam create-role", "iam attach-role-policy"]
    expected = ["iam get-role", *([] if exists else made), "sts get-caller-identity", "apigateway update-account"]
    assert calls == ["apigateway get-account", *expected]
    assert "now logs through apigateway-cloudwatch-logs" in output


def test_step_2_waits_for_iam_to_let_api_gateway_use_a_new_role(tmp_path: Path) -> None:
    calls, output = run_step_2(tmp_path, "None", role_exists=False, refusals=3)
    tries = ["apigateway update-account", "sleep 10"] * 3 + ["apigateway update-account"]
    assert calls[-len(tries) :] == tries
    assert "now logs through apigateway-cloudwatch-logs" in output


def test_step_2_gives_up_after_ten_tries_saying_what_to_do_and_keeps_the_shell(tmp_path: Path) -> None:
    calls, output = run_step_2(tmp_path, "None", refusals=99)
    assert calls.count("apigateway update-account") == 10 and calls.count("sleep 10") == 9
    assert "run step 2 again in a minute" in output


def test_the_credentials_are_read_last_in_their_block_so_a_pasted_block_loses_nothing() -> None:
    # Lines pasted after whatever reads the credentials would be read as the credentials.
    blocks = [*bash_blocks(DEPLOY), *operators_blocks()]
    readers = [block for block in blocks if re.search(r"getpass|(^|[;&|] *)read |cat > ", block, re.MULTILINE)]
    assert len(readers) >= 2
    for block in readers:
        assert "getpass" in block.splitlines()[-1], block
    assert 'cat > "$client"' not in DEPLOY + OPERATIONS


def test_the_credentials_file_is_private_outside_the_repository_and_goes_with_the_shell(tmp_path: Path) -> None:
    # Step 1's lines that make the file, as a shell runs them, then what step 3 leaves to the trap.
    lines = [line for line in step(1).splitlines() if line.startswith(("client=", ".venv/bin/python -c"))]
    assert lines[0] == "client=$(mktemp); trap 'rm -f \"$client\"' EXIT" and lines[1].endswith(' > "$client"')
    script = "\n".join([*lines, 'echo "$client"', 'stat -c %a "$client"', 'cat "$client"'])
    secret = 'a "quoted" \\ secret'
    result = subprocess.run(
        ["bash", "-c", script],
        input=f"the-client-id\n{secret}\n",
        env={**os.environ, "TMPDIR": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        start_new_session=True,  # no terminal: getpass reads stdin, where it reads a person's terminal
    )
    path, mode, text = result.stdout.split("\n", 2)
    assert mode == "600" and not Path(path).is_relative_to(REPO)
    assert json.loads(text) == {"clientId": "the-client-id", "clientSecret": secret}
    assert "the-client-id" not in result.stderr and "quoted" not in result.stderr
    assert not Path(path).exists(), "the file outlived the shell"
    assert 'rm -f "$client"' in step(3) and "genesys-client.json" in (REPO / ".gitignore").read_text().split()
