"""The SAM template and its build: linted, valid without an AWS account, buildable, and in step with the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.template.test_hardening import VARIANTS, variant_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
PACKAGE = REPO / "functions" / "guest_token" / "guest_token"
BIN = Path(sys.executable).parent


def offline_env(**extra: str) -> dict[str, str]:
    """No AWS credentials, profile or region: what a reviewer's fresh machine has."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def make_build(build_dir: Path, home: Path, architecture: str) -> dict[str, Any]:
    """`make build` (what a deployment runs) into ``build_dir``, offline; returns the template left for `sam
    deploy`, after checking that nothing in it can deploy the package to another architecture."""
    result = subprocess.run(
        ["make", "build", f"BUILD_DIR={build_dir}", f"ARCH={architecture}"],
        capture_output=True,
        text=True,
        env=offline_env(HOME=str(home), AWS_DEFAULT_REGION="us-east-1"),
        cwd=REPO,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built = dict(yaml_parse((build_dir / "template.yaml").read_text()))
    assert_deploys_only_as(built, build_dir, architecture)
    return built


# e_machine in an ELF header (offset 18, little-endian on both): what a native library was compiled for.
ELF_MACHINES = {62: "x86_64", 183: "arm64"}


def assert_deploys_only_as(built: dict[str, Any], build_dir: Path, architecture: str) -> None:
    # No parameter left for `sam deploy` (or samconfig.toml's saved answers) to set otherwise.
    assert "Architecture" not in built["Parameters"]
    assert '"Ref": "Architecture"' not in json.dumps(built), "something still follows a parameter"
    resources = built["Resources"]
    assert resources["GuestTokenFunction"]["Properties"]["Architectures"] == [architecture]
    for layer in ("DependenciesLayer", "SignatureLayer"):
        assert resources[layer]["Properties"]["CompatibleArchitectures"] == [architecture]
    # Every native library in the package is for that architecture.
    libraries = [
        path for path in build_dir.rglob("*") if path.is_file() and (path.suffix == ".so" or ".so." in path.name)
    ]
    assert libraries, "no native code found: the check would pass vacuously"
    for library in libraries:
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", library
        machine = ELF_MACHINES.get(int.from_bytes(header[18:20], "little"))
        assert machine == architecture, f"{library.relative_to(build_dir)} is for {machine}, not {architecture}"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(yaml_parse(TEMPLATE.read_text()))


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["GuestTokenFunction"]["Properties"])


@pytest.mark.parametrize("variant", ["defaults", *VARIANTS])
def test_cfn_lint_is_clean(variant, tmp_path):
    # Each option switched on by its default too (SnapStart, provisioned concurrency, WAF), as checkov scans them.
    path = variant_template(variant, tmp_path)
    result = subprocess.run(
        [BIN / "cfn-lint", str(path)], capture_output=True, text=True, env=offline_env(), check=False
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
def test_make_build_packages_the_default_arm64_function_and_layer_and_pins_arm64(tmp_path):
    build_dir = tmp_path / "build"
    built = make_build(build_dir, tmp_path, "arm64")
    # SecretsManagerEndpointUrl is for sam local only: pinned empty, so no deployment can set it.
    assert "SecretsManagerEndpointUrl" not in built["Parameters"]
    variables = built["Resources"]["GuestTokenFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SECRETS_MANAGER_ENDPOINT_URL"] == ""
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


def test_every_template_variable_and_parameter_is_documented_in_the_settings_table(function, template):
    configuration = (REPO / "docs" / "configuration.md").read_text()
    table = configuration[configuration.index("## Settings") :].split("\n## ", 1)[0]
    for name in [*function["Environment"]["Variables"], *template["Parameters"]]:
        assert f"`{name}`" in table, f"{name} is not documented in docs/configuration.md's settings table"


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


def test_the_linux_env_json_is_env_json_on_the_host_network():
    """`sam local --docker-network host` on Linux, where Docker has no host.docker.internal: the same settings."""
    events = REPO / "events"
    docker = (events / "env.json").read_text()
    assert "host.docker.internal" in docker
    assert (events / "env.linux.json").read_text() == docker.replace("host.docker.internal", "127.0.0.1")
