"""Every file in events/ is a valid API Gateway REST proxy event that the handler answers as docs/api.md says."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel
from samtranslator.yaml_helper import yaml_parse

from tests.documented_events import EVENTS, REPO, documented_answers, event_files


def test_every_event_file_is_documented():
    assert event_files(), "events/ is empty"
    assert set(documented_answers()) == set(event_files())


def test_env_json_sets_only_variables_the_template_declares():
    template = yaml_parse((REPO / "template.yaml").read_text())
    declared = set(template["Resources"]["GuestTokenFunction"]["Properties"]["Environment"]["Variables"])
    overrides = json.loads((EVENTS / "env.json").read_text())
    # sam local invoke --env-vars ignores variables the template does not declare.
    assert set(overrides) == {"GuestTokenFunction"}
    assert set(overrides["GuestTokenFunction"]) <= declared


@pytest.mark.parametrize("name", event_files())
def test_event_answers_as_documented(name, invoke, env, emulator):
    # events/env.json's settings: the default webmessaging source, the emulator's demo deployment.
    overrides = json.loads((EVENTS / "env.json").read_text())["GuestTokenFunction"]
    env.setenv("ALLOWED_ORIGINS", overrides["ALLOWED_ORIGINS"])
    env.setenv("GUEST_TOKEN_SOURCE", "webmessaging")
    env.setenv("GENESYS_DEPLOYMENT_ID", overrides["GENESYS_DEPLOYMENT_ID"])
    env.setenv("GENESYS_WEBMESSAGING_BASE_URL", emulator.webmessaging_url)
    event = json.loads((EVENTS / name).read_text())
    APIGatewayProxyEventModel.model_validate(event)  # the shape API Gateway sends

    answer = invoke(event=event)

    status, code = documented_answers()[name]
    assert answer.status == status
    if code is None:
        assert answer.body == "" or "error" not in answer.json
    else:
        assert answer.error_code == code
    if status == 200:
        request = json.loads(event["body"])
        assert answer.json["guestId"] == request.get("guestId", answer.json["guestId"])
