"""The plain CloudFormation that `sam deploy` submits, read the way a reviewer reads a stack before deploying.

The template is expanded offline with the AWS SAM translator that aws-sam-cli ships, after replacing the local
code paths with S3 locations as `sam package` does.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.shared import constants as powertools_constants

from tests.template.cloudformation import REPO, evaluate, expand

PACKAGE = REPO / "functions" / "guest_token" / "guest_token"
API_DOC = (REPO / "docs" / "api.md").read_text()
SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
    "secret:${GenesysCredentialsSecretName}-??????"
)
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
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


def guest_token_function(stack: dict[str, Any]) -> dict[str, Any]:
    """The service's function (the stack's other one only names its configuration: test_published_versions.py)."""
    return dict(stack["Resources"]["GuestTokenFunction"]["Properties"])


def variables_the_code_reads() -> set[str]:
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    return set(re.findall(r"environ(?:\.get\(|\[)\s*\"([A-Z0-9_]+)\"", source)) | set(
        re.findall(r"_(?:int|bool)\(\s*environ,\s*\"([A-Z0-9_]+)\"", source)
    )


def test_the_function_runtime_memory_timeout_handler_and_layers(stack):
    function = guest_token_function(stack)
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
        {"Fn::If": ["NeedsCryptography", {"Ref": signature}, {"Ref": "AWS::NoValue"}]},
    ]
    for layer in layers.values():
        assert function["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    # Native wheels follow the parameter; the tracing layer is pure Python and serves both.
    for name in ("DependenciesLayer", "SignatureLayer"):
        assert layers[by_name[name]]["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layers[by_name["TracingLayer"]]["Properties"]["CompatibleArchitectures"] == ["arm64", "x86_64"]
    # cryptography is created and attached only for signature checks (pyjwt loads it whenever it is there) or for
    # signed-in customers' refresh cookie.
    assert layers[signature]["Condition"] == "NeedsCryptography"
    assert stack["Conditions"]["ChecksSignatures"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "GenesysJwksUrl"}, ""]}]}
    assert stack["Conditions"]["SignedInCustomers"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CookieKeysSecretName"}, ""]}]
    }
    assert stack["Conditions"]["NeedsCryptography"] == {
        "Fn::Or": [{"Condition": "ChecksSignatures"}, {"Condition": "SignedInCustomers"}]
    }


def test_the_architecture_is_a_parameter_defaulting_to_arm64(stack):
    parameter = stack["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64"
    assert set(parameter["AllowedValues"]) == {"arm64", "x86_64"}


def test_the_function_gets_every_variable_the_code_reads_and_no_other(stack):
    variables = set(guest_token_function(stack)["Environment"]["Variables"])
    code_variables = variables_the_code_reads()
    assert "GENESYS_CREDENTIALS_SECRET_ID" in code_variables, "found no variables in the code: the pattern is stale"
    assert code_variables - variables == set(), "the code reads variables the template does not set"
    assert variables - code_variables - POWERTOOLS_VARIABLES == set(), "the template sets variables nobody reads"


_NO_VALUE = object()


def resolved(value: Any, stack: dict[str, Any], parameters: dict[str, str]) -> Any:
    """``value`` as CloudFormation deploys it with ``parameters``: every Fn::If decided, AWS::NoValue dropped."""
    if isinstance(value, list):
        items = (resolved(item, stack, parameters) for item in value)
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": "AWS::NoValue"}:
        return _NO_VALUE
    if list(value) == ["Fn::If"]:
        condition, when_true, when_false = value["Fn::If"]
        chosen = when_true if evaluate({"Condition": condition}, stack, parameters) else when_false
        return resolved(chosen, stack, parameters)
    items = ((key, resolved(item, stack, parameters)) for key, item in value.items())
    return {key: item for key, item in items if item is not _NO_VALUE}  # a property set to AWS::NoValue is absent


@pytest.mark.parametrize("tracing", ["Active", "PassThrough"])
def test_the_role_writes_its_own_logs_reads_the_secret_and_traces_only_when_tracing_is_on(tracing):
    # What the deployed role can do, with SAM's translation and the template's conditions both applied.
    parameters = {"Tracing": tracing}
    stack = expand(parameters)
    roles = resources_of_type(stack, "AWS::IAM::Role")
    assert set(roles) == {"GuestTokenFunctionRole", "ConfigurationRevisionFunctionRole"}
    role_name = "GuestTokenFunctionRole"  # TokenEventsPublishPolicy attaches to it by this name
    function = guest_token_function(stack)
    assert function["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}
    assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    role = resolved(roles[role_name]["Properties"], stack, parameters)
    # No managed policy: SAM's own role would bring AWSLambdaBasicExecutionRole (any log group) and
    # AWSXrayWriteOnlyAccess (even with PassThrough).
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
    ]
    statements = [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]
    assert all(statement["Effect"] == "Allow" and "Condition" not in statement for statement in statements)
    granted = {action: statement["Resource"] for statement in statements for action in statement["Action"]}
    # Lambda writes to the group the function's LoggingConfig names, which the stack creates: no CreateLogGroup.
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "GuestTokenFunctionLogGroup"}}
    own_log_group = {"Fn::GetAtt": ["GuestTokenFunctionLogGroup", "Arn"]}  # ends in :*, covering its streams
    expected = {
        "logs:CreateLogStream": own_log_group,
        "logs:PutLogEvents": own_log_group,
        "secretsmanager:GetSecretValue": {"Fn::Sub": SECRET_ARN},
    }
    if tracing == "Active":
        expected |= dict.fromkeys(XRAY_ACTIONS, "*")  # X-Ray has no resource-level permissions for these
    assert granted == expected


@pytest.mark.parametrize("keys", ["", "genesys-guest-token/cookie-keys"])
def test_with_signed_in_customers_the_role_also_reads_the_cookie_keys_secret_and_nothing_more(keys):
    parameters = {"Tracing": "PassThrough", "CookieKeysSecretName": keys}
    stack = expand(parameters)
    role = resolved(
        resources_of_type(stack, "AWS::IAM::Role")["GuestTokenFunctionRole"]["Properties"], stack, parameters
    )
    statements = [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]
    secrets = [
        statement["Resource"] for statement in statements if "secretsmanager:GetSecretValue" in statement["Action"]
    ]
    cookie_keys = (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${CookieKeysSecretName}-??????"
    )
    assert secrets == [{"Fn::Sub": SECRET_ARN}, *([{"Fn::Sub": cookie_keys}] if keys else [])]
    assert all(
        statement["Action"] == ["secretsmanager:GetSecretValue"]
        for statement in statements
        if "secretsmanager:GetSecretValue" in statement["Action"]
    )
    variables = guest_token_function(stack)["Environment"]["Variables"]
    assert variables["AUTH_COOKIE_KEYS_SECRET_ID"] == {"Ref": "CookieKeysSecretName"}


def test_the_function_log_group_is_created_by_the_stack_without_naming_the_function(stack):
    group = stack["Resources"]["GuestTokenFunctionLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    # Named after the stack, not the function: the role names the group, and the function needs the role.
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-guest-token"}
    assert "GuestTokenFunction}" not in json.dumps(group)


def test_the_stage_is_throttled_from_parameters(stack):
    stage = only(stack, "AWS::ApiGateway::Stage")
    assert stage["StageName"] == "v1"
    [setting] = stage["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


# ---- the request model ----------------------------------------------------------------------------------

# AWS's "important notes" for REST APIs: additionalProperties, anyOf, oneOf, discriminator, example,
# exclusiveMinimum and readOnly are not supported in models, and maxItems/minItems are not part of basic request
# validation; API Gateway drops minProperties/maxProperties from an imported model (aws/serverless-application-
# model discussion 2708). not and patternProperties are documented nowhere: a model that leans on any of these
# might refuse every POST with a field, or check nothing.
UNSUPPORTED_KEYWORDS = {
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "patternProperties",
    "discriminator",
    "example",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "readOnly",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
}
# What AWS's model documentation itself uses.
SUPPORTED_KEYWORDS = {"type", "properties", "items", "maxLength", "minLength", "pattern", "enum", "required"}
GUEST_ID = "6f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0"
ABSENT = object()


@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> dict[str, Any]:
    return dict(only(stack, "AWS::ApiGateway::RestApi")["Body"])


@pytest.fixture(scope="module")
def model(api: dict[str, Any]) -> dict[str, Any]:
    """The model API Gateway checks POST bodies against, as the translated OpenAPI document carries it."""
    post = api["paths"]["/guest-tokens"]["post"]
    validator = api["x-amazon-apigateway-request-validators"][post["x-amazon-apigateway-request-validator"]]
    assert validator["validateRequestBody"] is True
    reference = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return dict(api["components"]["schemas"][reference.rpartition("/")[2]])


@pytest.fixture(scope="module")
def cap(model: dict[str, Any]) -> jsonschema.Draft4Validator:
    """API Gateway models are JSON Schema draft 4."""
    jsonschema.Draft4Validator.check_schema(model)
    return jsonschema.Draft4Validator(model)


def keywords(schema: dict[str, Any]) -> Iterator[str]:
    """Every keyword used anywhere in ``schema`` (the names under properties are field names, not keywords)."""
    for keyword, value in schema.items():
        yield keyword
        subschemas = value.values() if keyword in {"properties", "patternProperties"} else [value]
        for subschema in subschemas:
            for item in subschema if isinstance(subschema, list) else [subschema]:
                if isinstance(item, dict):
                    yield from keywords(item)


def test_the_model_uses_only_keywords_api_gateway_supports(model):
    used = set(keywords(model))
    assert used & UNSUPPORTED_KEYWORDS == set()
    assert used <= SUPPORTED_KEYWORDS, used - SUPPORTED_KEYWORDS


def test_only_post_bodies_are_capped_so_preflights_pass(api):
    methods = api["paths"]["/guest-tokens"]
    assert set(methods) == {"post", "x-amazon-apigateway-any-method"}
    assert "x-amazon-apigateway-request-validator" not in methods["x-amazon-apigateway-any-method"]


def contract_bodies() -> Iterator[dict[str, Any]]:
    """Every combination of the contract's fields: each optional, null meaning absent."""
    guest_ids = [ABSENT, None, GUEST_ID, GUEST_ID.upper()]
    durations = [ABSENT, None, "short", "standard", "extended", "max"]
    scopes = [
        ABSENT,
        None,
        "webmessaging:guest:send",
        ["webmessaging:guest:send", "webmessaging:guest:receive"],
        [f"webmessaging:guest:{right}" for right in ("send", "receive", "read", "update")],
    ]
    for values in itertools.product(guest_ids, durations, scopes):
        fields = zip(("guestId", "duration", "scopes"), values, strict=True)
        yield {name: value for name, value in fields if value is not ABSENT}


def test_every_body_the_contract_accepts_passes_the_model(cap):
    bodies = list(contract_bodies())
    assert len(bodies) == 120
    assert [body for body in bodies if list(cap.iter_errors(body))] == []


@pytest.mark.parametrize(
    "body",
    [
        {"guestId": "-" * 36},
        {"guestID": GUEST_ID},
        {"duration": 3600},
        {"duration": "forever", "extra": False},
        {"scopes": []},
        {"scopes": ["unknown:scope", 7, None, True]},
        {"scopes": [["nested"]]},
        {"duration": {"a": {"b": {"c": {}}}}},
        {f"field{index}": index for index in range(20)},
        {"k" * 1000: 1},
        {"guestId": 10**30},
    ],
)
def test_unknown_fields_and_wrong_types_reach_the_function_which_names_the_field(cap, body):
    # The function answers these with 422 invalid_request naming the field; the model must not refuse them.
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
def test_the_sam_local_events_pass_the_model(cap, name):
    assert list(cap.iter_errors(event_bodies()[name])) == []


@pytest.mark.parametrize(
    "body",
    [
        {"guestId": "a" * 257},
        {"duration": "d" * 257},
        {"scopes": "s" * 257},
        {"scopes": ["webmessaging:guest:send", "s" * 257]},
        [1, 2, 3],
        "a string",
        7,
        None,
    ],
    ids=["long-guest-id", "long-duration", "long-scope", "long-scope-item", "list", "string", "number", "null"],
)
def test_non_objects_and_long_field_strings_stop_at_api_gateway(cap, body):
    assert list(cap.iter_errors(body)) != []


def test_json_schema_never_sees_padding_so_the_function_caps_the_size(cap):
    # 5 MB of whitespace parses to {}: no model can refuse it, which is why the function refuses large bodies.
    padded = "{" + " " * 5_000_000 + "}"
    assert list(cap.iter_errors(json.loads(padded))) == []
    paragraph = API_DOC[API_DOC.index("**Body cap.**") :].split("\n\n", 1)[0]
    assert "16 KiB" in paragraph and "413" in paragraph and "payload_too_large" in paragraph
    assert "kilobytes" not in paragraph  # the old claim that the model bounded the size


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
    variables = guest_token_function(stack)["Environment"]["Variables"]
    assert variables["GUEST_TOKEN_SOURCE"] == {"Ref": "GuestTokenSource"}
    assert variables["GENESYS_DEPLOYMENT_ID"] == {"Ref": "GenesysDeploymentId"}
    assert variables["GENESYS_WEBMESSAGING_BASE_URL"] == {"Ref": "GenesysWebMessagingBaseUrl"}
    assert variables["DEPLOYMENT_CACHE_SECONDS"] == {"Ref": "DeploymentCacheSeconds"}


def test_api_gateways_own_refusals_are_readable_by_the_calling_page(api):
    # Without CORS headers a browser script sees API Gateway's 429 (or 400) as a network error and cannot wait.
    responses = api["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {
        "BAD_REQUEST_BODY",
        "THROTTLED",
        "MISSING_AUTHENTICATION_TOKEN",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    for name, response in responses.items():
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "method.request.header.origin", name
        assert headers["gatewayresponse.header.Vary"] == "'Origin'", name
        assert headers["gatewayresponse.header.Access-Control-Expose-Headers"] == "'Retry-After'", name
        # Never '*' with credentials, and nothing that would let a page send cookies: the body holds no token.
        assert not any("credentials" in header.lower() for header in headers), name
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert responses["THROTTLED"]["statusCode"] == "429"
