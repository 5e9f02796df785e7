"""The template's cold-start options: SnapStart and provisioned concurrency, both on the published versions
behind the "live" alias, which every API integration calls (docs/scaling.md says when to choose which)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.template.cloudformation import evaluate, expand
from tests.template.test_expanded import only, resources_of_type


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return expand()


def alias(stack: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(name, resource)] = resources_of_type(stack, "AWS::Lambda::Alias").items()
    return name, dict(resource["Properties"])


def test_every_deployment_publishes_a_version_behind_the_live_alias(stack):
    name, properties = alias(stack)
    assert properties["Name"] == "live"
    [version] = resources_of_type(stack, "AWS::Lambda::Version")
    assert properties["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    assert name == "GuestTokenFunctionAliaslive"


def test_the_api_calls_the_alias_and_may_call_nothing_else(stack):
    name, _ = alias(stack)
    body = json.dumps(only(stack, "AWS::ApiGateway::RestApi")["Body"])
    assert body.count("${GuestTokenFunctionAliaslive}/invocations") == 3  # POST, ANY and the catch-all route
    assert "${GuestTokenFunction.Arn}" not in body
    permissions = resources_of_type(stack, "AWS::Lambda::Permission").values()
    assert permissions and all(p["Properties"]["FunctionName"] == {"Ref": name} for p in permissions)


@pytest.mark.parametrize(("parameters", "applied"), [({}, "None"), ({"SnapStart": "true"}, "PublishedVersions")])
def test_one_parameter_turns_snapstart_on_for_published_versions(stack, parameters, applied):
    snap_start = only(stack, "AWS::Lambda::Function")["SnapStart"]
    assert evaluate(snap_start["ApplyOn"], stack, parameters) == applied


@pytest.mark.parametrize(("parameters", "provisioned"), [({}, False), ({"ProvisionedConcurrency": "3"}, True)])
def test_provisioned_concurrency_sits_on_the_alias_only_when_asked_for(stack, parameters, provisioned):
    _, properties = alias(stack)
    condition, when_set, otherwise = properties["ProvisionedConcurrencyConfig"]["Fn::If"]
    assert when_set == {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}}
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert evaluate({"Condition": condition}, stack, parameters) is provisioned
    assert "ProvisionedConcurrencyConfig" not in only(stack, "AWS::Lambda::Function")  # $LATEST is never provisioned


def test_snapstart_and_provisioned_concurrency_cannot_be_deployed_together(stack):
    # Lambda refuses a version with both; the rule refuses the stack before anything is created.
    rule = stack["Rules"]["SnapStartOrProvisionedConcurrency"]
    for parameters, refused in (
        ({"SnapStart": "true", "ProvisionedConcurrency": "2"}, True),
        ({"SnapStart": "true"}, False),
        ({"ProvisionedConcurrency": "2"}, False),
    ):
        applies = evaluate(rule["RuleCondition"], stack, parameters)
        holds = all(evaluate(assertion["Assert"], stack, parameters) for assertion in rule["Assertions"])
        assert (applies and not holds) == refused, parameters
