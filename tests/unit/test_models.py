"""The request model and policy, without the HTTP layer."""

from __future__ import annotations

import json

import pytest
from guest_token.errors import InvalidJson, InvalidRequest
from guest_token.models import parse_guest_token_request
from guest_token.settings import load_settings

SETTINGS = load_settings({"GENESYS_CREDENTIALS_SECRET_ID": "s", "GUEST_TOKEN_SOURCE": "rest"})


def parse(body):
    return parse_guest_token_request(json.dumps(body), SETTINGS)


def test_defaults_are_resolved():
    request = parse({})
    assert request.new_guest
    assert (request.duration, request.duration_seconds) == ("standard", 7200)
    assert request.scopes == ("webmessaging:guest:send", "webmessaging:guest:receive")


def test_a_returning_guest_keeps_its_id_lowercased():
    request = parse({"guestId": "5C0F2A4E-7B1D-4C3A-9E8F-2A1B3C4D5E6F"})
    assert request.guest_id == "5c0f2a4e-7b1d-4c3a-9e8f-2a1b3c4d5e6f"
    assert not request.new_guest


@pytest.mark.parametrize("text", [None, "", "[1]", "{", "true"])
def test_not_a_json_object(text):
    with pytest.raises(InvalidJson):
        parse_guest_token_request(text, SETTINGS)


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidRequest) as raised:
        parse({"guestId": "nope", "duration": "eternal", "scopes": [1], "extra": True})
    assert {detail["field"] for detail in raised.value.details} == {"guestId", "duration", "scopes.0", "extra"}


WEBMESSAGING = load_settings(
    {"GENESYS_CREDENTIALS_SECRET_ID": "s", "GENESYS_DEPLOYMENT_ID": "5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"}
)


def test_webmessaging_refuses_what_genesys_decides_naming_each_field():
    with pytest.raises(InvalidRequest) as raised:
        parse_guest_token_request(
            json.dumps({"duration": "short", "scopes": ["webmessaging:guest:send"]}), WEBMESSAGING
        )
    assert [detail["field"] for detail in raised.value.details] == ["duration", "scopes"]


def test_webmessaging_takes_a_new_or_returning_guest_only():
    new = parse_guest_token_request("{}", WEBMESSAGING)
    assert new.new_guest and new.duration is None and new.scopes == ()
    returning = parse_guest_token_request('{"guestId": "5C0F2A4E-7B1D-4C3A-9E8F-2A1B3C4D5E6F"}', WEBMESSAGING)
    assert returning.guest_id == "5c0f2a4e-7b1d-4c3a-9e8f-2a1b3c4d5e6f" and not returning.new_guest


@pytest.mark.parametrize(
    ("maximum", "duration"), [(86400, "standard"), (7200, "standard"), (3600, "short"), (14400, "standard")]
)
def test_the_default_request_is_valid_under_every_allowed_maximum(maximum, duration):
    settings = load_settings(
        {"GENESYS_CREDENTIALS_SECRET_ID": "s", "GUEST_TOKEN_SOURCE": "rest", "MAX_TOKEN_LIFETIME_SECONDS": str(maximum)}
    )
    assert parse_guest_token_request("{}", settings).duration == duration
