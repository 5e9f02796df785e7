"""Logger and metrics, created once per container, and the audit and metric vocabulary of the service.

Powertools reads POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_LOG_LEVEL itself.
Nothing here is ever given a token, an access token, a client secret or an Authorization header.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
# Preflights and unknown routes record no metrics by design; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# Audit entries: one "event" key names the entry; the rest of the schema is documented in the README.
REQUEST_RECEIVED = "token_request_received"
TOKEN_ISSUED = "token_issued"
TOKEN_FAILED = "token_failed"
UPSTREAM_CALL = "genesys_call"
_LATENCY_METRIC = {"oauth": "GenesysOAuthLatency", "guest-token": "GenesysGuestTokenLatency"}


def audit(event: str, *, warning: bool = False, **fields: Any) -> None:
    log = logger.warning if warning else logger.info
    log(event, extra={"event": event, **fields})


def upstream_call(call: str, **fields: Any) -> None:
    """One attempt at a Genesys call: status, latency and Genesys' correlation id (never headers or bodies)."""
    logger.info(UPSTREAM_CALL, extra={"event": UPSTREAM_CALL, "call": call, **fields})
    if fields.get("latencyMs") is not None:
        metrics.add_metric(name=_LATENCY_METRIC[call], unit=MetricUnit.Milliseconds, value=fields["latencyMs"])


def request_finished(*, issued: bool, status: int, latency_ms: float) -> None:
    metrics.add_metric(name="HandlerLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if issued:
        metrics.add_metric(name="TokensIssued", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="TokenRequestsFailed", unit=MetricUnit.Count, value=1)
    # Success rate = Average of TokenRequestSuccess. A caller's own mistake (4xx other than 429) is not a
    # service failure, so it is left out of the rate instead of counting against it.
    if issued or status == 429 or status >= 500:
        metrics.add_metric(name="TokenRequestSuccess", unit=MetricUnit.Count, value=1 if issued else 0)


def reset() -> None:
    """For tests: drop metrics not yet flushed."""
    metrics.clear_metrics()
