"""The template's observability: the dashboard reads only metrics the code records, the alarms watch what
docs/operations.md says, token events may go to one bus only when one is set, and tracing follows one parameter."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.template.cloudformation import evaluate, expand

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
# Signed-in customers' metrics are documented on their own page, in the same table format.
SIGNED_IN = (REPO / "docs" / "signed-in.md").read_text()
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text()
ALARMS = ("SuccessRateAlarm", "LatencyAlarm", "ServerErrorAlarm", "RateLimitedAlarm")
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
# The AWS metrics the dashboard may show, with the dimension each is read by.
AWS_METRICS = {
    "AWS/ApiGateway": ({"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"}, ("ApiName", "Stage")),
    "AWS/Lambda": ({"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}, ("FunctionName",)),
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(yaml_parse((REPO / "template.yaml").read_text()))


@pytest.fixture(scope="module")
def resources(template) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="module")
def function_env(resources) -> dict[str, Any]:
    return dict(resources["GuestTokenFunction"]["Properties"]["Environment"]["Variables"])


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    """The template as CloudFormation gets it from the SAM transform (no AWS account needed)."""
    return expand()


def documented_metrics() -> dict[str, list[list[str]]]:
    rows = re.findall(r"^\| `(\w+)` \| `[\w/]+` \| ((?:`\[[\w, ]*\]` ?)+) \|", OPERATIONS + SIGNED_IN, re.MULTILINE)
    return {name: [group.split(", ") for group in re.findall(r"`\[([\w, ]*)\]`", sets)] for name, sets in rows}


def substituted(value: Any) -> str:
    """A string or Fn::Sub as the dashboard fixture renders it: each ${name} becomes <name>."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return re.sub(r"\$\{([\w:.]+)\}", r"<\1>", text)


def filtered_metrics(resources: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """The metrics the template's metric filters record from logs (namespace, name): their dimension names."""
    return {
        (substituted(transformation["MetricNamespace"]), transformation["MetricName"]): sorted(
            dimension["Key"] for dimension in transformation.get("Dimensions", [])
        )
        for resource in resources.values()
        if resource["Type"] == "AWS::Logs::MetricFilter"
        for transformation in resource["Properties"]["MetricTransformations"]
    }


def is_true(name: str, template: dict[str, Any], **parameters: str) -> bool:
    return bool(evaluate(template["Conditions"][name], template, parameters))


# ---- the dashboard ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(template, resources) -> dict[str, Any]:
    """The dashboard body with each ${...} replaced as CloudFormation would, by a value of the right type."""
    body, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    known = {*template["Parameters"], *resources, *variables, *PSEUDO_PARAMETERS}
    numbers = {name for name, parameter in template["Parameters"].items() if parameter["Type"] == "Number"}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name.split(".")[0] in known, f"${{{name}}} names nothing in the template"
        if name in variables:
            return str(variables[name])
        return "1" if name in numbers else f"<{name}>"

    return dict(json.loads(re.sub(r"\$\{([\w:.]+)\}", substitute, body)))


def metric_lines(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [line for widget in dashboard["widgets"] for line in widget["properties"].get("metrics", [])]


def test_the_dashboard_body_is_json_and_its_widgets_fit_the_grid(dashboard):
    assert dashboard["widgets"]
    for widget in dashboard["widgets"]:
        assert widget["type"] in {"metric", "text", "alarm", "log"}
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24


def test_every_metric_on_the_dashboard_is_one_the_code_or_a_metric_filter_records(dashboard, function_env, resources):
    documented = documented_metrics()
    from_logs = filtered_metrics(resources)
    namespace, service = function_env["POWERTOOLS_METRICS_NAMESPACE"], function_env["POWERTOOLS_SERVICE_NAME"]
    shown, shown_from_logs = set(), set()
    for line in metric_lines(dashboard):
        if isinstance(line[0], dict):  # a metric math expression
            continue
        options = line[-1] if isinstance(line[-1], dict) else {}
        metric = line[: len(line) - 1] if options else line
        source, name, dimensions = metric[0], metric[1], dict(zip(metric[2::2], metric[3::2], strict=True))
        if source.startswith("AWS/"):
            names, keys = AWS_METRICS[source]
            assert name in names and tuple(dimensions) == keys, line
            continue
        if (source, name) in from_logs:  # counted by a metric filter from a log group of this stack
            assert sorted(dimensions) == from_logs[source, name], line
            shown_from_logs.add((source, name))
            continue
        assert source == namespace, line
        assert name in documented, f"{name} is not a metric the code records"
        assert sorted(dimensions) in [sorted(keys) for keys in documented[name]], line
        assert dimensions["service"] == service
        if "function_name" in dimensions:
            assert dimensions["function_name"] == "<GuestTokenFunction>"  # what Lambda's context reports
        shown.add(name)
    # Every metric the service records, and every metric its metric filters count, has a place on the dashboard.
    assert shown == set(documented)
    assert shown_from_logs == set(from_logs)


def test_errors_by_code_search_the_failure_count_by_its_error_code(dashboard, function_env):
    [search] = [line[0]["expression"] for line in metric_lines(dashboard) if "SEARCH" in str(line[0])]
    namespace, service = function_env["POWERTOOLS_METRICS_NAMESPACE"], function_env["POWERTOOLS_SERVICE_NAME"]
    assert f"{{{namespace},errorCode,service}}" in search
    assert 'MetricName="TokenRequestsFailed"' in search and f'service="{service}"' in search
    assert ["service", "errorCode"] in documented_metrics()["TokenRequestsFailed"]


def test_the_dashboard_shows_every_alarm_and_reads_the_functions_logs(dashboard, resources):
    [alarms] = [widget for widget in dashboard["widgets"] if widget["type"] == "alarm"]
    assert alarms["properties"]["alarms"] == [f"<{name}.Arn>" for name in ALARMS]
    queries = [widget["properties"]["query"] for widget in dashboard["widgets"] if widget["type"] == "log"]
    assert queries and all(query.startswith("SOURCE '<GuestTokenFunctionLogGroup>' |") for query in queries)
    assert resources["GuestTokenFunctionLogGroup"]["Type"] == "AWS::Logs::LogGroup"


def test_api_gateway_metrics_name_the_api_as_sam_does(dashboard, expanded, template):
    # REST API metrics are keyed by the API's name, which SAM takes from the stack name.
    rest_api = expanded["Resources"]["GuestTokenApi"]["Properties"]
    assert "Name" not in rest_api and rest_api["Body"]["info"]["title"] == {"Ref": "AWS::StackName"}
    stage = template["Resources"]["GuestTokenApi"]["Properties"]["StageName"]
    for line in metric_lines(dashboard):
        if line[0] == "AWS/ApiGateway":
            assert line[2:6] == ["ApiName", "<AWS::StackName>", "Stage", stage]


# ---- alarms -------------------------------------------------------------------------------------------


def alarm(resources, name: str) -> dict[str, Any]:
    return dict(resources[name]["Properties"])


def test_the_success_rate_alarm_is_the_average_of_the_success_metric_in_percent(resources, template, function_env):
    properties = alarm(resources, "SuccessRateAlarm")
    rate, success = properties["Metrics"]
    assert rate["Expression"] == f"100 * {success['Id']}" and rate["ReturnData"] is True
    stat = success["MetricStat"]
    assert stat["Metric"]["MetricName"] == "TokenRequestSuccess" and stat["Stat"] == "Average"
    assert stat["Metric"]["Namespace"] == function_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": function_env["POWERTOOLS_SERVICE_NAME"]}]
    assert (stat["Period"], properties["EvaluationPeriods"]) == (300, 1)  # 5 minutes
    assert properties["ComparisonOperator"] == "LessThanThreshold"
    assert properties["Threshold"] == {"Ref": "SuccessRateAlarmThreshold"}
    assert template["Parameters"]["SuccessRateAlarmThreshold"]["Default"] == 99


def test_the_latency_alarm_watches_the_p99_of_handler_latency(resources, template, function_env):
    properties = alarm(resources, "LatencyAlarm")
    assert (properties["MetricName"], properties["ExtendedStatistic"]) == ("HandlerLatency", "p99")
    assert properties["Namespace"] == function_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert properties["Dimensions"] == [{"Name": "service", "Value": function_env["POWERTOOLS_SERVICE_NAME"]}]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == {"Ref": "LatencyAlarmThresholdMs"}
    assert "HandlerLatency" in documented_metrics()


def test_the_server_error_alarm_counts_api_gateway_5xx_per_minute(resources, template):
    properties = alarm(resources, "ServerErrorAlarm")
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    stage = template["Resources"]["GuestTokenApi"]["Properties"]["StageName"]
    assert properties["Dimensions"] == [
        {"Name": "ApiName", "Value": {"Ref": "AWS::StackName"}},
        {"Name": "Stage", "Value": stage},
    ]
    assert (properties["Statistic"], properties["Period"]) == ("Sum", 60)
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_the_rate_limited_alarm_counts_the_429_lines_of_the_stage_access_log(resources, template):
    # A REST API has no throttling metric, and 4XXError mixes 429s with every caller's mistakes.
    [metric_filter] = [resource for resource in resources.values() if resource["Type"] == "AWS::Logs::MetricFilter"]
    access_log = resources["GuestTokenApi"]["Properties"]["AccessLogSetting"]
    assert access_log["DestinationArn"] == {"Fn::GetAtt": ["GuestTokenApiAccessLogGroup", "Arn"]}
    assert metric_filter["Properties"]["LogGroupName"] == {"Ref": "GuestTokenApiAccessLogGroup"}
    # The filter matches a 429 line of the access log as its format writes it (status is a quoted string).
    field, value = re.fullmatch(r'\{ \$\.(\w+) = "(\d+)" \}', metric_filter["Properties"]["FilterPattern"]).groups()
    line_format = json.loads(access_log["Format"])
    assert (field, value) == ("status", "429") and line_format[field] == "$context.status"
    [transformation] = metric_filter["Properties"]["MetricTransformations"]
    assert (transformation["MetricValue"], transformation["Unit"]) == ("1", "Count")
    # One stack's count: the namespace names the stack (a metric filter cannot set a constant dimension).
    assert "${AWS::StackName}" in transformation["MetricNamespace"]["Fn::Sub"]

    properties = alarm(resources, "RateLimitedAlarm")
    assert properties["Namespace"] == transformation["MetricNamespace"]
    assert properties["MetricName"] == transformation["MetricName"]
    assert "Dimensions" not in properties
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Sum", 60, 1)
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["Threshold"] == {"Ref": "RateLimitedAlarmThreshold"}
    assert template["Parameters"]["RateLimitedAlarmThreshold"]["Default"] == 60
    row = [line.strip() for line in OPERATIONS.splitlines() if line.strip().startswith("| `RateLimitedAlarm` |")]
    assert row and "`RateLimitedAlarmThreshold` (`60`)" in row[0], "the alarms table of docs/operations.md misses it"


@pytest.mark.parametrize("name", ALARMS)
def test_every_alarm_notifies_the_optional_topics_and_ignores_quiet_periods(resources, name):
    properties = alarm(resources, name)
    assert properties["TreatMissingData"] == "notBreaching"
    topics = [
        {"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]},
        {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
    ]
    assert properties["AlarmActions"] == properties["OKActions"] == topics


def test_the_alarm_topic_exists_only_with_an_email(resources, template):
    topic = resources["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert not is_true("HasAlarmEmail", template) and not is_true("HasAlarmTopicArn", template)
    assert is_true("HasAlarmEmail", template, AlarmEmail="ops@example.com")
    assert is_true("HasAlarmTopicArn", template, AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops")


# ---- token events and tracing ---------------------------------------------------------------------------


def test_put_events_is_allowed_on_the_one_bus_and_only_when_it_is_set(resources, template, expanded, function_env):
    policy = resources["TokenEventsPublishPolicy"]
    assert policy["Condition"] == "HasTokenEventsBus"
    assert not is_true("HasTokenEventsBus", template)
    assert is_true("HasTokenEventsBus", template, TokenEventsBusName="guest-sync")
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${TokenEventsBusName}"
        },
    }
    # Attached to the role SAM creates for the function, and the function publishes to that same bus.
    assert policy["Properties"]["Roles"] == [{"Ref": "GuestTokenFunctionRole"}]
    assert expanded["Resources"]["GuestTokenFunctionRole"]["Type"] == "AWS::IAM::Role"
    assert function_env["TOKEN_EVENTS_BUS_NAME"] == {"Ref": "TokenEventsBusName"}


def test_one_parameter_turns_tracing_on_for_the_api_the_function_and_the_tracer(resources, template, function_env):
    assert template["Parameters"]["Tracing"]["Default"] == "Active"
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert resources["GuestTokenFunction"]["Properties"]["Tracing"] == {"Ref": "Tracing"}
    assert resources["GuestTokenApi"]["Properties"]["TracingEnabled"] == {"Fn::If": ["TracingActive", True, False]}
    assert function_env["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingActive", "false", "true"]}
    # A traced return value may hold a token: Powertools must never record one.
    assert function_env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_the_dashboard_url_is_an_output(template):
    assert "#dashboards:name=${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_every_parameter_is_documented_with_its_default(template):
    table = CONFIGURATION[CONFIGURATION.index("## Settings") :].split("\n## ", 1)[0]
    for name, parameter in template["Parameters"].items():
        [row] = [line for line in table.splitlines() if line.startswith("|") and f"`{name}`" in line.split("|")[1]]
        default = parameter.get("Default")
        if default is None:
            assert "(required)" in row, name
        elif default == "":
            assert "empty" in row.split("|")[2], name
        elif "," not in str(default):  # a list default is described in words
            assert f"`{default}`" in row.split("|")[2], name
