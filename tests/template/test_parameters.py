"""The template refuses, at deploy time, parameter values that would break every request.

CloudFormation checks AllowedPattern (a Java regular expression over the whole value), MinValue and MaxValue
before it creates anything. These patterns use only syntax Java and Python share, so Python's ``re`` shows what
each one admits and refuses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = dict(yaml_parse((REPO / "template.yaml").read_text()))
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
DEFAULT_PORTS = {"http": 80, "https": 443}


def admits(name: str, value: str) -> bool:
    return re.fullmatch(PARAMETERS[name]["AllowedPattern"], value) is not None


def browser_origin(origin: str) -> str:
    """The Origin header a browser sends for a page at ``origin``: lower case, no default port, no path."""
    parts = urlsplit(origin)
    port = f":{parts.port}" if parts.port is not None and parts.port != DEFAULT_PORTS[parts.scheme] else ""
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}{port}"


# ---- AllowedOrigins -------------------------------------------------------------------------------------

GOOD_ORIGINS = [
    "*",
    "https://www.example.com",
    "https://www.example.com,https://support.example.com",
    "https://www.example.com, https://support.example.com:8443",
    "http://localhost:3000",
    "http://127.0.0.1:8080",
    "https://[::1]:8443",
    "https://xn--bcher-kva.example",
    "https://shop-1.example.co.uk:4433",
    "http://intranet:443",  # 443 is not http's default port
    "https://a.example:80",  # nor 80 https's
]
BAD_ORIGINS = {
    "": "empty",
    "https://www.example.com/": "trailing slash",
    "https://www.example.com/chat": "path",
    "https://www.example.com?x=1": "query",
    "https://www.example.com#top": "fragment",
    "HTTPS://www.example.com": "upper-case scheme",
    "https://WWW.Example.com": "upper-case host",
    "https://www.example.com:443": "https's default port",
    "http://www.example.com:80": "http's default port",
    "https://a.example,https://www.example.com:443": "a default port after a comma",
    "https://www.example.com:443, https://a.example": "a default port before a comma",
    "https://www.example.com:0443": "a port with a leading zero",
    "https://www.example.com:0": "port 0",
    "https://www.example.com:65536": "a port out of range",
    "www.example.com": "no scheme",
    "ftp://www.example.com": "not http or https",
    "https://user@www.example.com": "credentials",
    "https://www.example.com.": "a trailing dot",
    "https://-www.example.com": "a label starting with a hyphen",
    "https://www.example.com,": "a trailing comma",
    "https://a.example,,https://b.example": "an empty item",
    " https://www.example.com": "a leading space",
    "https://www.example.com ,https://a.example": "a space before a comma",
    "https://www.example.com,*": "* with origins",
    "*,https://www.example.com": "origins with *",
    "null": "the opaque origin",
    "https://www.example.com\n": "a trailing newline",
}


@pytest.mark.parametrize("value", GOOD_ORIGINS)
def test_allowed_origins_admits_origins_as_browsers_send_them(value):
    assert admits("AllowedOrigins", value)
    if value != "*":
        for origin in value.split(","):
            assert browser_origin(origin.strip()) == origin.strip()


@pytest.mark.parametrize("value", list(BAD_ORIGINS), ids=list(BAD_ORIGINS.values()))
def test_allowed_origins_refuses_what_no_browser_sends(value):
    assert not admits("AllowedOrigins", value)


def test_allowed_origins_is_required_and_explains_its_pattern():
    parameter = PARAMETERS["AllowedOrigins"]
    assert "Default" not in parameter
    # `sam deploy --guided` takes an empty answer as a value: CloudFormation refuses it by length.
    assert parameter["MinLength"] == 1 and not admits("AllowedOrigins", "")
    assert "scheme's default" in parameter["ConstraintDescription"]


# ---- AllowedScopes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        PARAMETERS["AllowedScopes"]["Default"],
        "webmessaging:guest:send,webmessaging:guest:receive",
        "webmessaging:guest:receive, webmessaging:guest:send, webmessaging:guest:read",
    ],
)
def test_allowed_scopes_admits_lists_with_the_default_request_scopes(value):
    assert admits("AllowedScopes", value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "webmessaging:guest:send",  # the default request asks for receive too
        "webmessaging:guest:receive,webmessaging:guest:read",
        "webmessaging:guest:sender,webmessaging:guest:receive",
        "webmessaging:guest:send,webmessaging:guest:receive,",
        "webmessaging:guest:send;webmessaging:guest:receive",
        "webmessaging:guest:send,webmessaging:guest:receive,read all",
    ],
)
def test_allowed_scopes_refuses_lists_the_default_request_would_fail(value):
    assert not admits("AllowedScopes", value)


# ---- base URLs, paths and the local Secrets Manager endpoint ----------------------------------------------

HTTPS_OVERRIDES = ("GenesysOAuthBaseUrl", "GenesysApiBaseUrl", "GenesysJwksUrl")


@pytest.mark.parametrize("name", HTTPS_OVERRIDES)
@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),
        ("https://login.mypurecloud.com", True),
        ("https://genesys-proxy.example.com:8443/base", True),
        ("https://login.mypurecloud.com/.well-known/jwks.json", True),
        ("http://login.mypurecloud.com", False),
        ("wss://login.mypurecloud.com", False),
        ("login.mypurecloud.com", False),
        ("https://", False),
        ("https://login.mypurecloud.com?x=1", False),
        ("https://login.mypurecloud.com#x", False),
        ("https://login mypurecloud.com", False),
    ],
)
def test_base_url_overrides_are_empty_or_https(name, value, admitted):
    assert admits(name, value) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),
        ("wss://webmessaging.mypurecloud.com", True),
        ("wss://proxy.example.com:8443/v1", True),
        ("https://webmessaging.mypurecloud.com", False),
        ("ws://webmessaging.mypurecloud.com", False),
        ("wss://webmessaging.mypurecloud.com?deploymentId=x", False),
    ],
)
def test_the_web_messaging_base_url_is_empty_or_wss(value, admitted):
    assert admits("GenesysWebMessagingBaseUrl", value) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),
        ("http://host.docker.internal:5100", True),
        ("http://localhost:5100", True),
        ("http://127.0.0.1:5100", True),
        ("https://secretsmanager.eu-west-1.amazonaws.com", True),
        ("http://secretsmanager.eu-west-1.amazonaws.com", False),  # plain http only to this machine
        ("host.docker.internal:5100", False),
        ("ftp://localhost", False),
    ],
)
def test_the_secrets_manager_endpoint_is_empty_or_a_url(value, admitted):
    assert admits("SecretsManagerEndpointUrl", value) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("/api/v2/webmessaging/guests/generate-token", True),
        ("/guest-tokens", True),
        ("api/v2/webmessaging/guests/generate-token", False),
        ("/api?x=1", False),
        ("", False),
    ],
)
def test_the_guest_token_path_starts_with_a_slash(value, admitted):
    assert admits("GenesysGuestTokenPath", value) is admitted


# ---- every parameter ----------------------------------------------------------------------------------


PATTERNED = sorted(name for name, parameter in PARAMETERS.items() if "AllowedPattern" in parameter)


@pytest.mark.parametrize("name", PATTERNED)
def test_every_default_passes_its_own_pattern_and_every_pattern_is_explained(name):
    parameter = PARAMETERS[name]
    if "Default" in parameter:
        assert admits(name, str(parameter["Default"]))
    if name in {*HTTPS_OVERRIDES, "AllowedOrigins", "AllowedScopes", "GenesysWebMessagingBaseUrl"}:
        assert parameter["ConstraintDescription"].strip()


def test_numbers_are_bounded_where_a_value_would_break_requests_or_never_alarm():
    lifetime = PARAMETERS["MaxTokenLifetimeSeconds"]
    # Below 3600 every request would be refused (short, the shortest duration, is 3600 s); Genesys allows a day.
    assert (lifetime["MinValue"], lifetime["MaxValue"], lifetime["Default"]) == (3600, 86400, 86400)
    timeout_ms = TEMPLATE["Resources"]["GuestTokenFunction"]["Properties"]["Timeout"] * 1000
    assert PARAMETERS["LatencyAlarmThresholdMs"]["MaxValue"] == timeout_ms  # p99 latency never exceeds it
    counts = ("ThrottlingRateLimit", "ThrottlingBurstLimit", "ServerErrorAlarmThreshold", "RateLimitedAlarmThreshold")
    for name in counts:
        assert PARAMETERS[name]["MinValue"] >= 1, name
