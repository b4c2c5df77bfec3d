"""The connection layer of :mod:`.transport`: httpx over an httpcore pool whose network backend checks
every address and gives every socket operation the time left before the exchange's deadline.

This is the only module that imports httpx and httpcore; :func:`.transport.send` loads it on its first
exchange.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpcore
import httpx

from pytest_rustchain.llm.transport import (
    Exchange,
    HostBlockedError,
    HostPolicy,
    RetryPolicy,
    TransportError,
    _retry_after,
    check_url,
)

__all__ = ["exchange"]


class _Deadline:
    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    def left(self, timeout: float | None) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.left(timeout))
        return _Stream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, policy: HostPolicy, deadline: _Deadline) -> None:
        self._policy = policy
        self._deadline = deadline
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self._policy.check_name(host)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            self._policy.check_address(host, ip)  # every address: a name must not hide a bad one
            addresses.append(address)
        last: Exception | None = None
        for address in dict.fromkeys(addresses):
            try:
                inner = self._sync.connect_tcp(
                    address, port, self._deadline.left(timeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return _Stream(inner, self._deadline)
        raise last or httpcore.ConnectError(f"no address for {host!r}")


class _BodyStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes], closer: Any) -> None:
        self._inner = inner
        self._closer = closer

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        self._closer()


class _Transport(httpx.BaseTransport):
    """httpx's default transport, over a connection pool whose network backend is ours."""

    def __init__(self, policy: HostPolicy, deadline: _Deadline) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            network_backend=_Backend(policy, deadline),
            max_connections=4,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        resp = self._pool.handle_request(req)
        stream = resp.stream
        assert isinstance(stream, Iterable)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_BodyStream(stream, getattr(stream, "close", lambda: None)),
            extensions=resp.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _describe(exc: Exception, url: str, timeout: float) -> str:
    if isinstance(exc, httpcore.TimeoutException | httpx.TimeoutException):
        return f"no complete answer from {url} within the {timeout:g} s deadline"
    if isinstance(exc, httpcore.ConnectError | httpx.ConnectError):
        return f"cannot connect to {url}: {exc or 'connection refused'}"
    if isinstance(exc, httpcore.RemoteProtocolError | httpx.RemoteProtocolError):
        return f"{url} broke the HTTP protocol: {exc}"
    return f"{url}: {type(exc).__name__}: {exc}"


def _one(
    client: httpx.Client,
    method: str,
    url: str,
    headers: Mapping[str, str],
    content: bytes | None,
    max_bytes: int,
) -> tuple[int, dict[str, str], bytes]:
    with client.stream(method, url, headers=dict(headers), content=content) as response:
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise TransportError(
                    f"the answer from {url} is larger than {max_bytes:,} bytes; the exchange was cut there",
                    status=response.status_code,
                )
        return response.status_code, dict(response.headers.items()), bytes(body)


def exchange(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None,
    timeout: float,
    max_bytes: int,
    policy: HostPolicy,
    retry: RetryPolicy,
    follow_redirects: bool,
    max_redirects: int,
) -> Exchange:
    """:func:`.transport.send` after its URL check: the exchange itself."""
    started = time.monotonic()
    deadline = _Deadline(started + timeout)
    transport = _Transport(policy, deadline)
    hops: list[str] = []
    attempt = 0
    current = url
    with httpx.Client(transport=transport, follow_redirects=False, trust_env=False, timeout=timeout) as client:
        while True:
            attempt += 1
            try:
                status, resp_headers, body = _one(client, method, current, headers or {}, content, max_bytes)
            except TransportError:
                raise
            except (httpcore.TimeoutException, httpx.TimeoutException) as exc:
                raise TransportError(_describe(exc, current, timeout)) from None
            except HostBlockedError:
                raise
            except (httpcore.NetworkError, httpcore.ProtocolError, httpx.TransportError) as exc:
                raise TransportError(_describe(exc, current, timeout)) from None
            if follow_redirects and status in (301, 302, 303, 307, 308) and "location" in resp_headers:
                if len(hops) >= max_redirects:
                    raise TransportError(f"more than {max_redirects} redirects starting at {url}", status=status)
                target = str(httpx.URL(current).join(resp_headers["location"]))
                check_url(target, policy)
                hops.append(target)
                current = target
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, content = "GET", None
                continue
            if status in retry.statuses and attempt <= retry.max_retries:
                wait = retry.backoff * (2 ** (attempt - 1))
                if retry.respect_retry_after:
                    asked = _retry_after(resp_headers.get("retry-after"), time.time())
                    if asked is not None:
                        wait = asked
                wait = min(wait, retry.max_wait)
                if time.monotonic() + wait < deadline.at:
                    time.sleep(wait)
                    continue
            return Exchange(
                status=status,
                headers=resp_headers,
                body=body,
                latency_ms=round((time.monotonic() - started) * 1000),
                attempts=attempt,
                url=current,
                hops=tuple(hops),
            )
