"""Configuration: read from the environment once per container into one frozen object.

Nothing else in the package reads ``os.environ`` (Powertools reads its own ``POWERTOOLS_*`` variables).
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aws_lambda_powertools.shared.functions import strtobool

from .errors import ConfigurationError

DEFAULT_REGION = "mypurecloud.com"
# Genesys Cloud's regions (host domains), as template.yaml's GenesysRegion lists them.
GENESYS_REGIONS = (
    *("mypurecloud.com", "mypurecloud.ie", "mypurecloud.de", "mypurecloud.com.au", "mypurecloud.jp"),
    *("usw2.pure.cloud", "cac1.pure.cloud", "euw2.pure.cloud", "aps1.pure.cloud", "apne2.pure.cloud"),
    *("sae1.pure.cloud", "use2.us-gov-pure.cloud", "mec1.pure.cloud", "apne3.pure.cloud", "euc2.pure.cloud"),
    *("mxc1.pure.cloud", "apse1.pure.cloud"),
)
DEFAULT_GUEST_TOKEN_PATH = "/api/v2/webmessaging/guests/generate-token"
DEFAULT_ALLOWED_SCOPES = (
    "webmessaging:guest:send",
    "webmessaging:guest:receive",
    "webmessaging:guest:read",
    "webmessaging:guest:update",
)
# What a request without "scopes" asks for.
DEFAULT_REQUEST_SCOPES = ("webmessaging:guest:send", "webmessaging:guest:receive")
# Genesys guest tokens live at most a day; the service never asks for more.
TOKEN_LIFETIME_CEILING_SECONDS = 86400
# The shortest duration a request can name ("short"): a lower maximum would refuse every request.
TOKEN_LIFETIME_FLOOR_SECONDS = 3600
DEFAULT_CREDENTIALS_CACHE_SECONDS = 300
# Where guest sessions come from: Genesys' public Web Messaging Guest API, or the tutorial's REST contract.
SOURCE_WEBMESSAGING = "webmessaging"
SOURCE_REST = "rest"
GUEST_TOKEN_SOURCES = (SOURCE_WEBMESSAGING, SOURCE_REST)
DEFAULT_DEPLOYMENT_CACHE_SECONDS = 300
# A deployment that is not Active is re-read this often: soon enough to notice it switched back on, seldom
# enough that a busy page with chat switched off does not spend Genesys' rate limit.
DEFAULT_DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS = 30
# Signed-in customers: how long a refresh cookie is honoured (Genesys does not publish its refresh tokens'
# lifetime), and its bounds: a minute at least, a year at most.
DEFAULT_AUTH_COOKIE_SECONDS = 30 * 86400
AUTH_COOKIE_SECONDS_RANGE = (60, 365 * 86400)
# A web deployment id as Genesys Admin shows it: a UUID.
# A canonical UUID (fullmatch, not match: "$" would accept a trailing newline); guest ids are UUIDs too.
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# A DNS host name: labels of letters, digits and hyphens (not at either end), dot-separated.
_HOST_PATTERN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
# What precedes the host in a URL: user information, which may be a password.
_USER_INFORMATION = re.compile(r"^([^:/?#]*://)[^/?#]*@")
# Plain http is only acceptable to things on this machine (the emulator, `sam local` reaching the host).
_INSECURE_HOSTS_ALLOWED = {"localhost", "host.docker.internal"}
# An EventBridge bus name, or its ARN (PutEvents takes either).
_EVENT_BUS_PATTERN = re.compile(r"(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/)?[A-Za-z0-9._/-]{1,256}")


@dataclass(frozen=True)
class Settings:
    allowed_origins: frozenset[str]
    allowed_scopes: tuple[str, ...]
    max_token_lifetime_seconds: int
    guest_token_source: str
    # The web deployment whose guests get sessions (webmessaging source only; None with rest).
    deployment_id: str | None
    webmessaging_base_url: str
    deployment_cache_seconds: int
    deployment_unavailable_cache_seconds: int
    credentials_secret_id: str
    credentials_cache_seconds: int
    region: str
    oauth_base_url: str
    api_base_url: str
    guest_token_path: str
    jwks_url: str | None
    # Only for `sam local invoke` against a local Secrets Manager; None means AWS's own endpoint.
    secrets_manager_endpoint_url: str | None
    token_events_bus_name: str | None
    token_events_include_guest_id: bool
    # Signed-in customers: the secret holding the refresh cookie's keys; None turns the feature off.
    auth_cookie_keys_secret_id: str | None
    auth_cookie_seconds: int

    @property
    def signed_in_customers(self) -> bool:
        return self.auth_cookie_keys_secret_id is not None

    @property
    def allow_any_origin(self) -> bool:
        return "*" in self.allowed_origins

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return self.allow_any_origin or origin in self.allowed_origins


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        # CloudFormation's Number parameters admit decimals ("7200.0"); the fraction of a second is dropped.
        value = int(raw) if raw.lstrip("-").isdigit() else int(float(raw))
    except (ValueError, OverflowError):
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw[:50]!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _base_url(name: str, value: str, *, secure: str = "https", plain: str = "http", path: bool = True) -> str:
    """The URL checked and written one way: scheme and host lower-cased (a final dot dropped), the scheme's
    default port dropped, no trailing slash. Clients write the Host header so, and a host compared in another
    spelling never matches. ``path``: whether the URL may have one (the Guest API's base may not: the code
    appends /v1)."""
    shown = _shown(value)
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").removesuffix(".")
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise ConfigurationError(f"{name} must be a {secure} URL with a valid host and port, got {shown}") from None
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{name} must not carry credentials, got a URL with user information")
    if scheme not in (secure, plain) or not _valid_host(host) or parts.query or parts.fragment or port == 0:
        raise ConfigurationError(f"{name} must be a {secure} URL with a host, got {shown}")
    if not path and parts.path.strip("/"):
        raise ConfigurationError(f"{name} must be a {secure} URL without a path, got {shown}")
    if scheme == plain and not _is_local_host(host):
        raise ConfigurationError(f"{name} must use {secure} (plain {plain} only for local hosts), got {shown}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{parts.path}".rstrip("/")


def _shown(value: str) -> str:
    """A setting's value as an error may quote it: any user information (a password) left out, bounded."""
    value = _USER_INFORMATION.sub(r"\1[user information]@", value)
    return repr(value[:200] + ("..." if len(value) > 200 else ""))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_PATTERN.fullmatch(host))
    return True


def _is_local_host(host: str) -> bool:
    if host in _INSECURE_HOSTS_ALLOWED:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build and check the settings; raises ConfigurationError naming the variable at fault."""
    secret_id = environ.get("GENESYS_CREDENTIALS_SECRET_ID", "").strip()
    if not secret_id:
        raise ConfigurationError("GENESYS_CREDENTIALS_SECRET_ID is not set")

    region = environ.get("GENESYS_REGION", "").strip().lower() or DEFAULT_REGION
    if region not in GENESYS_REGIONS:
        raise ConfigurationError(
            f"GENESYS_REGION must be one of Genesys' regions ({', '.join(GENESYS_REGIONS)}), got {_shown(region)}"
        )

    allowed_scopes = tuple(dict.fromkeys(_split(environ.get("ALLOWED_SCOPES", "")))) or DEFAULT_ALLOWED_SCOPES
    missing_defaults = [scope for scope in DEFAULT_REQUEST_SCOPES if scope not in allowed_scopes]
    if missing_defaults:
        raise ConfigurationError(
            f"ALLOWED_SCOPES must include the default request scopes; missing {', '.join(missing_defaults)}"
        )

    guest_token_path = environ.get("GENESYS_GUEST_TOKEN_PATH", "").strip() or DEFAULT_GUEST_TOKEN_PATH
    if not guest_token_path.startswith("/"):
        raise ConfigurationError(f"GENESYS_GUEST_TOKEN_PATH must start with '/', got {_shown(guest_token_path)}")

    jwks_url = environ.get("GENESYS_JWKS_URL", "").strip()
    # pyjwt checks signatures with cryptography, which ships in its own layer (template.yaml attaches it only
    # when GenesysJwksUrl is set). Without it every token would fail late and obscurely; say so up front.
    if jwks_url and importlib.util.find_spec("cryptography") is None:
        raise ConfigurationError(
            "GENESYS_JWKS_URL is set but cryptography is not installed: set it through the template's "
            "GenesysJwksUrl parameter, which attaches SignatureLayer"
        )
    source = environ.get("GUEST_TOKEN_SOURCE", "").strip().lower() or SOURCE_WEBMESSAGING
    if source not in GUEST_TOKEN_SOURCES:
        raise ConfigurationError(
            f"GUEST_TOKEN_SOURCE must be one of {', '.join(GUEST_TOKEN_SOURCES)}, got {_shown(source)}"
        )
    deployment_id = environ.get("GENESYS_DEPLOYMENT_ID", "").strip() or None
    if source == SOURCE_WEBMESSAGING and deployment_id is None:
        raise ConfigurationError("GENESYS_DEPLOYMENT_ID is not set (required when GUEST_TOKEN_SOURCE is webmessaging)")
    if deployment_id is not None and not UUID_PATTERN.fullmatch(deployment_id):
        raise ConfigurationError(
            f"GENESYS_DEPLOYMENT_ID must be a web deployment id (a UUID), got {_shown(deployment_id)}"
        )
    secrets_endpoint = environ.get("SECRETS_MANAGER_ENDPOINT_URL", "").strip()
    bus = environ.get("TOKEN_EVENTS_BUS_NAME", "").strip()
    if bus and not _EVENT_BUS_PATTERN.fullmatch(bus):
        raise ConfigurationError(f"TOKEN_EVENTS_BUS_NAME must be an EventBridge bus name or ARN, got {_shown(bus)}")
    _tracing(environ)  # a bad value answers 500 naming the variable, like every other setting
    cookie_keys = environ.get("AUTH_COOKIE_KEYS_SECRET_ID", "").strip()
    if cookie_keys and source != SOURCE_WEBMESSAGING:
        raise ConfigurationError(
            "AUTH_COOKIE_KEYS_SECRET_ID (signed-in customers) needs GUEST_TOKEN_SOURCE webmessaging: Genesys' "
            "authenticated sessions are Web Messaging sessions"
        )
    # The refresh cookie is sealed with cryptography's Fernet, in the layer the template attaches with this setting.
    if cookie_keys and importlib.util.find_spec("cryptography") is None:
        raise ConfigurationError(
            "AUTH_COOKIE_KEYS_SECRET_ID is set but cryptography is not installed: set it through the template's "
            "CookieKeysSecretName parameter, which attaches SignatureLayer"
        )
    return Settings(
        allowed_origins=frozenset(_split(environ.get("ALLOWED_ORIGINS", ""))),
        allowed_scopes=allowed_scopes,
        max_token_lifetime_seconds=_int(
            environ,
            "MAX_TOKEN_LIFETIME_SECONDS",
            TOKEN_LIFETIME_CEILING_SECONDS,
            TOKEN_LIFETIME_FLOOR_SECONDS,
            TOKEN_LIFETIME_CEILING_SECONDS,
        ),
        guest_token_source=source,
        deployment_id=deployment_id.lower() if deployment_id else None,
        webmessaging_base_url=_base_url(
            "GENESYS_WEBMESSAGING_BASE_URL",
            environ.get("GENESYS_WEBMESSAGING_BASE_URL", "").strip() or f"wss://webmessaging.{region}",
            secure="wss",
            plain="ws",
            path=False,
        ),
        deployment_cache_seconds=_int(environ, "DEPLOYMENT_CACHE_SECONDS", DEFAULT_DEPLOYMENT_CACHE_SECONDS, 0, 86400),
        deployment_unavailable_cache_seconds=_int(
            environ, "DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS", DEFAULT_DEPLOYMENT_UNAVAILABLE_CACHE_SECONDS, 0, 3600
        ),
        credentials_secret_id=secret_id,
        credentials_cache_seconds=_int(
            environ, "CREDENTIALS_CACHE_SECONDS", DEFAULT_CREDENTIALS_CACHE_SECONDS, 0, 86400
        ),
        region=region,
        oauth_base_url=_base_url(
            "GENESYS_OAUTH_BASE_URL", environ.get("GENESYS_OAUTH_BASE_URL", "").strip() or f"https://login.{region}"
        ),
        api_base_url=_base_url(
            "GENESYS_API_BASE_URL", environ.get("GENESYS_API_BASE_URL", "").strip() or f"https://api.{region}"
        ),
        guest_token_path=guest_token_path,
        jwks_url=_base_url("GENESYS_JWKS_URL", jwks_url) if jwks_url else None,
        secrets_manager_endpoint_url=(
            _base_url("SECRETS_MANAGER_ENDPOINT_URL", secrets_endpoint) if secrets_endpoint else None
        ),
        token_events_bus_name=bus or None,
        token_events_include_guest_id=_bool(environ, "TOKEN_EVENTS_INCLUDE_GUEST_ID"),
        auth_cookie_keys_secret_id=cookie_keys or None,
        auth_cookie_seconds=_int(
            environ, "AUTH_COOKIE_SECONDS", DEFAULT_AUTH_COOKIE_SECONDS, *AUTH_COOKIE_SECONDS_RANGE
        ),
    )


def _bool(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip() or "false"
    try:
        return strtobool(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be true or false, got {_shown(raw)}") from None


def _tracing(environ: Mapping[str, str]) -> bool:
    # Powertools' own switch, parsed the way Powertools parses it; unset means traced.
    return not _bool(environ, "POWERTOOLS_TRACE_DISABLED")


def tracing_enabled() -> bool:
    """Whether to load the X-Ray tracer. Read once at import, when the handler is decorated, so before a
    request could report a bad value: an unreadable value loads nothing (load_settings reports it)."""
    try:
        return _tracing(os.environ)
    except ConfigurationError:
        return False


def configuration_problem() -> str | None:
    """What is wrong with the environment, or None; nothing is cached (called once at cold start)."""
    try:
        load_settings(os.environ)
    except ConfigurationError as error:
        return error.log_detail
    return None


@functools.cache
def get_settings() -> Settings:
    """The container's settings. A failed load is not cached, so a fixed variable takes effect."""
    return load_settings(os.environ)


def reset() -> None:
    """For tests: forget the loaded settings."""
    get_settings.cache_clear()
