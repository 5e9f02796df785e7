"""The plain CloudFormation that `sam deploy` submits, read the way a reviewer reads a stack before deploying.

The template is expanded offline with the AWS SAM translator that aws-sam-cli ships, after replacing the local
code paths with S3 locations as `sam package` does.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.shared import constants as powertools_constants

from tests.template.cloudformation import BASIC_EXECUTION_ROLE, REPO, expand

PACKAGE = REPO / "functions" / "guest_token" / "guest_token"
# SAM attaches it whenever Tracing is a parameter, active or not; it only writes trace segments.
XRAY_WRITE_ONLY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
# The variables Powertools itself reads (Logger, Metrics, Tracer, parameters ...).
POWERTOOLS_VARIABLES = {
    value for value in vars(powertools_constants).values() if isinstance(value, str) and value.startswith("POWERTOOLS_")
}


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return expand()


def resources_of_type(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in stack["Resources"].items() if resource["Type"] == kind}


def only(stack: dict[str, Any], kind: str) -> dict[str, Any]:
    [resource] = resources_of_type(stack, kind).values()
    return dict(resource["Properties"])


def variables_the_code_reads() -> set[str]:
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    return set(re.findall(r"environ(?:\.get\(|\[)\s*\"([A-Z0-9_]+)\"", source)) | set(
        re.findall(r"_(?:int|bool)\(\s*environ,\s*\"([A-Z0-9_]+)\"", source)
    )


def test_the_function_runtime_memory_timeout_handler_and_layers(stack):
    function = only(stack, "AWS::Lambda::Function")
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "guest_token.app.lambda_handler"
    assert function["MemorySize"] == 512
    assert function["Timeout"] == 10, "the handler's deadline and API Gateway's 29 s assume 10 s"
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    layers = resources_of_type(stack, "AWS::Lambda::LayerVersion")
    by_name = {resource["Properties"]["LayerName"]: name for name, resource in layers.items()}
    signature = by_name["SignatureLayer"]
    assert function["Layers"] == [
        {"Ref": by_name["DependenciesLayer"]},
        {"Ref": by_name["TracingLayer"]},
        {"Fn::If": ["ChecksSignatures", {"Ref": signature}, {"Ref": "AWS::NoValue"}]},
    ]
    for layer in layers.values():
        assert function["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    # Native wheels follow the parameter; the tracing layer is pure Python and serves both.
    for name in ("DependenciesLayer", "SignatureLayer"):
        assert layers[by_name[name]]["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layers[by_name["TracingLayer"]]["Properties"]["CompatibleArchitectures"] == ["arm64", "x86_64"]
    # cryptography is created and attached only for signature checks (pyjwt loads it whenever it is there).
    assert layers[signature]["Condition"] == "ChecksSignatures"
    assert stack["Conditions"]["ChecksSignatures"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "GenesysJwksUrl"}, ""]}]}


def test_the_architecture_is_a_parameter_defaulting_to_arm64(stack):
    parameter = stack["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64"
    assert set(parameter["AllowedValues"]) == {"arm64", "x86_64"}


def test_the_function_gets_every_variable_the_code_reads_and_no_other(stack):
    variables = set(only(stack, "AWS::Lambda::Function")["Environment"]["Variables"])
    code_variables = variables_the_code_reads()
    assert "GENESYS_CREDENTIALS_SECRET_ID" in code_variables, "found no variables in the code: the pattern is stale"
    assert code_variables - variables == set(), "the code reads variables the template does not set"
    assert variables - code_variables - POWERTOOLS_VARIABLES == set(), "the template sets variables nobody reads"


def test_the_role_may_read_the_credentials_secret_and_write_logs_and_traces_nothing_else(stack):
    [role_name] = resources_of_type(stack, "AWS::IAM::Role")
    assert only(stack, "AWS::Lambda::Function")["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}
    role = only(stack, "AWS::IAM::Role")
    assert role["ManagedPolicyArns"] == [BASIC_EXECUTION_ROLE, XRAY_WRITE_ONLY]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}}
    ]
    statements = [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]
    actions = sorted(action for statement in statements for action in statement["Action"])
    assert actions == ["secretsmanager:GetSecretValue"], f"the role may do more than read the secret: {actions}"
    [statement] = statements
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret_arn(statement["Resource"]) == (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
        "secret:${GenesysCredentialsSecretName}-??????"
    )


def secret_arn(resource: Any) -> str:
    """The ARN pattern inside SAM's nested Fn::Sub of a policy template."""
    if isinstance(resource, str):
        return resource
    template, variables = resource["Fn::Sub"] if isinstance(resource["Fn::Sub"], list) else (resource["Fn::Sub"], {})
    if template == "${secretArn}":
        return secret_arn(variables["secretArn"])
    return str(template)


def test_the_stage_is_throttled_from_parameters(stack):
    stage = only(stack, "AWS::ApiGateway::Stage")
    assert stage["StageName"] == "v1"
    [setting] = stage["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


# ---- the request size cap ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> dict[str, Any]:
    return dict(only(stack, "AWS::ApiGateway::RestApi")["Body"])


@pytest.fixture(scope="module")
def cap(api: dict[str, Any]) -> jsonschema.Draft4Validator:
    """The model API Gateway checks POST bodies against (API Gateway models are JSON Schema draft 4)."""
    post = api["paths"]["/guest-tokens"]["post"]
    validator = api["x-amazon-apigateway-request-validators"][post["x-amazon-apigateway-request-validator"]]
    assert validator["validateRequestBody"] is True
    reference = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = api["components"]["schemas"][reference.rpartition("/")[2]]
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def test_only_post_bodies_are_capped_so_preflights_pass(api):
    methods = api["paths"]["/guest-tokens"]
    assert set(methods) == {"post", "x-amazon-apigateway-any-method"}
    assert "x-amazon-apigateway-request-validator" not in methods["x-amazon-apigateway-any-method"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"guestId": "6f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0", "duration": "max"},
        {"guestId": None, "duration": None, "scopes": None},
        {"scopes": ["webmessaging:guest:send", "webmessaging:guest:receive", "webmessaging:guest:read"]},
        {"scopes": "webmessaging:guest:send"},
    ],
)
def test_every_body_the_contract_accepts_fits_under_the_cap(cap, body):
    assert list(cap.iter_errors(body)) == []


@pytest.mark.parametrize(
    "body",
    [
        {"guestId": "-" * 36},
        {"guestID": "6f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0"},
        {"duration": 3600},
        {"scopes": []},
        {"scopes": ["unknown:scope", 7, None, True]},
        {"duration": "forever", "extra": False},
    ],
)
def test_small_mistakes_reach_the_function_which_names_the_field(cap, body):
    assert list(cap.iter_errors(body)) == []


def event_bodies() -> dict[str, Any]:
    bodies = {}
    for path in sorted((REPO / "events").glob("*.json")):
        if path.name == "env.json":
            continue
        body = json.loads(path.read_text()).get("body")
        with contextlib.suppress(ValueError):  # events/invalid-json.json: API Gateway refuses it, as the function does
            bodies[path.name] = json.loads(body or "{}")
    return bodies


@pytest.mark.parametrize("name", sorted(event_bodies()))
def test_the_sam_local_events_fit_under_the_cap(cap, name):
    assert list(cap.iter_errors(event_bodies()[name])) == []


@pytest.mark.parametrize(
    "body",
    [
        {"guestId": "a" * 100_000},
        {f"field{index}": index for index in range(9)},
        {"k" * 10_000: 1},
        {"scopes": ["webmessaging:guest:send"] * 17},
        {"scopes": [["nested"]]},
        {"duration": {"a": {"b": {"c": {}}}}},
        {"duration": 10**30},
        [1, 2, 3],
        "a string",
    ],
    ids=[
        "long-string",
        "many-fields",
        "long-key",
        "many-items",
        "nested-list",
        "nested-object",
        "huge-number",
        "list",
        "string",
    ],
)
def test_large_or_deep_bodies_stop_at_api_gateway(cap, body):
    assert list(cap.iter_errors(body)) != []


def test_the_cap_bounds_the_body_to_a_few_hundred_kilobytes(cap):
    # The largest body the model admits: 8 fields with 64-character names, each a list of 16 strings of
    # 256 characters, each character a 6-byte \\u escape.
    largest = {f"{index}".ljust(64, "k"): ["\u0001" * 256] * 16 for index in range(8)}
    assert list(cap.iter_errors(largest)) == []
    assert len(json.dumps(largest)) < 256 * 1024


def test_a_refused_body_gets_the_service_error_shape(api):
    response = api["x-amazon-apigateway-gateway-responses"]["BAD_REQUEST_BODY"]
    assert response["statusCode"] == "400"
    body = json.loads(response["responseTemplates"]["application/json"].replace("$context.requestId", "id"))
    # One code for "this body as a whole is unusable", whether API Gateway or the function says so.
    assert body["error"]["code"] == "invalid_json"


def test_the_outputs_name_the_endpoint_function_and_logs(stack):
    outputs = stack["Outputs"]
    assert outputs["GuestTokenEndpoint"]["Value"] == {
        "Fn::Sub": "https://${GuestTokenApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1/guest-tokens"
    }
    assert outputs["GuestTokenApiId"]["Value"] == {"Ref": "GuestTokenApi"}
    assert outputs["GuestTokenFunctionName"]["Value"] == {"Ref": "GuestTokenFunction"}
    assert outputs["GuestTokenLogGroup"]["Value"] == {"Ref": "GuestTokenFunctionLogGroup"}
    log_group = stack["Resources"]["GuestTokenFunctionLogGroup"]["Properties"]  # the API's access logs have their own
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${GuestTokenFunction}"}
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_webmessaging_source_is_the_default_and_cannot_deploy_without_a_deployment(stack):
    parameters = stack["Parameters"]
    assert parameters["GuestTokenSource"]["Default"] == "webmessaging"
    assert set(parameters["GuestTokenSource"]["AllowedValues"]) == {"webmessaging", "rest"}
    assert parameters["GenesysDeploymentId"]["Default"] == ""
    pattern = re.compile(parameters["GenesysDeploymentId"]["AllowedPattern"])
    assert pattern.fullmatch("5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b") and pattern.fullmatch("")
    assert not pattern.fullmatch("my-deployment")
    # A CloudFormation rule refuses the stack (before any resource is made) when webmessaging has no deployment.
    rule = stack["Rules"]["WebMessagingNeedsADeployment"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "GuestTokenSource"}, "webmessaging"]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "GenesysDeploymentId"}, ""]}]}
    variables = only(stack, "AWS::Lambda::Function")["Environment"]["Variables"]
    assert variables["GUEST_TOKEN_SOURCE"] == {"Ref": "GuestTokenSource"}
    assert variables["GENESYS_DEPLOYMENT_ID"] == {"Ref": "GenesysDeploymentId"}
    assert variables["GENESYS_WEBMESSAGING_BASE_URL"] == {"Ref": "GenesysWebMessagingBaseUrl"}
    assert variables["DEPLOYMENT_CACHE_SECONDS"] == {"Ref": "DeploymentCacheSeconds"}
