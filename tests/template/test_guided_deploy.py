"""The README's deployment, as SAM CLI really runs it, offline, against the template `make build` leaves, with
the choices the deployment's first lines make, up to where SAM CLI needs AWS: step 4's `sam deploy` asks
nothing; the guided alternative asks what the README's walk-through says, in its order, answered row by row.
And every operator's task states the deployment's region, which a new shell does not have."""

from __future__ import annotations

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

README = (REPO / "README.md").read_text()
WALK_THROUGH = README[README.index("### The guided run, prompt by prompt") :].split("\n### ", 1)[0]
ROW = re.compile(r"^\| (\d+) \| `([^`]+)` \| (.+) \|$", re.MULTILINE)
DEPLOY_BLOCK = README[README.index("### Deploy: one command sequence") :].split("```bash\n", 1)[1].split("```")[0]
# A prompt as SAM CLI writes it when stdin is not a terminal: a tab, the text, its default in brackets, ": ".
PROMPT = re.compile(r"\t([A-Z][^\t\n\[]*?[^\s\[])(?: \[([^\]\n]*)\])?: ")


REGION_LINES = DEPLOY_BLOCK.split("\n")[1:3]
OPERATORS_TASKS = README[README.index("### Operator's tasks") :].split("\n### ", 1)[0]


def choices() -> dict[str, str]:
    """The variables the README's deployment sets in its first lines, expanded as the shell would."""
    values: dict[str, str] = {}
    for name, value in re.findall(r'^(?:export )?([A-Z_]+)=("[^"]*"|\S+)', DEPLOY_BLOCK, re.MULTILINE):
        [values[name]] = shlex.split(re.sub(r"\$(\w+)", lambda match: values[match[1]], value))
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


def test_every_template_parameter_is_in_the_walk_through_or_pinned_by_make_build() -> None:
    parameters: dict[str, Any] = yaml_parse(TEMPLATE.read_text())["Parameters"]
    asked = {prompt.removeprefix("Parameter ") for prompt, _ in walk_through() if prompt.startswith("Parameter ")}
    pinned = set(pinned_by_make_build())
    assert asked == set(parameters) - pinned
    for name in pinned:
        assert f"`{name}`" in WALK_THROUGH, f"the walk-through does not say why {name} is not asked"


@pytest.mark.slow
def test_sam_deploy_guided_asks_what_the_readme_walks_through_in_its_order(tmp_path: Path) -> None:
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
    # Every answer was taken, and the run stopped where the README says AWS is needed.
    assert "Security Constraints Not Satisfied" not in output
    assert "Looking for resources needed for deployment" in output.split("SAM configuration environment")[-1]
    assert result.returncode != 0
    assert (tmp_path / "samconfig.toml").read_text() == (REPO / "samconfig.toml").read_text()


@pytest.mark.slow
def test_step_4_asks_nothing_before_aws_and_keeps_two_origins_with_a_space(tmp_path: Path) -> None:
    built_template(tmp_path)
    [command] = re.findall(r"^sam deploy (?!--guided).*$", DEPLOY_BLOCK, re.MULTILINE)
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


def test_every_operators_task_states_the_deployments_region_first() -> None:
    assert REGION_LINES[0].startswith("export AWS_REGION=") and REGION_LINES[1].startswith("export AWS_DEFAULT_REGION")
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", OPERATORS_TASKS, re.MULTILINE | re.DOTALL)
    commands = [block for indent, block in blocks if re.search(r"^ *(aws|sam|make) ", block, re.MULTILINE)]
    assert len(commands) >= 4
    for block in commands:
        assert [line.strip() for line in block.splitlines()[:2]] == REGION_LINES, block
    # Commands given in prose run in a shell that one of those blocks has set up: after the removal block.
    prose = re.sub(r"^ *```bash\n.*?^ *```", "", OPERATORS_TASKS, flags=re.MULTILINE | re.DOTALL)
    assert all(prose.index(command) > prose.index("Two things stay") for command in re.findall(r"`aws [^`]+`", prose))


def step(number: int) -> str:
    """Step ``number``'s commands in the README's deployment."""
    return f"# {number}. " + DEPLOY_BLOCK.split(f"\n# {number}. ", 1)[1].split(f"\n# {number + 1}. ", 1)[0]


@pytest.mark.parametrize("exists", [True, False], ids=["role exists", "new account"])
def test_step_2_makes_the_account_wide_role_only_when_it_is_missing(tmp_path: Path, exists: bool) -> None:
    # A stand-in aws that records its calls; `get-role` answers as IAM would.
    calls = tmp_path / "calls"
    aws = tmp_path / "aws"
    aws.write_text(
        f'#!/bin/sh\necho "$1 $2" >> "{calls}"\n'
        f'[ "$2" = get-role ] && {{ {"exit 0" if exists else "echo NoSuchEntity >&2; exit 254"}; }}\n'
        '[ "$2" = get-caller-identity ] && echo 123456789012\nexit 0\n'
    )
    aws.chmod(0o755)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    result = subprocess.run(
        ["bash", "-e", "-c", step(2)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    made = ["iam create-role", "iam attach-role-policy"]
    expected = ["iam get-role", *([] if exists else made), "sts get-caller-identity", "apigateway update-account"]
    assert calls.read_text().splitlines() == expected


def test_the_credentials_file_is_private_outside_the_repository_and_goes_with_the_shell(tmp_path: Path) -> None:
    # Step 1's lines that make the file, as a shell runs them, then what step 3 leaves to the trap.
    lines = [line for line in step(1).splitlines() if line.startswith(("client=", "cat >"))]
    assert lines == ["client=$(mktemp); trap 'rm -f \"$client\"' EXIT", 'cat > "$client"']
    script = "\n".join([*lines, 'echo "$client"', 'stat -c %a "$client"'])
    result = subprocess.run(
        ["bash", "-c", script],
        input='{"clientId": "id", "clientSecret": "secret"}',
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    path, mode = result.stdout.split()
    assert mode == "600" and not Path(path).is_relative_to(REPO)
    assert not Path(path).exists(), "the file outlived the shell"
    assert 'rm -f "$client"' in step(3) and "genesys-client.json" in (REPO / ".gitignore").read_text().split()
