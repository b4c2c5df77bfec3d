"""Bounded HTTP over httpx: host checks at connect time, one deadline per exchange, byte caps, retries.

This is the only module that imports httpx (and httpcore, the connection layer under it). Both the
LLM providers and the ``http`` step send through :func:`send`.

How the limits hold:

- **Hosts**: the connection layer (an httpcore network backend) resolves the host name itself, checks
  every address with :class:`HostPolicy` and connects to the checked address, so a name cannot
  resolve to one address for the check and another for the connection. Link-local and cloud metadata
  addresses are always refused; loopback is allowed; anything else must match ``mission_allow_hosts``.
- **Deadline**: every socket read, write and connect gets the time left before the exchange's
  deadline as its timeout, so a server that drips one byte a second cannot outlive the deadline
  (httpx's own timeouts are per read, which a drip never trips).
- **Bytes**: the body is streamed and the exchange fails once it passes ``max_bytes``.
- **Redirects**: never followed unless the caller asks, and then each hop is checked again.
- **Environment**: proxies and ``.netrc`` from the environment are ignored (``trust_env=False``), so
  what a request reaches depends on configuration alone.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpcore
import httpx

from pytest_rustchain.errors import MissionError

__all__ = [
    "RETRY_STATUSES",
    "Exchange",
    "HostBlockedError",
    "HostPolicy",
    "RetryPolicy",
    "TransportError",
    "check_url",
    "send",
]

#: Statuses worth asking again: timeout, conflict, rate limit, server errors, Anthropic's "overloaded".
RETRY_STATUSES: Final = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_METADATA_HOSTS: Final = frozenset(
    {"metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_NETS: Final = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
_ALLOW_HINT: Final = "list the host (or a CIDR) in mission_allow_hosts in the pytest configuration"


class TransportError(MissionError):
    """An exchange failed: connection refused, deadline passed, body too large, blocked host."""

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b"") -> None:
        self.message = message
        self.status = status
        self.body = body
        super().__init__(message)


class HostBlockedError(TransportError):
    """The host is refused by the network policy; nothing was sent to it."""

    def __init__(self, host: str, rule: str, why: str, hint: str) -> None:
        self.host = host
        self.rule = rule
        super().__init__(f"{rule} host '{host}' refused: {why}\nHINT: {hint}")


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPolicy:
    """Which hosts an exchange may reach: loopback always, metadata never, the rest when listed."""

    allow_hosts: tuple[str, ...] = ()

    def _listed(self, name: str) -> bool:
        from pytest_rustchain.safety.rules import host_matches  # the analyser loads lazily

        return host_matches(name, self.allow_hosts)

    def check_name(self, host: str) -> None:
        """Refuse what is refused by name alone (before any DNS lookup)."""
        name = host.lower().strip("[]").rstrip(".")
        if name in _METADATA_HOSTS:
            raise HostBlockedError(
                host, "RC-NET-005", "cloud metadata service", "metadata services are never reachable"
            )
        ip = _as_ip(name)
        if ip is not None:
            self.check_address(host, ip)

    def check_address(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        """Refuse ``ip`` (one address ``host`` resolved to) unless the policy allows it."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in _METADATA_NETS):
            raise HostBlockedError(
                host,
                "RC-NET-005",
                f"{ip} is a link-local or cloud metadata address",
                "such addresses are never reachable",
            )
        if ip.is_loopback:
            return
        name = host.lower().strip("[]").rstrip(".")
        if self._listed(name) or self._listed(str(ip)):
            return
        rule = "RC-NET-007" if ip.is_private else "RC-NET-001"
        raise HostBlockedError(host, rule, f"not in mission_allow_hosts (resolves to {ip})", _ALLOW_HINT)


def check_url(url: str, policy: HostPolicy) -> None:
    """Refuse a URL whose scheme is not http(s) or whose host is refused by name, before connecting."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise TransportError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise HostBlockedError(
            url, "RC-NET-006", f"scheme '{parts.scheme}' is not http or https", "use an http:// or https:// URL"
        )
    if not host:
        raise TransportError(f"URL {url!r} has no host")
    policy.check_name(host)


# ---------------------------------------------------------------------------------------------
# The connection layer: deadline on every socket operation, checked addresses


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


# ---------------------------------------------------------------------------------------------
# Exchanges


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often to ask again, on which statuses, and whether to wait as long as ``Retry-After`` says."""

    max_retries: int = 2
    statuses: frozenset[int] = RETRY_STATUSES
    respect_retry_after: bool = True
    backoff: float = 0.5
    max_wait: float = 60.0


NO_RETRY: Final = RetryPolicy(max_retries=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """What came back: the last response of the exchange (after retries and allowed redirects)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    latency_ms: int
    attempts: int = 1
    url: str = ""
    hops: tuple[str, ...] = field(default_factory=tuple)
    """Redirect targets followed, in order."""

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


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


def send(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    timeout: float = 60.0,
    max_bytes: int = 1_048_576,
    policy: HostPolicy,
    retry: RetryPolicy = NO_RETRY,
    follow_redirects: bool = False,
    max_redirects: int = 5,
) -> Exchange:
    """One HTTP exchange that ends within ``timeout`` seconds, whatever the server does.

    Returns the final response whatever its status (the caller decides what is an error), after
    ``retry.max_retries`` more attempts on a retryable status. Raises :class:`TransportError` when no
    response arrived (refused, deadline, protocol error, too large) and :class:`HostBlockedError`
    before connecting anywhere refused.
    """
    check_url(url, policy)
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
