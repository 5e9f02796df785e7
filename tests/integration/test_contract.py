"""The HTTP contract a widget sees, status by status, through the real handler with API Gateway events,
against the Genesys emulator over sockets and moto's Secrets Manager."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import jwt
import pytest

from devtools.local_api import build_event
from tests.conftest import ORIGIN, SCOPES_DEFAULT

GUEST = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"


def sent_to_genesys(emulator) -> dict:
    [request] = [r for r in emulator.requests if r.route == "guest-token"]
    return json.loads(request.body)


# ---- 200 -----------------------------------------------------------------------------------------------


def test_issues_a_token_whose_claims_match_the_request(invoke, emulator):
    answer = invoke({"guestId": GUEST.upper(), "duration": "extended", "scopes": ["webmessaging:guest:read"]})

    assert answer.status == 200
    body = answer.json
    assert set(body) == {"token", "guestId", "scopes", "expiresIn", "expiresAt"}
    assert body["guestId"] == GUEST
    assert body["scopes"] == ["webmessaging:guest:read"]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == GUEST
    assert claims["scope"] == "webmessaging:guest:read"
    assert body["expiresAt"] == datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 14400 - 5 <= body["expiresIn"] <= 14400
    assert sent_to_genesys(emulator) == {
        "guestId": GUEST,
        "expirationDurationSeconds": 14400,
        "scopes": ["webmessaging:guest:read"],
    }


def test_success_headers_forbid_caching_and_allow_the_callers_origin(invoke):
    answer = invoke({})
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_a_new_guest_gets_a_random_uuid4_and_the_default_duration_and_scopes(invoke, emulator):
    first, second = invoke({}), invoke({})
    guest_id = first.json["guestId"]
    assert uuid.UUID(guest_id).version == 4 and str(uuid.UUID(guest_id)) == guest_id
    assert second.json["guestId"] != guest_id
    assert first.json["scopes"] == SCOPES_DEFAULT
    assert 7200 - 5 <= first.json["expiresIn"] <= 7200


@pytest.mark.parametrize(("duration", "seconds"), [("short", 3600), ("standard", 7200), ("max", 86400)])
def test_durations_map_to_genesys_lifetimes(invoke, emulator, duration, seconds):
    answer = invoke({"duration": duration})
    assert answer.status == 200
    assert sent_to_genesys(emulator)["expirationDurationSeconds"] == seconds


def test_scopes_may_be_one_string_and_duplicates_are_dropped(invoke, emulator):
    assert invoke({"scopes": "webmessaging:guest:send"}).json["scopes"] == ["webmessaging:guest:send"]
    emulator.reset()
    doubled = ["webmessaging:guest:send", "webmessaging:guest:receive", "webmessaging:guest:send"]
    assert invoke({"scopes": doubled}).json["scopes"] == SCOPES_DEFAULT
    assert sent_to_genesys(emulator)["scopes"] == SCOPES_DEFAULT


def test_null_fields_mean_absent(invoke):
    answer = invoke({"guestId": None, "duration": None, "scopes": None})
    assert answer.status == 200
    assert answer.json["scopes"] == SCOPES_DEFAULT


# ---- 400 invalid_json ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "{", "not json", "[]", '"text"', "42", "null", b"\xff\xfe{}"], ids=repr
)
def test_a_body_that_is_not_a_json_object_is_invalid_json(invoke, emulator, raw):
    answer = invoke(raw=raw) if raw is not None else invoke()
    assert answer.status == 400
    assert answer.error_code == "invalid_json"
    assert answer.json["error"]["requestId"]
    assert emulator.count("oauth") == emulator.count("guest-token") == 0


# ---- 415 unsupported_media_type -----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"])
def test_a_body_not_sent_as_json_is_refused_before_genesys_is_asked(invoke, emulator, content_type):
    # API Gateway caps JSON bodies only (template.yaml), so the function must not read other kinds.
    answer = invoke({}, headers={"Content-Type": content_type})
    assert (answer.status, answer.error_code) == (415, "unsupported_media_type")
    assert emulator.count("oauth") == emulator.count("guest-token") == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", None])
def test_json_with_a_charset_or_no_content_type_at_all_is_accepted(invoke, content_type):
    event = build_event(
        "POST",
        "/guest-tokens",
        headers={"Origin": ORIGIN} | ({"Content-Type": content_type} if content_type else {}),
        body="{}",
    )
    assert invoke(event=event).status == 200


# ---- 422 invalid_request ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"guestId": "00000000-0000-0000-0000-000000000000"}, "guestId"),
        ({"guestId": "-" * 36}, "guestId"),
        ({"guestId": GUEST + "\n"}, "guestId"),
        ({"guestId": GUEST.replace("-", "")}, "guestId"),
        ({"guestId": "{" + GUEST + "}"}, "guestId"),
        ({"guestId": "g" + GUEST[1:]}, "guestId"),
        ({"guestId": 12}, "guestId"),
        ({"duration": "forever"}, "duration"),
        ({"duration": 3600}, "duration"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["webmessaging:guest:send", 3]}, "scopes.1"),
        ({"scopes": ["admin:everything"]}, "scopes"),
        ({"scopes": {"a": 1}}, "scopes"),
        ({"guestID": GUEST}, "guestID"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else value,
)
def test_invalid_fields_are_refused_naming_the_field(invoke, emulator, body, field):
    answer = invoke(body)
    assert answer.status == 422
    assert answer.error_code == "invalid_request"
    details = answer.json["error"]["details"]
    assert field in [detail["field"] for detail in details]
    assert all(detail["issue"] for detail in details)
    assert emulator.count("guest-token") == 0


def test_a_duration_above_the_configured_maximum_is_refused(invoke, env):
    env.setenv("MAX_TOKEN_LIFETIME_SECONDS", "7200")
    assert invoke({"duration": "standard"}).status == 200
    answer = invoke({"duration": "extended"})
    assert answer.status == 422
    assert answer.json["error"]["details"][0]["field"] == "duration"


def test_allowed_scopes_come_from_configuration(invoke, env):
    env.setenv("ALLOWED_SCOPES", "webmessaging:guest:send,webmessaging:guest:receive")
    answer = invoke({"scopes": ["webmessaging:guest:read"]})
    assert answer.status == 422
    assert "webmessaging:guest:read" in answer.json["error"]["details"][0]["issue"]


# ---- 403 origin_not_allowed and CORS ------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [None, "null", ORIGIN + "/", "http://chat.example.com", ORIGIN + ":8443", "https://chat.example.com.evil.net"],
)
def test_origins_must_match_the_allowlist_exactly(invoke, emulator, origin):
    answer = invoke({}, origin=origin)
    assert answer.status == 403
    assert answer.error_code == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert emulator.count("oauth") == 0


def test_the_origin_is_checked_before_the_body(invoke):
    assert invoke(raw="not json", origin="https://evil.example").status == 403


def test_a_wildcard_allows_any_origin_and_echoes_it(invoke, env):
    env.setenv("ALLOWED_ORIGINS", "*")
    answer = invoke({}, origin="http://localhost:5173")
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


def test_errors_for_allowed_origins_carry_cors_headers_so_the_widget_can_read_them(invoke):
    answer = invoke({"duration": "forever"})
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_preflight_from_an_allowed_origin(invoke):
    answer = invoke(method="OPTIONS", headers={"Access-Control-Request-Method": "POST"})
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in answer.headers["Access-Control-Allow-Headers"]


def test_preflight_from_another_origin_is_refused(invoke):
    answer = invoke(method="OPTIONS", origin="https://evil.example")
    assert answer.status == 403
    assert answer.error_code == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in answer.headers


# ---- 404 / 405 ----------------------------------------------------------------------------------------


def test_unknown_routes_and_methods_get_json_errors(invoke):
    missing = invoke(method="GET", path="/tokens")
    assert (missing.status, missing.error_code) == (404, "not_found")
    wrong = invoke(method="GET")
    assert (wrong.status, wrong.error_code) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "OPTIONS, POST"


# ---- upstream failures ----------------------------------------------------------------------------------


def test_genesys_refusing_the_request_is_an_upstream_error_without_its_body(invoke, emulator):
    emulator.add_fault("guest-token", status=403)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (502, "upstream_error")
    assert "missing.any.permissions" not in answer.body
    [failed] = answer.events("token_failed")
    assert "403 missing.any.permissions" in failed["detail"]
    assert failed["genesysCorrelationId"]


def test_a_storm_of_429s_is_passed_on_with_retry_after(invoke, emulator):
    emulator.add_fault("guest-token", status=429, retry_after=0, times=None)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (429, "rate_limited")
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert emulator.count("guest-token") == 3


def test_5xx_after_every_attempt_is_upstream_unavailable(invoke, emulator):
    emulator.add_fault("guest-token", status=503, times=None)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    assert emulator.count("guest-token") == 3


def test_an_unreachable_genesys_is_upstream_unavailable(invoke, env):
    env.setenv("GENESYS_OAUTH_BASE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")


def test_running_out_of_time_is_upstream_timeout(invoke, emulator):
    emulator.add_fault("guest-token", delay=3)
    answer = invoke({}, timeout_seconds=1.5)
    assert (answer.status, answer.error_code) == (504, "upstream_timeout")


def test_an_unreadable_secret_is_an_internal_error_naming_the_secret_not_its_value(invoke, env):
    env.setenv("GENESYS_CREDENTIALS_SECRET_ID", "no-such-secret")
    answer = invoke({})
    assert (answer.status, answer.error_code) == (500, "internal_error")
    assert answer.json["error"]["message"] == "The service could not handle the request."
    [failed] = answer.events("token_failed")
    assert "no-such-secret" in failed["detail"]


def test_a_misconfiguration_is_an_internal_error(invoke, env):
    env.setenv("GENESYS_API_BASE_URL", "http://genesys.example.com")  # plain http to a remote host
    answer = invoke({})
    assert (answer.status, answer.error_code) == (500, "internal_error")
    assert "Traceback" not in answer.body


def test_every_error_has_the_documented_shape(invoke):
    for answer in (invoke(raw="x"), invoke({"duration": 1}), invoke({}, origin=None), invoke(method="GET")):
        error = answer.json["error"]
        assert {"code", "message", "requestId"} <= set(error)
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.headers["Cache-Control"] == "no-store"


def test_an_unreachable_secrets_manager_is_upstream_unavailable(invoke, env):
    env.setenv("SECRETS_MANAGER_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    answer = invoke({})
    assert (answer.status, answer.error_code) == (503, "upstream_unavailable")
    [failed] = answer.events("token_failed")
    assert "Secrets Manager unreachable" in failed["detail"]


@pytest.mark.parametrize("secret", ["not json", '["a"]', '{"clientId": "x"}', '{"clientId": "", "clientSecret": "y"}'])
def test_a_secret_that_is_not_the_expected_json_is_an_internal_error(invoke, secrets_manager, secret):
    secrets_manager.put_secret_value(SecretId="genesys-guest-token/test", SecretString=secret)
    answer = invoke({})
    assert (answer.status, answer.error_code) == (500, "internal_error")
    [failed] = answer.events("token_failed")
    assert "genesys-guest-token/test" in failed["detail"]


def emf(answer) -> dict:
    [blob] = [blob for blob in answer.metrics if "HandlerLatency" in blob]
    return blob


def test_metrics_read_as_latency_and_success_rate(invoke, emulator):
    issued = emf(invoke({}))
    [directive] = issued["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GenesysGuestTokens"
    assert directive["Dimensions"] == [["service"]]
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units["GenesysGuestTokenLatency"] == units["HandlerLatency"] == "Milliseconds"
    assert issued["TokenRequestSuccess"] in (1.0, [1.0])

    emulator.add_fault("guest-token", status=503, times=None)
    failed = emf(invoke({}))
    assert failed["TokenRequestSuccess"] in (0.0, [0.0])
    assert len(failed["GenesysGuestTokenLatency"]) == 3  # one value per attempt

    # A caller's own mistake is not a service failure: it stays out of the success rate.
    assert "TokenRequestSuccess" not in emf(invoke({"duration": "forever"}))
