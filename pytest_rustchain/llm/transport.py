"""Bounded HTTP over httpx: host checks at connect time, one deadline per exchange, byte caps, retries.

Both the LLM providers and the ``http`` step send through :func:`send`. httpx and httpcore are
imported by :mod:`._wire` (the connection layer), which :func:`send` loads on its first exchange:
loading a mission that has model or ``http`` steps does not load them.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

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
    from pytest_rustchain.llm import _wire  # httpx: loaded on the first exchange, not with the plugin

    return _wire.exchange(
        method,
        url,
        headers=headers or {},
        content=content,
        timeout=timeout,
        max_bytes=max_bytes,
        policy=policy,
        retry=retry,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
    )
