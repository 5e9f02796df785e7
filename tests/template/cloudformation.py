"""template.yaml as the tests read it: expanded into plain CloudFormation, and its intrinsics evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
BASIC_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# Where `sam package` leaves each kind of code: an S3 location instead of a local folder.
_CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class ManagedPolicies:
    """The translator's managed-policy loader, without IAM: the names a template may use, and nothing else."""

    def load(self) -> dict[str, str]:
        return {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION_ROLE}


def expand(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation that `sam deploy` submits, expanded offline by the AWS SAM translator."""
    template = yaml_parse(TEMPLATE.read_text())
    for name, resource in template["Resources"].items():
        if resource["Type"] in _CODE_PROPERTY:
            resource["Properties"][_CODE_PROPERTY[resource["Type"]]] = f"s3://artifacts/guest-token/{name}.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the translator needs a region for ARNs
        return dict(transform(template, parameters or {}, ManagedPolicies()))


def evaluate(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """Enough of CloudFormation's intrinsics (Ref, conditions, Fn::If) for this template, with ``parameters``
    given and every other parameter at its default."""
    if not isinstance(value, dict):
        return value
    [(function, argument)] = value.items()
    if function == "Ref":
        return parameters.get(argument, str(template["Parameters"][argument].get("Default", "")))
    if function == "Condition":
        return evaluate(template["Conditions"][argument], template, parameters)
    if function == "Fn::If":
        condition, when_true, when_false = argument
        chosen = when_true if evaluate(template["Conditions"][condition], template, parameters) else when_false
        return evaluate(chosen, template, parameters)
    values = [evaluate(item, template, parameters) for item in argument]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Or":
        return any(values)
    raise AssertionError(f"unexpected {function}")
