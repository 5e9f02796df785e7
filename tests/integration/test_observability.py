"""What an operator sees of each request: the EMF metrics, checked against the CloudWatch embedded metric
format specification for every outcome of docs/api.md's error table, and the audit entries, checked against
the schema and the Logs Insights queries docs/operations.md documents."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag
from guest_token import settings
from guest_token.observability import UPSTREAM_LATENCY, guest_ref

from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_DEPLOYMENT_ID
from tests.conftest import ORIGIN

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
NAMESPACE = "GenesysGuestTokens"
SERVICE = "genesys-guest-token"
GUEST = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"

# ---- the EMF specification ------------------------------------------------------------------------------
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
# The document structure as a JSON Schema; what a schema cannot say (names refer to root members, and what
# those members hold) is checked by assert_emf.
UNITS = [
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
    *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second"),
    *("Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second"),
    *("Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"),
]
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "additionalProperties": False,
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "additionalProperties": False,
                        "properties": {
                            "Namespace": _NAME,
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "maxItems": 30, "items": _NAME},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "Name": _NAME,
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def assert_emf(document: dict[str, Any]) -> None:
    jsonschema.validate(document, EMF_SCHEMA)
    now_ms = time.time() * 1000
    # CloudWatch drops metrics stamped more than 14 days in the past or 2 hours in the future.
    assert now_ms - 14 * 86400_000 < document["_aws"]["Timestamp"] < now_ms + 2 * 3600_000
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                assert isinstance(document.get(key), str), f"dimension target {key} must be a root string member"
                assert 1 <= len(document[key]) <= 1024
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100, f"metric target {metric['Name']} must hold 1 to 100 values"
            assert all(is_number(item) for item in values), f"metric target {metric['Name']} must be numeric"


# ---- what one answer recorded ----------------------------------------------------------------------------


@dataclass
class Metric:
    unit: str
    dimension_sets: list[list[str]]
    dimensions: dict[str, str]
    values: list[float] = field(default_factory=list)


def recorded(answer: Any) -> tuple[dict[str, Metric], list[dict[str, Any]]]:
    """The application metrics of one invocation (ColdStart aside) and each EMF document's metadata members."""
    metrics: dict[str, Metric] = {}
    metadata = []
    for document in answer.metrics:
        assert_emf(document)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        names = [metric["Name"] for metric in directive["Metrics"]]
        if names == ["ColdStart"]:
            continue
        assert directive["Namespace"] == NAMESPACE
        dimension_keys = {key for dimension_set in directive["Dimensions"] for key in dimension_set}
        metadata.append({key: v for key, v in document.items() if key not in {"_aws", *names, *dimension_keys}})
        for metric in directive["Metrics"]:
            assert metric["Name"] not in metrics, f"{metric['Name']} is recorded in two documents"
            value = document[metric["Name"]]
            metrics[metric["Name"]] = Metric(
                unit=metric["Unit"],
                dimension_sets=directive["Dimensions"],
                dimensions={key: document[key] for key in dimension_keys},
                values=value if isinstance(value, list) else [value],
            )
    return metrics, metadata


MS = "ms"  # a latency: any non-negative number of milliseconds
UPSTREAM_FAILED = {"OAuthTokenFetched": [1], "GenesysOAuthLatency": [MS], "TokenRequestSuccess": [0]}
CALLER_MISTAKE = {"HandlerLatency": [MS], "TokenRequestsFailed": [1]}


def genesys_keeps_failing(status: int, **fault: Any):
    return lambda emulator, env: emulator.add_fault("guest-token", status=status, times=None, **fault)


def nothing(emulator, env):
    pass


# One row per row of docs/api.md's error table: how to cause it, and the metrics it must record.
OUTCOMES = [
    pytest.param(
        nothing,
        {"body": {}},
        200,
        None,
        {
            "HandlerLatency": [MS],
            "TokensIssued": [1],
            "TokenRequestSuccess": [1],
            "OAuthTokenFetched": [1],
            "GenesysOAuthLatency": [MS],
            "GenesysGuestTokenLatency": [MS],
        },
        id="200",
    ),
    pytest.param(nothing, {"raw": "{"}, 400, "invalid_json", CALLER_MISTAKE, id="400"),
    pytest.param(nothing, {"body": {"duration": "forever"}}, 422, "invalid_request", CALLER_MISTAKE, id="422"),
    pytest.param(
        nothing, {"body": {}, "origin": "https://evil.example"}, 403, "origin_not_allowed", CALLER_MISTAKE, id="403"
    ),
    pytest.param(nothing, {"method": "GET", "path": "/tokens"}, 404, "not_found", {}, id="404"),
    pytest.param(nothing, {"method": "GET"}, 405, "method_not_allowed", {}, id="405"),
    pytest.param(
        genesys_keeps_failing(429, retry_after=0),
        {"body": {}},
        429,
        "rate_limited",
        {
            **UPSTREAM_FAILED,
            **CALLER_MISTAKE,
            "GenesysGuestTokenLatency": [MS, MS, MS],
            "GenesysRetries": [1, 1],
        },
        id="429",
    ),
    pytest.param(
        genesys_keeps_failing(403),
        {"body": {}},
        502,
        "upstream_error",
        {**UPSTREAM_FAILED, **CALLER_MISTAKE, "GenesysGuestTokenLatency": [MS]},
        id="502",
    ),
    pytest.param(
        genesys_keeps_failing(503),
        {"body": {}},
        503,
        "upstream_unavailable",
        {**UPSTREAM_FAILED, **CALLER_MISTAKE, "GenesysGuestTokenLatency": [MS, MS, MS], "GenesysRetries": [1, 1]},
        id="503",
    ),
    pytest.param(
        lambda emulator, env: emulator.add_fault("guest-token", delay=3),
        {"body": {}, "timeout_seconds": 1.5},
        504,
        "upstream_timeout",
        {**UPSTREAM_FAILED, **CALLER_MISTAKE, "GenesysGuestTokenLatency": [MS]},
        id="504",
    ),
    pytest.param(
        lambda emulator, env: env.setenv("GENESYS_CREDENTIALS_SECRET_ID", "no-such-secret"),
        {"body": {}},
        500,
        "internal_error",
        {**CALLER_MISTAKE, "TokenRequestSuccess": [0]},
        id="500",
    ),
]


def invoke_as(invoke, request: dict[str, Any]):
    request = dict(request)
    return invoke(request.pop("body", None), **request)


@pytest.mark.parametrize(("cause", "request_", "status", "code", "expected"), OUTCOMES)
def test_every_outcome_records_metrics_as_the_emf_specification_requires(
    invoke, emulator, env, cause, request_, status, code, expected
):
    cause(emulator, env)
    answer = invoke_as(invoke, request_)
    assert answer.status == status
    if code:
        assert answer.error_code == code

    metrics, metadata = recorded(answer)
    assert {name: len(metric.values) for name, metric in metrics.items()} == {
        name: len(values) for name, values in expected.items()
    }
    for name, values in expected.items():
        metric = metrics[name]
        for value, wanted in zip(metric.values, values, strict=True):
            assert value >= 0 if wanted == MS else value == wanted, f"{name}: {metric.values}"
        assert metric.unit == ("Milliseconds" if MS in values else "Count"), name
        if name == "TokenRequestsFailed":
            # The total, and one per error code: the code is the dimension, so it must be the answer's.
            assert metric.dimension_sets == [["service"], ["service", "errorCode"]]
            assert metric.dimensions == {"service": SERVICE, "errorCode": code}
        else:
            assert metric.dimension_sets == [["service"]]
            assert metric.dimensions == {"service": SERVICE}

    # Request and guest ids are metadata, never dimensions.
    request_id = answer.logs[0]["correlation_id"] if status == 200 else answer.json["error"]["requestId"]
    known_guest = [line["guestRef"] for line in answer.logs if "guestRef" in line]
    for members in metadata:
        assert members == {"requestId": request_id, **({"guestRef": known_guest[0]} if known_guest else {})}
    if status == 200:
        assert known_guest == [guest_ref(answer.json["guestId"])] * len(known_guest)
    # The id itself is a bearer value: it is never metadata, nor in any log line.
    if status == 200:
        assert answer.json["guestId"] not in json.dumps(answer.logs) + json.dumps(answer.metrics)


def test_the_success_rate_is_the_average_of_the_success_metric(invoke, emulator):
    outcomes = [invoke({}), invoke({"duration": "forever"})]
    emulator.add_fault("guest-token", status=503, times=None)
    outcomes += [invoke({}), invoke(raw="x")]
    emulator.reset()
    outcomes.append(invoke({}))

    samples = [
        value
        for answer in outcomes
        for value in recorded(answer)[0].get("TokenRequestSuccess", Metric("", [], {})).values
    ]
    # Two issued and one 503: the caller's two mistakes are not in the rate.
    assert sorted(samples) == [0, 1, 1]
    assert sum(samples) / len(samples) == pytest.approx(2 / 3)


def test_a_warm_container_serves_the_access_token_from_its_cache(invoke):
    invoke({})
    warm, _ = recorded(invoke({}))
    assert warm["OAuthCacheHit"].values == [1]
    assert "OAuthTokenFetched" not in warm and "GenesysOAuthLatency" not in warm


def test_a_cold_start_is_counted_once_per_container_with_the_function_name(invoke):
    reset_cold_start_flag()  # as a new container: Powertools counts the first invocation of the process
    first, second = invoke({}), invoke({})
    [cold] = [document for document in first.metrics if "ColdStart" in document]
    assert_emf(cold)
    assert cold["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["function_name", "service"]],
            "Metrics": [{"Name": "ColdStart", "Unit": "Count"}],
        }
    ]
    assert (cold["function_name"], cold["service"], cold["ColdStart"]) == ("GuestTokenFunction", SERVICE, [1.0])
    assert not [document for document in second.metrics if "ColdStart" in document]


# ---- the metrics table of docs/operations.md ------------------------------------------------------------

METRIC_ROW = re.compile(r"^\| `(\w+)` \| `([\w/]+)` \| ((?:`\[[\w, ]*\]` ?)+) \|", re.MULTILINE)


def documented_metrics() -> dict[str, tuple[str, list[list[str]]]]:
    return {
        name: (unit, [re.split(r", ", group) for group in re.findall(r"`\[([\w, ]*)\]`", sets)])
        for name, unit, sets in METRIC_ROW.findall(OPERATIONS)
    }


def redeploy(env, **variables: str) -> None:
    """New configuration, as after a deployment: the settings are read again (the caches stay warm)."""
    for name, value in variables.items():
        env.setenv(name, value)
    settings.reset()


def test_every_metric_is_documented_exactly_as_recorded(invoke, emulator, env, event_bus):
    reset_cold_start_flag()
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    answers = [invoke({}), invoke({})]  # a cold start, an access token fetched, then one from the cache
    redeploy(env, TOKEN_EVENTS_BUS_NAME="no-such-bus")
    answers.append(invoke({}))
    emulator.add_fault("guest-token", status=503, times=None)
    answers.append(invoke({}))
    redeploy(env, **webmessaging_settings(emulator))
    answers.append(invoke({}))

    seen: dict[str, tuple[str, list[list[str]]]] = {}
    for answer in answers:
        for document in answer.metrics:
            assert_emf(document)
            [directive] = document["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]:
                seen[metric["Name"]] = (metric["Unit"], directive["Dimensions"])
    assert seen == documented_metrics()


# ---- the audit trail ----------------------------------------------------------------------------------

# Powertools' keys on every line, and ours on every line of a request (docs/operations.md lists them all).
COMMON_KEYS = {
    *("level", "message", "timestamp", "service", "cold_start", "function_name"),
    *("function_memory_size", "function_arn", "function_request_id", "correlation_id", "guestRef", "event"),
}
AUDIT_ROW = re.compile(r"^\| `(\w+)` \| ([A-Z][A-Z, a-z0-9]*) \| [^|]+ \| ([^|]+) \|$", re.MULTILINE)


def documented_audit() -> dict[str, tuple[set[str], set[str]]]:
    """Each documented event: its levels and its fields (backticked words outside parentheses)."""
    rows = {}
    for event, levels, fields in AUDIT_ROW.findall(OPERATIONS):
        rows[event] = (
            set(re.findall(r"[A-Z]{4,}", levels)),
            set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", fields))),
        )
    return rows


def test_the_audit_trail_lists_the_common_keys():
    section = OPERATIONS[OPERATIONS.index("## Audit trail") : OPERATIONS.index("## Metrics")]
    for key in COMMON_KEYS | {"xray_trace_id"}:
        assert f"`{key}`" in section


def audit_trail_scenarios(invoke, emulator, env, secrets_manager, event_bus) -> list[Any]:
    """Requests that between them write every kind of audit entry a test can cause."""
    env.setenv("TOKEN_EVENTS_BUS_NAME", event_bus)
    answers = [invoke({"guestId": GUEST, "duration": "short"}), invoke(method="OPTIONS", origin="https://evil.example")]
    emulator.revoke_access_tokens()
    answers.append(invoke({}))
    emulator.set_client(DEMO_CLIENT_ID, "rotated")
    secrets_manager.put_secret_value(
        SecretId="genesys-guest-token/test",
        SecretString=json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": "rotated"}),
    )
    emulator.revoke_access_tokens()
    redeploy(env, TOKEN_EVENTS_BUS_NAME="no-such-bus")
    answers.append(invoke({}))
    emulator.add_fault("guest-token", status=500)
    emulator.add_fault("guest-token", status=429, retry_after=30)
    # Time enough for the 500's retry however busy the machine, and still less than the 30 s asked for.
    answers += [invoke({"guestId": GUEST}, timeout_seconds=20), invoke(raw="[]")]
    # The webmessaging source: a session whose conversation ended, and one that expired.
    redeploy(env, **webmessaging_settings(emulator))
    answers.append(invoke({}))
    emulator.end_conversation(answers[-1].json["guestId"])
    answers.append(invoke({"guestId": answers[-1].json["guestId"]}))
    emulator.expire_session(answers[-1].json["guestId"])
    answers.append(invoke({"guestId": answers[-1].json["guestId"]}))
    return answers


def webmessaging_settings(emulator) -> dict[str, str]:
    return {
        "GUEST_TOKEN_SOURCE": "webmessaging",
        "GENESYS_DEPLOYMENT_ID": DEMO_DEPLOYMENT_ID,
        "GENESYS_WEBMESSAGING_BASE_URL": emulator.webmessaging_url,
    }


def test_audit_entries_follow_the_documented_schema(invoke, emulator, env, secrets_manager, event_bus):
    answers = audit_trail_scenarios(invoke, emulator, env, secrets_manager, event_bus)
    schema = documented_audit()
    seen = set()
    for line in (line for answer in answers for line in answer.logs):
        assert COMMON_KEYS - {"guestRef", "event"} <= set(line)
        event = line.get("event")
        assert event in schema, f"undocumented log line {line}"
        levels, fields = schema[event]
        assert line["level"] in levels, line
        own = set(line) - (COMMON_KEYS - fields)
        assert own <= fields, f"{event} has undocumented fields"
        seen.add(event)
        if event == "token_issued":
            # Everything is known once a token is issued, but for what the other source records.
            source_specific = {"newSession"} if "duration" in own else {"duration", "scopes"}
            assert own == fields - source_specific, line
        if event == "token_failed" and line["errorCode"] == "rate_limited":
            assert fields - {"newSession", "calls"} <= own
    # Only a bug writes unhandled_error; configuration_invalid is written at import, outside any request; a
    # DEBUG entry needs LogLevel DEBUG.
    debug_only = {event for event, (levels, _) in schema.items() if levels == {"DEBUG"}}
    assert seen == set(schema) - {"unhandled_error", "configuration_invalid"} - debug_only


def test_one_filter_on_the_guest_reference_shows_that_guests_whole_trail(invoke, emulator):
    other = invoke({})
    emulator.add_fault("guest-token", status=503)
    first = invoke({"guestId": GUEST})
    second = invoke({"guestId": GUEST.upper()}, origin="https://other.example.com")
    lines = other.logs + first.logs + second.logs

    assert GUEST not in json.dumps(lines)  # the id is a bearer value: only its reference is logged
    trail = [line for line in lines if line.get("guestRef") == guest_ref(GUEST)]
    assert [line["event"] for line in trail] == [
        *("genesys_call", "genesys_call", "token_issued"),  # a 503, then the token
        "token_issued",  # one attempt that succeeded: the token line says it all
    ]
    assert [line["origin"] for line in trail if line["event"] == "token_issued"] == [
        ORIGIN,
        "https://other.example.com",
    ]
    assert len({line["correlation_id"] for line in trail}) == 2
    # A request whose body cannot be read does not inherit the previous request's guest.
    unread = invoke(raw="{")
    assert "guestRef" not in unread.events("token_failed")[0]


def test_every_field_the_documented_queries_name_is_in_the_logs(invoke, emulator, env, secrets_manager, event_bus):
    answers = audit_trail_scenarios(invoke, emulator, env, secrets_manager, event_bus)
    keys = {key for answer in answers for line in answer.logs for key in line}
    queries = re.findall(r"```text\n(.*?)```", OPERATIONS, re.DOTALL)
    assert len(queries) == 3
    for query in queries:
        named = set()
        for clause in re.findall(r"(?:^fields|\bby) ([\w@, ]+)", query, re.MULTILINE):
            named |= {name.strip() for name in clause.split(",")}
        named |= set(re.findall(r"filter (\w+) =", query))
        assert {name for name in named if not name.startswith("@")} <= keys, query


def test_the_documented_guest_ref_recipe_gives_the_logged_reference():
    # The operator's recipe, as a shell runs it on macOS or Linux, for a guest id in capitals (ids are any case).
    [recipe] = re.findall(r"^ *(printf %s \"\$id\" \| python3 .*)$", OPERATIONS, re.MULTILINE)
    guest = GUEST.upper()
    result = subprocess.run(
        ["sh", "-c", recipe], env={**os.environ, "id": guest}, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == guest_ref(guest) == guest_ref(GUEST)


@pytest.mark.parametrize("source", ["rest", "webmessaging"])
def test_a_warm_token_writes_two_lines_and_a_retry_adds_a_line_per_attempt(invoke, env, emulator, source):
    if source == "webmessaging":
        env.setenv("GUEST_TOKEN_SOURCE", "webmessaging")
        env.setenv("GENESYS_DEPLOYMENT_ID", DEMO_DEPLOYMENT_ID)
        env.setenv("GENESYS_WEBMESSAGING_BASE_URL", emulator.webmessaging_url)
    call = "guest-token" if source == "rest" else "webmessaging"
    cold = invoke({})
    assert {entry["call"] for entry in cold.events("token_issued")[0]["calls"]} >= {"oauth", call}

    warm = invoke({})
    # One audit line and one EMF document, the audit line carrying the call's facts.
    assert [line["event"] for line in warm.logs] == ["token_issued"]
    assert len(warm.metrics) == 1
    [entry] = warm.logs[0]["calls"]
    assert entry["call"] == call and entry["latencyMs"] > 0
    assert warm.metrics[0][UPSTREAM_LATENCY[call]] == [entry["latencyMs"]]

    if source == "rest":
        emulator.add_fault("guest-token", status=503)
    else:
        emulator.add_fault("configure-session", code=5000)
    retried = invoke({})
    assert retried.status == 200
    assert [(line["call"], line["attempt"]) for line in retried.events("genesys_call")] == [(call, 1), (call, 2)]
    assert "calls" not in retried.events("token_issued")[0]  # each attempt has its own line instead
    assert len(retried.metrics[0][UPSTREAM_LATENCY[call]]) == 2  # the metric keeps every attempt's latency


def test_a_refused_access_token_keeps_a_line_for_the_refused_attempt(invoke, emulator):
    invoke({})
    emulator.revoke_access_tokens()  # the next call is answered 401, then replayed with a new access token
    answer = invoke({})
    assert answer.status == 200
    refused = [line for line in answer.events("genesys_call") if line.get("status") == 401]
    assert [line["call"] for line in refused] == ["guest-token"]
    folded = answer.events("token_issued")[0].get("calls", [])
    assert all(entry.get("status", 200) < 400 for entry in folded)
