"""A local stand-in for API Gateway (REST API, Lambda proxy integration), without Docker.

Each HTTP request becomes an API Gateway REST proxy event (payload format 1.0) handed to the real
``lambda_handler`` with a Lambda-like context; its answer becomes the HTTP response. Invocations run one at
a time, like one warm Lambda container, so module-level caches behave as they do in AWS.
Not deployed: ``sam local start-api`` does the same with Docker.

With ``throttle=(rate, burst)`` it also throttles like the stage's MethodSettings (a token bucket for each
HTTP method, as API Gateway keeps one per method), answering with API
Gateway's own THROTTLED response exactly as template.yaml's GatewayResponses define it (status, body,
headers), read from the template so the two cannot drift.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.template import template

GUEST_TOKENS_RESOURCE = "/guest-tokens"
# The template's resources; any other path is the catch-all's.
RESOURCES = (GUEST_TOKENS_RESOURCE, "/authenticated-sessions", "/authenticated-sessions/refresh")
STAGE = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def gateway_response(
    name: str, request_headers: Mapping[str, str], request_id: str
) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's own answer ``name`` as template.yaml's GatewayResponses define it, for this request."""
    api = template()["Resources"]["GuestTokenApi"]["Properties"]
    response = api["GatewayResponses"][name]
    lowered = {key.lower(): value for key, value in request_headers.items()}
    headers = {"Content-Type": "application/json"}
    for header, source in response.get("ResponseParameters", {}).get("Headers", {}).items():
        if source.startswith("'"):
            headers[header] = source.strip("'")
        elif source.startswith("method.request.header."):
            value = lowered.get(source.removeprefix("method.request.header.").lower())
            if value is not None:  # API Gateway leaves out a header mapped from one the request lacks
                headers[header] = value
        else:
            raise ValueError(f"the local API cannot map {source!r}")
    body = response["ResponseTemplates"]["application/json"].replace("$context.requestId", request_id)
    return int(response["StatusCode"]), headers, body.encode()


class TokenBucket:
    """The stage's throttle: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass
class LocalContext:
    """What Lambda passes as ``context``: enough for Powertools and the request deadline."""

    timeout_seconds: float = 10.0
    function_name: str = "GuestTokenFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/GuestTokenFunction"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def build_event(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    query: str = "",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST proxy event for one request, as the template's two routes produce it."""
    header_map = dict(headers or {})
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    if path in RESOURCES:
        resource, path_parameters = path, None
    else:
        resource, path_parameters = "/{proxy+}", {"proxy": path.lstrip("/")}

    encoded_body: str | None
    is_base64 = False
    if isinstance(body, bytes):
        try:
            encoded_body = body.decode("utf-8")
        except UnicodeDecodeError:
            # API Gateway hands bytes that are not text to Lambda base64-encoded.
            encoded_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        encoded_body = body
    if encoded_body == "" and method in ("GET", "OPTIONS", "HEAD"):
        encoded_body = None

    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": header_map or None,
        "multiValueHeaders": {name: [value] for name, value in header_map.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            # The path as the client sent it (API Gateway's own URL has the stage in it; this server's has none):
            # the signed-in routes scope their cookie to it.
            "path": path,
            "stage": STAGE,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": header_map.get("User-Agent")},
        },
        "body": encoded_body,
        "isBase64Encoded": is_base64,
    }


class LocalApi:
    """Serves ``handler`` over HTTP on a loopback address."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        timeout_seconds: float = 10.0,
        throttle: tuple[float, int] | None = None,
    ) -> None:
        self._handler = handler
        self._throttle = throttle
        self._buckets: dict[str, TokenBucket] = {}
        self._timeout_seconds = timeout_seconds
        self._invoke_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._request_handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._invoke_lock:
            return self._handler(event, LocalContext(timeout_seconds=self._timeout_seconds))

    def _admit(self, method: str) -> bool:
        if self._throttle is None:
            return True
        with self._invoke_lock:
            bucket = self._buckets.setdefault(method, TokenBucket(*self._throttle))
        return bucket.take()

    def start(self) -> LocalApi:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle's algorithm the body waits for the client's
            # delayed ACK (~40 ms) on every keep-alive request.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"Content-Type": "application/json"}, b'{"message":"Request Too Long"}')
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                if not api._admit(self.command):
                    self._reply(*gateway_response("THROTTLED", dict(self.headers.items()), str(uuid.uuid4())))
                    return
                target = urlsplit(self.path)
                event = build_event(
                    self.command,
                    target.path,
                    headers=dict(self.headers.items()),
                    body=body if length else None,
                    query=target.query,
                    source_ip=self.client_address[0],
                )
                try:
                    result = api.invoke(event)
                except Exception:
                    # As API Gateway does when the function itself fails.
                    self._reply(502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')
                    raise
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
                headers = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                self._reply(int(result["statusCode"]), headers, data)

            def _reply(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the handler's own JSON logs say what happened

        return RequestHandler
