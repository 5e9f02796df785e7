"""The SAM template and its build: linted, valid without an AWS account, buildable, and in step with the code."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
PACKAGE = REPO / "functions" / "guest_token" / "guest_token"
BIN = Path(sys.executable).parent


def offline_env(**extra: str) -> dict[str, str]:
    """No AWS credentials, profile or region: what a reviewer's fresh machine has."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def sam_build(build_dir: Path, home: Path, *extra: str) -> None:
    """`sam build` of template.yaml into ``build_dir``, offline; fails the test with SAM's output."""
    result = subprocess.run(
        [BIN / "sam", "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir), *extra],
        capture_output=True,
        text=True,
        env=offline_env(HOME=str(home), AWS_DEFAULT_REGION="us-east-1"),
        cwd=REPO,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(yaml_parse(TEMPLATE.read_text()))


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["GuestTokenFunction"]["Properties"])


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [BIN / "cfn-lint", str(TEMPLATE)], capture_output=True, text=True, env=offline_env(), check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_needs_no_region_or_credentials(tmp_path):
    result = subprocess.run(
        [BIN / "sam", "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=offline_env(HOME=str(tmp_path)),
        cwd=REPO,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_packages_the_default_arm64_function_and_layer(tmp_path):
    build_dir = tmp_path / "build"
    sam_build(build_dir, tmp_path)
    function_dir = build_dir / "GuestTokenFunction"
    assert (function_dir / "guest_token" / "app.py").is_file()
    layer = build_dir / "DependenciesLayer" / "python"
    for package in ("aws_lambda_powertools", "pydantic", "pydantic_core", "jwt", "urllib3"):
        assert (layer / package).is_dir(), f"{package} missing from the layer"
    # pyjwt imports cryptography whenever it can: only the signature layer (GenesysJwksUrl) carries it.
    signature = build_dir / "SignatureLayer" / "python"
    assert not (layer / "cryptography").exists() and (signature / "cryptography").is_dir()
    # The runtime provides boto3 and botocore: shipping them would add 40 MB and shadow the runtime's pair.
    tracing = build_dir / "TracingLayer" / "python"
    for directory in (layer, tracing, signature):
        assert not (directory / "boto3").exists() and not (directory / "botocore").exists()
    assert (tracing / "aws_xray_sdk").is_dir() and (tracing / "wrapt").is_dir()
    # Built for the template's default architecture (arm64), not for this machine's.
    assert list((layer / "pydantic_core").glob("*aarch64*.so")), "the layer's native code is not arm64"
    [wheel] = signature.glob("cryptography-*.dist-info/WHEEL")
    assert "aarch64" in wheel.read_text(), "the signature layer's cryptography is not arm64"


def test_every_template_variable_and_parameter_is_documented_in_the_readme(function, template):
    readme = (REPO / "README.md").read_text()
    for name in [*function["Environment"]["Variables"], *template["Parameters"]]:
        assert f"`{name}`" in readme, f"{name} is not documented in README.md"


def test_the_handler_path_resolves_to_the_lambda_handler(function):
    module, _, attribute = function["Handler"].rpartition(".")
    source = REPO / function["CodeUri"] / (module.replace(".", "/") + ".py")
    assert source.is_file()
    assert f"def {attribute}(" in source.read_text()


def test_the_region_parameter_offers_every_genesys_region(template):
    regions = template["Parameters"]["GenesysRegion"]["AllowedValues"]
    assert len(regions) == 17
    assert {"mypurecloud.com", "mypurecloud.ie", "usw2.pure.cloud", "use2.us-gov-pure.cloud"} <= set(regions)


def test_samconfig_has_a_default_and_a_prod_environment_for_the_same_template():
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    assert {"default", "prod"} <= set(config)
    stacks = {name: config[name]["global"]["parameters"]["stack_name"] for name in ("default", "prod")}
    assert stacks["default"] != stacks["prod"], "prod must not deploy over the default stack"
    for name in ("default", "prod"):
        deploy = config[name]["deploy"]["parameters"]
        # The function's role is created by the stack; SAM needs no more than CAPABILITY_IAM.
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
