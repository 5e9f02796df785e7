"""A web site on its own loopback origin that embeds the widget client: serves ``widget/`` (the demo page
at ``/demo/``, the client modules at ``/``) as a company's site would, so the browser talks to the
guest-token API cross-origin, with CORS, as in production. Not deployed.

Given a ``site_dir`` (``make run``'s ``SITE_DIR``), it serves that folder first, at ``/``: your own pages,
on an origin the local service allows; a file the folder lacks (the modules, ``/demo/``) comes from
``widget/``.

``/demo/config.json`` tells the page which endpoint to call and, when the site is given the Genesys
emulator's URL, where the guest REST API is: ``/genesys/``, which forwards the one call a guest's browser
makes, ``GET /genesys/api/v2/webmessaging/messages`` (the history, with the guest JWT), to the emulator.
Genesys' own API answers browsers with CORS; the emulator does not, so this site relays it, with CORS for
any origin (a page served elsewhere can use it too). With the emulator's URL it also names the emulator's
OpenID provider (``signIn``: its authorize URL and the demo's client id), where the demo's "Sign in" goes; the
provider sends the browser back to the demo page itself (``/demo/?code=…&state=…``).
"""

from __future__ import annotations

import json
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from devtools.oidc_emulator import AUTHORIZE_PATH, DEMO_OIDC_CLIENT_ID

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"
CONFIG_PATH = "/demo/config.json"
GENESYS_PREFIX = "/genesys/"
HISTORY_PATH = "/api/v2/webmessaging/messages"
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10.0))


class DemoSite:
    """Serves ``widget/`` on ``http://host:port``; the socket is bound at construction (port 0: a free one)."""

    def __init__(
        self,
        endpoint: str,
        host: str = "127.0.0.1",
        port: int = 0,
        genesys_api: str | None = None,
        site_dir: Path | None = None,
        *,
        sign_in: bool = False,
    ) -> None:
        settings: dict[str, Any] = {"endpoint": endpoint}
        if genesys_api:
            settings["genesysApi"] = GENESYS_PREFIX
        if genesys_api and sign_in:  # only where the service signs customers in: else the button could only fail
            settings["signIn"] = {"authorizeUrl": f"{genesys_api}{AUTHORIZE_PATH}", "clientId": DEMO_OIDC_CLIENT_ID}
        config = json.dumps(settings).encode()
        roots = [str(root) for root in (site_dir, WIDGET_DIR) if root is not None]
        history = GENESYS_PREFIX.rstrip("/") + HISTORY_PATH

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                # The first root that has it: the site's folder, then widget/.
                for root in roots:
                    self.directory = root
                    translated = super().translate_path(path)
                    if os.path.exists(translated):
                        break
                return translated

            def do_OPTIONS(self) -> None:
                # The preflight of a history call from another origin (its Authorization header needs one).
                if genesys_api and urlsplit(self.path).path == history:
                    self.send_response(204)
                    self.send_header("Access-Control-Allow-Methods", "GET")
                    self.send_header("Access-Control-Allow-Headers", "Authorization")
                    self.send_header("Access-Control-Max-Age", "600")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._answer(405, "text/plain", b"Method Not Allowed\n")

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/" and site_dir is None:
                    self.send_response(302)
                    self.send_header("Location", "/demo/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == CONFIG_PATH:
                    self._answer(200, "application/json", config)
                elif genesys_api and path == history:
                    query = urlsplit(self.path).query
                    # Only the guest's own Authorization goes on; nothing of it is logged.
                    headers = {"Authorization": self.headers.get("Authorization", "")}
                    url = f"{genesys_api}{HISTORY_PATH}" + (f"?{query}" if query else "")
                    try:
                        upstream = _http.request("GET", url, headers=headers)
                    except urllib3.exceptions.HTTPError:
                        self._answer(502, "text/plain", b"Genesys emulator unreachable\n")
                    else:
                        self._answer(upstream.status, upstream.headers.get("Content-Type", ""), upstream.data)
                else:
                    super().do_GET()

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")  # edits to the page show on reload
                if genesys_api and urlsplit(self.path).path == history and "Origin" in self.headers:
                    # As Genesys' API does for browsers; no cookies are involved, only the guest's JWT.
                    self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
                    self.send_header("Vary", "Origin")
                super().end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), partial(Handler, directory=roots[0]))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def site_url(self) -> str:
        return f"{self.origin}/"

    @property
    def history_relay(self) -> str:
        """What a page passes as the chat's ``apiBaseUrl`` to reach the emulator's history call."""
        return f"{self.origin}{GENESYS_PREFIX}"

    @property
    def demo_url(self) -> str:
        return f"{self.origin}/demo/"

    def start(self) -> DemoSite:
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever() that never started
            self._server.shutdown()
        self._server.server_close()
