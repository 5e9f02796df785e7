"""The Genesys OAuth client credentials, read from Secrets Manager through Powertools parameters.

The secret is a JSON object ``{"clientId": "...", "clientSecret": "..."}``. Powertools caches it for
CREDENTIALS_CACHE_SECONDS; after Genesys rejects the credentials (rotation) oauth.py asks once more with
``force_refresh`` to bypass that cache. Log lines name the secret's id, never its value.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import observability
from .budget import Deadline
from .errors import ConfigurationError, UpstreamTimeout, UpstreamUnavailable
from .settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

# Errors that mean the deployment is wrong (secret missing, no permission, KMS), not a passing outage.
_CONFIGURATION_ERROR_CODES = {
    "ResourceNotFoundException",
    "AccessDeniedException",
    "DecryptionFailure",
    "InvalidRequestException",
    "InvalidParameterException",
    "UnrecognizedClientException",
}


# botocore fixes a client's timeouts when it is made, so the deadline picks the client: the usual one (two
# attempts of 1 s to connect and 1.5 s to read, with standard backoff: at most USUAL_WORST_CASE_SECONDS), or,
# for a request with less time left, a quick one (one attempt of at most QUICK_WORST_CASE_SECONDS). With less
# than that left the read is not started: every read of the secret ends before the request's deadline.
USUAL = {"connect_timeout": 1.0, "read_timeout": 1.5, "retries": {"max_attempts": 2, "mode": "standard"}}
USUAL_WORST_CASE_SECONDS = 2 * (1.0 + 1.5) + 1.0
QUICK = {"connect_timeout": 0.4, "read_timeout": 0.6, "retries": {"total_max_attempts": 1, "mode": "standard"}}
QUICK_WORST_CASE_SECONDS = 0.4 + 0.6


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)


@functools.cache
def _provider(endpoint_url: str | None, *, quick: bool = False) -> SecretsProvider:
    # Imported and created on first use, not with the handler's module: boto3 and Powertools' parameter
    # providers are a third of the module's import time. The first token request pays it instead, and a
    # container answering only preflights or refused requests never does (see BENCHMARKS.md).
    import boto3  # noqa: PLC0415
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(**(QUICK if quick else USUAL))  # type: ignore[arg-type]
    observability.trace_aws_calls()
    client = boto3.client("secretsmanager", config=config, endpoint_url=endpoint_url)
    return SecretsProvider(boto3_client=client)


def get_credentials(settings: Settings, deadline: Deadline, *, force_refresh: bool = False) -> ClientCredentials:
    secret_id = settings.credentials_secret_id
    value = read_json_secret(settings, secret_id, deadline, force_refresh=force_refresh)
    return parse_credentials(value, f"secret {secret_id}")


def read_json_secret(settings: Settings, secret_id: str, deadline: Deadline, *, force_refresh: bool = False) -> Any:
    """The JSON value of secret ``secret_id`` (the OAuth client's, or the refresh cookie's keys), cached
    CREDENTIALS_CACHE_SECONDS per container; every read ends before the request's deadline."""
    left = deadline.check(f"reading secret {secret_id}")
    if left < QUICK_WORST_CASE_SECONDS:
        raise UpstreamTimeout(log_detail=f"too little time left to read secret {secret_id}")
    # Each provider caches the secret for CREDENTIALS_CACHE_SECONDS; the quick one serves only requests that
    # are short of time (a short function timeout, or a re-read after a rotation late in a request).
    provider = _provider(settings.secrets_manager_endpoint_url, quick=left < USUAL_WORST_CASE_SECONDS)
    # Loaded by _provider, so these cost nothing more here.
    from aws_lambda_powertools.utilities.parameters.exceptions import (  # noqa: PLC0415
        GetParameterError,
        TransformParameterError,
    )
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        return provider.get(
            secret_id, max_age=settings.credentials_cache_seconds, transform="json", force_fetch=force_refresh
        )
    except TransformParameterError:
        raise ConfigurationError(log_detail=f"secret {secret_id} is not JSON") from None
    except GetParameterError as exc:
        cause = exc.__context__
        if isinstance(cause, ClientError):
            code = cause.response.get("Error", {}).get("Code", "")
            if code in _CONFIGURATION_ERROR_CODES:
                raise ConfigurationError(log_detail=f"cannot read secret {secret_id}: {code}") from None
            raise UpstreamUnavailable(log_detail=f"Secrets Manager error reading {secret_id}: {code}") from None
        raise UpstreamUnavailable(
            log_detail=f"Secrets Manager unreachable reading {secret_id}: {type(cause).__name__}"
        ) from None


def parse_credentials(value: Any, where: str) -> ClientCredentials:
    """The secret's JSON value checked (also by devtools.check_genesys, on the file the secret is made from).
    The error names ``where`` and the fields, never the value: it is the secret."""
    client_id, client_secret = (value.get("clientId"), value.get("clientSecret")) if isinstance(value, dict) else (0, 0)
    if not (isinstance(client_id, str) and client_id and isinstance(client_secret, str) and client_secret):
        raise ConfigurationError(
            log_detail=f"{where} must be a JSON object with non-empty string fields clientId and clientSecret"
        )
    return ClientCredentials(client_id=client_id, client_secret=client_secret)


def reset() -> None:
    """For tests: a new provider (and so an empty cache and a client for the current endpoint)."""
    _provider.cache_clear()
