"""The template's edge protection: access logs, the optional WAF rate limit per IP, and a checkov scan with no
failures, where every deliberate skip sits next to its resource with a reason."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.template.test_expanded import expand, only, resources_of_type

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
# Installed by `make test` into its own venv (its pins clash with aws-sam-cli's).
CHECKOV = Path(sys.executable).parent.parent / "checkov" / "bin" / "checkov"
# The checks this template skips on purpose; each skip's reason is in template.yaml next to the resource.
DELIBERATE_SKIPS = {
    "GuestTokenApi": {"CKV_AWS_73", "CKV_AWS_120"},
    "GuestTokenFunction": {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"},
    "GuestTokenFunctionLogGroup": {"CKV_AWS_158"},
    "GuestTokenApiAccessLogGroup": {"CKV_AWS_158"},
    "GuestTokenWebAcl": {"CKV_AWS_192"},
    "AlarmTopic": {"CKV_AWS_26"},
    "ConfigurationRevisionFunction": {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"},
    "ConfigurationRevisionFunctionLogGroup": {"CKV_AWS_158"},
}


def checkov(template: Path) -> dict[str, Any]:
    assert CHECKOV.is_file(), "checkov is missing: run `make test`, which installs it into .venv/checkov"
    result = subprocess.run(
        [CHECKOV, "--file", str(template), "--framework", "cloudformation", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0, result.stderr
    return dict(report["results"])


def resource_name(check: dict[str, Any]) -> str:
    return str(check["resource"]).rpartition(".")[2]


# checkov evaluates Conditions with parameter defaults: each variant switches one option on by its default, so
# that the resources and properties it adds are scanned too.
VARIANTS = {
    "waf-enabled": (
        'EnableWaf:\n    Type: String\n    Default: "false"',
        'EnableWaf:\n    Type: String\n    Default: "true"',
    ),
    "snapstart": (
        'EnableSnapStart:\n    Type: String\n    Default: "false"',
        'EnableSnapStart:\n    Type: String\n    Default: "true"',
    ),
    "provisioned-concurrency": (
        'Default: "0"\n    AllowedPattern: "^(0|[1-9][0-9]{0,2})$"',
        'Default: "2"\n    AllowedPattern: "^(0|[1-9][0-9]{0,2})$"',
    ),
}


def variant_template(variant: str, directory: Path) -> Path:
    if variant == "defaults":
        return TEMPLATE
    text = TEMPLATE.read_text()
    switched = text.replace(*VARIANTS[variant])
    assert switched != text
    path = directory / "template.yaml"
    path.write_text(switched)
    return path


@pytest.mark.parametrize("variant", ["defaults", *VARIANTS])
def test_checkov_finds_nothing_but_the_deliberate_skips(variant: str, tmp_path: Path) -> None:
    results = checkov(variant_template(variant, tmp_path))
    failed = [(check["check_id"], check["resource"]) for check in results["failed_checks"]]
    assert failed == []
    assert results["passed_checks"], "checkov checked nothing: the scan is not looking at the template"
    skipped: dict[str, set[str]] = {}
    for check in results["skipped_checks"]:
        assert check["check_result"]["suppress_comment"].strip(), f"{check['check_id']} is skipped without a reason"
        skipped.setdefault(resource_name(check), set()).add(check["check_id"])
    expected = {name: ids for name, ids in DELIBERATE_SKIPS.items() if variant == "waf-enabled" or "WebAcl" not in name}
    assert skipped == expected  # with the WAF on, its web ACL is scanned too


def test_the_stage_writes_json_access_logs_without_bodies_or_headers() -> None:
    stack = expand()
    setting = only(stack, "AWS::ApiGateway::Stage")["AccessLogSetting"]
    [group_name] = [name for name in resources_of_type(stack, "AWS::Logs::LogGroup") if "Access" in name]
    assert setting["DestinationArn"] == {"Fn::GetAtt": [group_name, "Arn"]}
    fields = json.loads(setting["Format"])
    assert {"requestId", "ip", "status", "wafStatus"} <= set(fields)
    assert not any("header" in value.lower() or "body" in value.lower() for value in fields.values())
    assert stack["Resources"][group_name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_waf_is_off_by_default_and_limits_each_ip_when_switched_on() -> None:
    stack = expand({"EnableWaf": "true"})
    assert stack["Parameters"]["EnableWaf"]["Default"] == "false"
    assert stack["Conditions"]["WafEnabled"] == {"Fn::Equals": [{"Ref": "EnableWaf"}, "true"]}
    [acl_name] = resources_of_type(stack, "AWS::WAFv2::WebACL")
    [association] = resources_of_type(stack, "AWS::WAFv2::WebACLAssociation").values()
    assert stack["Resources"][acl_name]["Condition"] == association["Condition"] == "WafEnabled"

    acl = only(stack, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Rules"]
    assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rule["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimitPerIp"}
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = json.loads(acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert body["error"]["code"] == "rate_limited"  # the service's own error shape and code

    # Attached to this API's stage, so it applies before API Gateway or the function does any work.
    [stage_name] = resources_of_type(stack, "AWS::ApiGateway::Stage")
    [api_name] = resources_of_type(stack, "AWS::ApiGateway::RestApi")
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith(f"/restapis/${{{api_name}}}/stages/${{{stage_name}}}")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_name, "Arn"]}


def test_prod_deploys_with_the_per_ip_rate_rule() -> None:
    # Stage throttling is one bucket for every caller: without the WAF rule one script starves every widget.
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    overrides = dict(
        item.split("=", 1) for item in shlex.split(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    )
    assert overrides["EnableWaf"] == "true"
    stack = expand(overrides)
    assert set(overrides) <= set(stack["Parameters"]), "prod overrides a parameter the template does not have"
    assert stack["Parameters"]["EnableWaf"]["Default"] == "false"  # the default environment stays without it
