"""TCP connections to Genesys whose DNS lookup is bounded too.

getaddrinfo is a C call that neither a socket timeout nor the deadline's alarm can interrupt (glibc retries
its resolver's poll on EINTR), so a resolver that stalls would hold a request past the function's timeout.
The lookup runs on a worker and is waited for only as long as the connect may take; the connect then goes to
the addresses found. Both HTTP (urllib3, through ``BoundedLookupPoolManager``) and the Guest API's WebSocket
(``open_tcp``, handed to websockets as its socket) connect this way.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import socket
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

# Lookups in flight at once; one stuck on a stalled resolver holds its worker until the resolver gives up,
# and later lookups wait their turn, each no longer than its own timeout.
LOOKUP_WORKERS = 4


@functools.cache
def _lookups() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=LOOKUP_WORKERS, thread_name_prefix="dns")


def resolve(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    """getaddrinfo's answer for a TCP connection to ``host``, waited for at most ``timeout`` seconds
    (TimeoutError after that; socket.gaierror when the name does not resolve)."""
    host = host.strip("[]")
    if _is_ip(host):  # nothing to look up
        return socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    if timeout <= 0:
        raise TimeoutError(f"no time left to look up {host}")
    future = _lookups().submit(socket.getaddrinfo, host, port, allowed_gai_family(), socket.SOCK_STREAM)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()  # if it has not started yet
        raise TimeoutError(f"the DNS lookup of {host} took longer than {timeout:.1f} s") from None


def open_tcp(
    host: str, port: int, timeout: float, *, source_address: Any = None, socket_options: Any = None
) -> socket.socket:
    """A TCP connection to ``host``: the lookup and the connect together within ``timeout`` seconds."""
    until = time.monotonic() + timeout
    error: OSError | None = None
    for family, _, _, _, address in resolve(host, port, timeout):
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no time left to connect to {host}")
        try:
            # An address, not a name: urllib3's helper (socket options, source address) looks nothing up.
            ip = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
            return create_connection((ip, port), left, source_address=source_address, socket_options=socket_options)
        except OSError as exc:
            error = exc
    raise error if error is not None else OSError(f"{host} resolved to no address")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _BoundedLookup(HTTPConnection):
    """urllib3's connection with the lookup bounded by its connect timeout; errors as urllib3 raises them."""

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else socket.getdefaulttimeout() or 10.0
        try:
            return open_tcp(
                self._dns_host,
                self.port,
                float(timeout),
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. ({exc})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _BoundedLookupHTTPConnection(_BoundedLookup):
    pass


class _BoundedLookupHTTPSConnection(_BoundedLookup, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _BoundedLookupHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedLookupHTTPSConnection


class BoundedLookupPoolManager(urllib3.PoolManager):
    """A PoolManager whose connections look names up within their connect timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
