"""Which FHIR servers the fallback may call, and which addresses it may connect to.

``fhirServer`` comes from the caller, so it is an SSRF vector (docs/protocol.md, "The FHIR server
the service calls"). Two independent checks, both must pass:

1. **The URL** is under a configured prefix: the authenticated client's own ``fhir_servers``
   when it has them, else the global ``CDS_FHIR_ALLOWLIST``; in the development profile a
   loopback URL (``localhost``, ``127.0.0.0/8``, ``[::1]``) is allowed too. Prefixes match on
   scheme, host, port and whole path segments (``https://ehr.org/fhir`` does not admit
   ``https://ehr.org/fhir-admin`` nor ``https://ehr.org.evil.net/fhir``). The path is
   compared *decoded*, and a path with a ``.`` or ``..`` segment (raw, percent-encoded at any
   depth, or hidden behind ``;params``), or a segment that decodes to a separator, is refused
   outright: a server that resolves ``/fhir/%2e%2e/admin`` would otherwise serve ``/admin``
   with the EHR's token (docs/security.md, "The FHIR fallback").
2. **Every address** the host name resolves to is acceptable (``AddressPolicy``): never
   link-local (169.254/16, fe80::/10, which holds the cloud metadata services), known metadata
   addresses, multicast, unspecified or reserved; loopback only in the development profile or
   with ``CDS_FHIR_ALLOW_PRIVATE``; private and other non-global ranges only with
   ``CDS_FHIR_ALLOW_PRIVATE``. IPv4 embedded in IPv6 (``::ffff:a.b.c.d``, NAT64) is unwrapped
   first. One bad address refuses the host: a resolver may answer with a mix.

DNS rebinding: ``AddressGuard.check`` resolves and checks, and the connection classes of the
client's pool connect to *those checked addresses* (the host name stays the TLS server name
and ``Host``), so the address the socket reaches is always one that passed the check. Checked
answers are kept for a few seconds so that the pre-flight check and the connection share one
lookup; a refused or failed lookup is never cached.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Cloud metadata and host-agent endpoints that are not all link-local: AWS (IPv4, ECS task
#: metadata, IPv6), Alibaba, Azure wireserver, Oracle Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The URL or an address is not allowed; ``reason`` is safe to return and to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResolutionFailed(Refused):
    """The host name did not resolve (or resolved to nothing)."""


# --- URLs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def _split(url: str) -> tuple[SplitResult, Origin]:
    """The parts of an absolute http(s) URL without credentials; Refused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise Refused("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused("URLs with credentials are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise Refused("the URL has no host")
    return parts, Origin(scheme, host, port or _DEFAULT_PORTS[scheme])


#: How many layers of percent-encoding a path segment may carry before it is refused.
_DECODE_ROUNDS = 3
DOT_SEGMENT = "the URL path has a '.' or '..' segment"


def _decoded(segment: str) -> str:
    for _ in range(_DECODE_ROUNDS):
        text = unquote(segment, errors="strict")
        if text == segment:
            return text
        segment = text
    raise Refused("the URL path is encoded too many times")


def path_segments(path: str) -> tuple[str, ...]:
    """The decoded segments of a URL path (``"/fhir/Patient"`` -> ``("", "fhir", "Patient")``);
    Refused when one is a dot segment (``.``, ``..``, ``%2e%2E``, ``%252e.``, ``..;x``) or
    decodes to a slash, a backslash or a control character: each of these means something
    else to some server than to this check."""
    decoded = []
    for raw in path.split("/"):
        try:
            segment = _decoded(raw)
        except UnicodeDecodeError:
            raise Refused("the URL path is not valid UTF-8 once decoded") from None
        if segment.partition(";")[0] in (".", ".."):
            raise Refused(DOT_SEGMENT)
        if "/" in segment or "\\" in segment or any(ord(c) < 32 or ord(c) == 127 for c in segment):
            raise Refused("the URL path hides a separator or a control character")
        decoded.append(segment)
    return tuple(decoded)


def check_reference(reference: str) -> None:
    """A link (absolute or relative: a ``next`` link, a redirect) may be joined to a base only
    when its path is clean: ``urljoin`` would silently resolve ``../admin`` first."""
    try:
        path = urlsplit(reference).path
    except ValueError:
        raise Refused("the URL is not valid") from None
    path_segments(path)


def origin_of(url: str) -> Origin:
    return _split(url)[1]


def validate_prefix(prefix: str) -> str:
    """A configured allowlist entry, normalised; ValueError with a reason when it is not one."""
    try:
        parts, _ = _split(prefix.strip())
    except Refused as exc:
        raise ValueError(exc.reason) from None
    if parts.query or parts.fragment:
        raise ValueError("an allowlist entry has no query or fragment")
    try:
        path_segments(parts.path)
    except Refused as exc:
        raise ValueError(exc.reason) from None
    return prefix.strip().rstrip("/")


def under_prefix(url: str, prefix: str) -> bool:
    """``url`` is ``prefix`` or below it, on whole decoded path segments, same scheme, host
    and port; never when either path has a dot segment."""
    try:
        parts, origin = _split(url)
        prefix_parts, prefix_origin = _split(prefix)
        path = path_segments(parts.path)
        base = path_segments(prefix_parts.path.rstrip("/"))
    except Refused:
        return False
    if origin != prefix_origin:
        return False
    return base == ("",) or path[: len(base)] == base


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, prefixes: Iterable[str], *, allow_loopback: bool) -> Origin:
    """The URL's origin when configuration allows calling it; Refused otherwise."""
    parts, origin = _split(url)
    if parts.fragment:
        raise Refused("URLs with a fragment are not allowed")
    path_segments(parts.path)  # a dot segment is refused whatever the prefixes
    if any(under_prefix(url, p) for p in prefixes):
        return origin
    if allow_loopback and is_loopback_host(origin.host):
        return origin
    raise Refused("the FHIR server is not on the allowlist")


# --- addresses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPolicy:
    #: Loopback addresses (development profile, or with ``allow_private``).
    allow_loopback: bool = False
    #: Private and other non-global ranges, loopback included (``CDS_FHIR_ALLOW_PRIVATE``).
    allow_private: bool = False


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: Address, policy: AddressPolicy) -> str | None:
    """Why ``address`` may not be connected to, or None when it may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_problem(embedded, policy)
    # Never allowed, whatever the configuration.
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return None if (policy.allow_loopback or policy.allow_private) else "a loopback address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return None if policy.allow_private else "a private address"
    return None


Resolver = Callable[..., Sequence[tuple]]


class AddressGuard:
    """Resolves a host, checks every address, and remembers checked answers briefly."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        cache_seconds: float = 10.0,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def _resolve(self, host: str, port: int) -> Sequence[tuple]:
        # Looked up at call time, so that tests can monkeypatch socket.getaddrinfo.
        resolver = self._resolver or socket.getaddrinfo
        return resolver(host, port, 0, socket.SOCK_STREAM)

    def check(self, host: str, port: int) -> tuple[str, ...]:
        """The checked IP addresses of ``host``; Refused if any is not allowed."""
        host = host.strip("[]").rstrip(".").lower()
        key = (host, port)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = self._resolve(host, port)
        except (socket.gaierror, UnicodeError, OSError):
            raise ResolutionFailed("the FHIR server's host name could not be resolved") from None
        addresses: list[str] = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise Refused("the FHIR server's host resolved to an invalid address") from None
            problem = address_problem(address, self.policy)
            if problem is not None:
                raise Refused(f"the FHIR server's host resolves to {problem}")
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise ResolutionFailed("the FHIR server's host name could not be resolved")
        result = tuple(addresses)
        if self._cache_seconds > 0:
            with self._lock:
                self._cache[key] = (now + self._cache_seconds, result)
        return result
