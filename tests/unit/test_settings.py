"""Settings: defaults, region-derived URLs, and refusals that name the variable at fault."""

from __future__ import annotations

import pytest
from guest_token.errors import ConfigurationError
from guest_token.settings import DEFAULT_ALLOWED_SCOPES, load_settings, tracing_enabled

DEPLOYMENT_ID = "5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"
BASE = {"GENESYS_CREDENTIALS_SECRET_ID": "genesys/creds", "GENESYS_DEPLOYMENT_ID": DEPLOYMENT_ID}


def test_defaults():
    settings = load_settings(BASE)
    assert settings.region == "mypurecloud.com"
    assert settings.oauth_base_url == "https://login.mypurecloud.com"
    assert settings.api_base_url == "https://api.mypurecloud.com"
    assert settings.guest_token_path == "/api/v2/webmessaging/guests/generate-token"
    assert settings.allowed_scopes == DEFAULT_ALLOWED_SCOPES
    assert settings.max_token_lifetime_seconds == 86400
    assert settings.jwks_url is None
    assert settings.secrets_manager_endpoint_url is None  # AWS's own endpoint
    assert not settings.origin_allowed("https://www.example.com")  # nothing is allowed until configured
    assert settings.token_events_bus_name is None
    assert settings.token_events_include_guest_id is False
    assert settings.guest_token_source == "webmessaging"
    assert settings.deployment_id == DEPLOYMENT_ID
    assert settings.webmessaging_base_url == "wss://webmessaging.mypurecloud.com"
    assert settings.deployment_cache_seconds == 300


def test_the_rest_source_needs_no_deployment():
    settings = load_settings({"GENESYS_CREDENTIALS_SECRET_ID": "s", "GUEST_TOKEN_SOURCE": " REST "})
    assert settings.guest_token_source == "rest"
    assert settings.deployment_id is None


def test_the_webmessaging_host_follows_the_region_and_may_be_local_ws():
    assert load_settings({**BASE, "GENESYS_REGION": "euw2.pure.cloud"}).webmessaging_base_url == (
        "wss://webmessaging.euw2.pure.cloud"
    )
    local = load_settings({**BASE, "GENESYS_WEBMESSAGING_BASE_URL": "ws://127.0.0.1:8180/"})
    assert local.webmessaging_base_url == "ws://127.0.0.1:8180"


@pytest.mark.parametrize(
    "bus",
    ["guest-sync", "aws.partner/crm.example/guests", "arn:aws:events:eu-west-1:123456789012:event-bus/guest-sync"],
)
def test_the_token_events_bus_is_a_name_or_an_arn(bus):
    assert load_settings({**BASE, "TOKEN_EVENTS_BUS_NAME": f" {bus} "}).token_events_bus_name == bus


@pytest.mark.parametrize(
    ("value", "traced"),
    [("", True), ("false", True), ("0", True), ("true", False), ("TRUE", False), ("sometimes", False)],
)
def test_the_tracer_is_loaded_unless_powertools_tracing_is_disabled(monkeypatch, value, traced):
    # Powertools' own reading of POWERTOOLS_TRACE_DISABLED; a value it cannot read loads nothing (and every
    # request then answers 500 naming the variable, as the bad_configuration test shows).
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", value)
    assert tracing_enabled() is traced


@pytest.mark.parametrize(
    "region", ["mypurecloud.ie", "usw2.pure.cloud", "use2.us-gov-pure.cloud", "mypurecloud.com.au"]
)
def test_region_gives_the_login_and_api_hosts(region):
    settings = load_settings({**BASE, "GENESYS_REGION": region})
    assert settings.oauth_base_url == f"https://login.{region}"
    assert settings.api_base_url == f"https://api.{region}"


def test_overrides_win_over_the_region():
    settings = load_settings(
        {**BASE, "GENESYS_OAUTH_BASE_URL": "http://127.0.0.1:8100/", "GENESYS_API_BASE_URL": "https://proxy.example"}
    )
    assert settings.oauth_base_url == "http://127.0.0.1:8100"
    assert settings.api_base_url == "https://proxy.example"


def test_a_local_secrets_manager_may_be_plain_http_for_sam_local():
    settings = load_settings({**BASE, "SECRETS_MANAGER_ENDPOINT_URL": "http://host.docker.internal:5100/"})
    assert settings.secrets_manager_endpoint_url == "http://host.docker.internal:5100"


def test_origins_are_exact_and_a_wildcard_allows_any():
    settings = load_settings({**BASE, "ALLOWED_ORIGINS": " https://a.example , https://b.example:8443 "})
    assert settings.origin_allowed("https://a.example")
    assert settings.origin_allowed("https://b.example:8443")
    assert not settings.origin_allowed("https://b.example")
    assert not settings.origin_allowed(None)
    assert load_settings({**BASE, "ALLOWED_ORIGINS": "*"}).origin_allowed("http://anything:1")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "GENESYS_CREDENTIALS_SECRET_ID"),
        ({**BASE, "GENESYS_REGION": "https://mypurecloud.com"}, "GENESYS_REGION"),
        ({**BASE, "GENESYS_API_BASE_URL": "http://api.mypurecloud.com"}, "GENESYS_API_BASE_URL"),
        ({**BASE, "GENESYS_OAUTH_BASE_URL": "ftp://login.example"}, "GENESYS_OAUTH_BASE_URL"),
        ({**BASE, "GENESYS_JWKS_URL": "not a url"}, "GENESYS_JWKS_URL"),
        ({**BASE, "MAX_TOKEN_LIFETIME_SECONDS": "90000"}, "MAX_TOKEN_LIFETIME_SECONDS"),
        ({**BASE, "MAX_TOKEN_LIFETIME_SECONDS": "a day"}, "MAX_TOKEN_LIFETIME_SECONDS"),
        ({**BASE, "ALLOWED_SCOPES": "webmessaging:guest:read"}, "ALLOWED_SCOPES"),
        ({**BASE, "GENESYS_GUEST_TOKEN_PATH": "api/v2/x"}, "GENESYS_GUEST_TOKEN_PATH"),
        ({**BASE, "CREDENTIALS_CACHE_SECONDS": "-1"}, "CREDENTIALS_CACHE_SECONDS"),
        ({**BASE, "SECRETS_MANAGER_ENDPOINT_URL": "http://secrets.example"}, "SECRETS_MANAGER_ENDPOINT_URL"),
        ({**BASE, "TOKEN_EVENTS_BUS_NAME": "guest sync"}, "TOKEN_EVENTS_BUS_NAME"),
        ({**BASE, "TOKEN_EVENTS_BUS_NAME": "arn:aws:sqs:us-east-1:123456789012:q"}, "TOKEN_EVENTS_BUS_NAME"),
        ({**BASE, "POWERTOOLS_TRACE_DISABLED": "sometimes"}, "POWERTOOLS_TRACE_DISABLED"),
        ({**BASE, "MAX_TOKEN_LIFETIME_SECONDS": "1"}, "MAX_TOKEN_LIFETIME_SECONDS"),
        ({**BASE, "GENESYS_REGION": "example.com"}, "GENESYS_REGION"),
        ({**BASE, "GENESYS_API_BASE_URL": "https://api.example.com:99999"}, "GENESYS_API_BASE_URL"),
        ({**BASE, "GENESYS_OAUTH_BASE_URL": "https://."}, "GENESYS_OAUTH_BASE_URL"),
        (
            {**BASE, "GENESYS_WEBMESSAGING_BASE_URL": "wss://webmessaging.example.com:99999"},
            "GENESYS_WEBMESSAGING_BASE_URL",
        ),
        ({**BASE, "GUEST_TOKEN_SOURCE": "soap"}, "GUEST_TOKEN_SOURCE"),
        ({"GENESYS_CREDENTIALS_SECRET_ID": "s"}, "GENESYS_DEPLOYMENT_ID"),
        ({**BASE, "GENESYS_DEPLOYMENT_ID": "my-deployment"}, "GENESYS_DEPLOYMENT_ID"),
        ({**BASE, "GENESYS_WEBMESSAGING_BASE_URL": "ws://webmessaging.example"}, "GENESYS_WEBMESSAGING_BASE_URL"),
        ({**BASE, "GENESYS_WEBMESSAGING_BASE_URL": "https://webmessaging.example"}, "GENESYS_WEBMESSAGING_BASE_URL"),
        ({**BASE, "DEPLOYMENT_CACHE_SECONDS": "forever"}, "DEPLOYMENT_CACHE_SECONDS"),
        ({**BASE, "TOKEN_EVENTS_INCLUDE_GUEST_ID": "maybe"}, "TOKEN_EVENTS_INCLUDE_GUEST_ID"),
    ],
)
def test_bad_configuration_names_the_variable(environ, variable):
    with pytest.raises(ConfigurationError) as raised:
        load_settings(environ)
    assert variable in str(raised.value)


@pytest.mark.parametrize(("raw", "seconds"), [("7200", 7200), ("7200.0", 7200), ("3600.5", 3600), (" 14400 ", 14400)])
def test_numbers_as_cloudformation_passes_them_are_read(raw, seconds):
    # A Number parameter admits decimals: what the template lets through must work.
    assert load_settings({**BASE, "MAX_TOKEN_LIFETIME_SECONDS": raw}).max_token_lifetime_seconds == seconds
