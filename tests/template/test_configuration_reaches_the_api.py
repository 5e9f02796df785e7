"""A redeploy that changes only parameters (allowed origins, the Genesys region, a rotated secret's name) must
reach the requests the API sends. With SAM's AutoPublishAlias it would not: SAM names the published version after
the code location and the *unresolved* environment, so a parameter-only change publishes no new version and the
alias keeps the old configuration (aws/serverless-application-model#1640, #3820). So the API calls the function
itself, and the template offers neither SnapStart nor provisioned concurrency yet (docs/scaling.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.template.cloudformation import expand
from tests.template.test_expanded import only, resources_of_type


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return expand()


def test_the_api_calls_the_function_whose_environment_the_parameters_set(stack):
    body = json.dumps(only(stack, "AWS::ApiGateway::RestApi")["Body"])
    assert body.count("${GuestTokenFunction.Arn}/invocations") == 3  # POST, ANY and the catch-all route
    assert not resources_of_type(stack, "AWS::Lambda::Alias")
    assert not resources_of_type(stack, "AWS::Lambda::Version")
