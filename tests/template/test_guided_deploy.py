"""The README's deployment, as `sam deploy --guided` really runs it: the command from the README (with the
choices its first lines make), against the template `make build` leaves, answered row by row from the README's
walk-through, offline, up to where SAM CLI needs AWS. The prompts must be the walk-through's, in its order."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
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


def choices() -> dict[str, str]:
    """The variables the README's deployment sets in its first lines, expanded as the shell would."""
    values: dict[str, str] = {}
    for name, value in re.findall(r"^(?:export )?([A-Z_]+)=(\S+)", DEPLOY_BLOCK, re.MULTILINE):
        values[name] = re.sub(r"\$(\w+)", lambda match: values[match[1]], value)
    return values


def expand(text: str) -> str:
    return re.sub(r"\$(\w+)", lambda match: choices()[match[1]], text)


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
    # What `make build` leaves: the template, pinned, at SAM's default build path; the repo's samconfig.toml.
    built = tmp_path / ".aws-sam" / "build" / "template.yaml"
    built.parent.mkdir(parents=True)
    built.write_text(yaml_dump(pin(yaml_parse(TEMPLATE.read_text()), pinned_by_make_build())))
    shutil.copy(REPO / "samconfig.toml", tmp_path)
    [command] = re.findall(r"^sam deploy --guided .*$", DEPLOY_BLOCK, re.MULTILINE)
    answers = walk_through()
    env = offline_env(
        HOME=str(tmp_path),
        AWS_DEFAULT_REGION=choices()["AWS_DEFAULT_REGION"],
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = subprocess.run(
        [BIN / "sam", *shlex.split(expand(command))[1:]],
        input="".join(f"{answer}\n" for _, answer in answers),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
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
