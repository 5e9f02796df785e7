"""API Gateway calls the function's alias `live`, and every deployment that changes what the function runs
publishes a new version for it: new code, a new property in template.yaml, or only a parameter's new value
(allowed origins, the Genesys region, turning SnapStart on). SAM alone misses the last (it names the version
after the code and the *unresolved* environment: aws/serverless-application-model#1640, #3820), so the version's
description carries ConfigurationRevision's digest of those values, and a new description makes CloudFormation
replace the version resource, which publishes one. These tests run the digest function the template ships."""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.template.cloudformation import TEMPLATE, evaluate, expand
from tests.template.test_expanded import guest_token_function, only, resolved, resources_of_type

# Function properties that do not become part of a published version: the alias's own setting, and SAM's
# instructions for publishing.
NOT_IN_A_VERSION = {
    "ProvisionedConcurrencyConfig",
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "VersionDescription",
    "VersionDeletionPolicy",
}


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return dict(yaml_parse(TEMPLATE.read_text()))


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return expand()


def parameters_read_by(node: Any, template: dict[str, Any]) -> set[str]:
    """The parameters ``node`` depends on: its Refs, its !Sub names, and the conditions its !If use."""
    if isinstance(node, list):
        return set().union(*(parameters_read_by(item, template) for item in node))
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key == "Ref" and value in template["Parameters"]:
            found.add(value)
        elif key in ("Fn::If", "Condition"):
            condition = value[0] if key == "Fn::If" else value
            found |= parameters_read_by(template["Conditions"][condition], template)
        found |= parameters_read_by(value, template)
    return found


def test_the_api_calls_the_alias_whose_version_the_deployment_published(stack):
    body = json.dumps(only(stack, "AWS::ApiGateway::RestApi")["Body"])
    # /guest-tokens' POST and ANY, /authenticated-sessions' POST and ANY, /authenticated-sessions/refresh's ANY and
    # the catch-all route
    assert body.count("${GuestTokenFunctionAliaslive}/invocations") == 6
    assert "${GuestTokenFunction.Arn}/invocations" not in body
    [alias] = resources_of_type(stack, "AWS::Lambda::Alias").values()
    [(version_name, version)] = resources_of_type(stack, "AWS::Lambda::Version").items()
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_name, "Version"]}
    # The version the alias left goes once it has moved, rather than piling up (code storage, SnapStart's cache).
    assert version["DeletionPolicy"] == "Delete"
    # API Gateway may invoke the alias and nothing else.
    for permission in resources_of_type(stack, "AWS::Lambda::Permission").values():
        assert permission["Properties"]["FunctionName"] == {"Ref": "GuestTokenFunctionAliaslive"}
    # The description is what changes with a parameter's value; CloudFormation replaces a version whose
    # description changes, and Lambda publishes the function's configuration as it is then.
    assert version["Properties"]["Description"] == {"Fn::Sub": "Configuration ${ConfigurationRevision.Digest}"}


def test_the_revision_names_every_parameter_the_functions_configuration_reads(source):
    function = source["Resources"]["GuestTokenFunction"]["Properties"]
    in_a_version = {key: value for key, value in function.items() if key not in NOT_IN_A_VERSION}
    revision = source["Resources"]["ConfigurationRevision"]["Properties"]
    assert revision["Parameters"] == {name: {"Ref": name} for name in parameters_read_by(in_a_version, source)}
    assert revision["Layers"] == function["Layers"]  # a layer's new content is a new layer version
    # Provisioned concurrency is the alias's: changing it must not ask Lambda for a version it already has.
    assert "ProvisionedConcurrency" not in revision["Parameters"]


def test_snapstart_and_provisioned_concurrency_are_parameters_and_never_together(stack):
    parameters = stack["Parameters"]
    assert parameters["EnableSnapStart"]["Default"] == "false"
    assert parameters["ProvisionedConcurrency"]["Default"] == "0"
    # Whole numbers only, so that "not 0" means some containers: 00, 2.5 or 1e2 would reach Lambda and fail late.
    pattern = re.compile(parameters["ProvisionedConcurrency"]["AllowedPattern"])
    assert [
        value for value in ("0", "1", "999", "00", "01", "2.5", "1e2", "-1", "1000", "") if pattern.fullmatch(value)
    ] == [
        "0",
        "1",
        "999",
    ]
    for chosen, snapstart in (({}, "None"), ({"EnableSnapStart": "true"}, "PublishedVersions")):
        function = resolved(guest_token_function(stack), stack, chosen)
        assert function["SnapStart"] == {"ApplyOn": snapstart}
    [alias] = resources_of_type(stack, "AWS::Lambda::Alias").values()
    assert "ProvisionedConcurrencyConfig" not in resolved(alias["Properties"], stack, {})
    config = resolved(alias["Properties"], stack, {"ProvisionedConcurrency": "3"})["ProvisionedConcurrencyConfig"]
    assert config == {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}}
    # Lambda refuses SnapStart with provisioned concurrency; the rule says so before anything is created.
    rule = stack["Rules"]["SnapStartOrProvisionedConcurrency"]
    for snapstart, provisioned, accepted in (("true", "0", True), ("true", "2", False), ("false", "2", True)):
        chosen = {"EnableSnapStart": snapstart, "ProvisionedConcurrency": provisioned}
        applies = evaluate(rule["RuleCondition"], stack, chosen)
        holds = all(evaluate(assertion["Assert"], stack, chosen) for assertion in rule["Assertions"])
        assert (not applies or holds) == accepted


def test_the_digest_function_may_only_write_its_own_log(stack):
    function = stack["Resources"]["ConfigurationRevisionFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["ConfigurationRevisionFunctionRole", "Arn"]}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "ConfigurationRevisionFunctionLogGroup"}}
    role = stack["Resources"]["ConfigurationRevisionFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    [policy] = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": ["ConfigurationRevisionFunctionLogGroup", "Arn"]},
        }
    ]


class CloudFormationResponses(http.server.BaseHTTPRequestHandler):
    """Stands in for the presigned S3 URL a custom resource answers CloudFormation on."""

    received: list[dict[str, Any]]

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (CloudFormationResponses,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response", received
    server.shutdown()


@pytest.fixture(scope="module")
def revision_function(source: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The template's inline code, as Lambda runs it (index.handler, with cfnresponse beside it)."""
    properties = source["Resources"]["ConfigurationRevisionFunction"]["Properties"]
    assert properties["Handler"] == "index.handler"
    path = Path(tmp_path_factory.mktemp("revision")) / "index.py"
    path.write_text(properties["InlineCode"])
    spec = importlib.util.spec_from_file_location("configuration_revision_index", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def answer(handler: Any, response_url: tuple[str, list[dict[str, Any]]], properties: Any, kind: str = "Update"):
    url, received = response_url
    received.clear()
    event = {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/guest-token/1",
        "RequestId": "request-1",
        "LogicalResourceId": "ConfigurationRevision",
        "ResourceType": "Custom::ConfigurationRevision",
        "ResourceProperties": properties,
    }
    handler(event, SimpleNamespace(log_stream_name="2026/11/30/[$LATEST]stream"))
    [response] = received
    return response


def deployed_revision(stack: dict[str, Any], chosen: dict[str, str]) -> dict[str, Any]:
    """ConfigurationRevision's properties as CloudFormation sends them with ``chosen`` parameter values."""
    properties = resolved(stack["Resources"]["ConfigurationRevision"]["Properties"], stack, chosen)
    properties["Parameters"] = {name: evaluate(ref, stack, chosen) for name, ref in properties["Parameters"].items()}
    properties["ServiceToken"] = "arn:aws:lambda:eu-west-1:123456789012:function:revision"
    return dict(properties)


def test_a_new_value_of_any_parameter_the_function_reads_gives_a_new_digest(stack, revision_function, response_url):
    defaults = answer(revision_function, response_url, deployed_revision(stack, {}))
    assert defaults["Status"] == "SUCCESS"
    assert defaults["PhysicalResourceId"] == "configuration-revision"
    digest = defaults["Data"]["Digest"]
    assert len(digest) == 16  # "Configuration " and 16 characters: far inside a version description's 256
    # The same values in another order: the same digest, so a redeployment without changes publishes nothing.
    shuffled = deployed_revision(stack, {})
    shuffled["Parameters"] = dict(reversed(shuffled["Parameters"].items()))
    assert answer(revision_function, response_url, shuffled)["Data"]["Digest"] == digest
    other = {"AllowedOrigins": "https://support.example.com", "EnableSnapStart": "true", "LogLevel": "DEBUG"}
    for name in stack["Resources"]["ConfigurationRevision"]["Properties"]["Parameters"]:
        chosen = {name: other.get(name, "a-value-no-default-has")}
        changed = answer(revision_function, response_url, deployed_revision(stack, chosen))
        assert changed["Data"]["Digest"] != digest, f"a new {name} would publish no version"
    # Signature checks attach one more layer: a new layer list, a new digest.
    signatures = deployed_revision(stack, {"GenesysJwksUrl": "https://login.example.com/jwks"})
    signatures["Parameters"] = deployed_revision(stack, {})["Parameters"]
    assert answer(revision_function, response_url, signatures)["Data"]["Digest"] != digest


def test_cloudformation_always_gets_an_answer(stack, revision_function, response_url):
    # Deleting the stack: nothing to undo, but an unanswered request would hold CloudFormation for an hour.
    deleted = answer(revision_function, response_url, deployed_revision(stack, {}), kind="Delete")
    assert deleted["Status"] == "SUCCESS"
    # Properties it cannot read: a failure CloudFormation reports at once, with the reason.
    broken = answer(revision_function, response_url, None)
    assert broken["Status"] == "FAILED"
    assert broken["Reason"]
