"""JSON Web Key Sets: parsed into public keys, fetched only from configured URLs, cached.

PROTOCOL.md, "Authentication": the key comes from the client's configured JWKS (inline or
URL); a URL is never fetched because a token named it (``auth`` checks a token's ``jku``
against the client's allowlist before asking here). A set is refreshed when a token names an
unknown ``kid`` (key rotation) or when it is older than ``max_age_s`` (a removed key stops
working), at most once per ``refresh_interval_s`` per client and URL, and it fails closed: an
unreachable endpoint yields no key, hence 401, never a crash and never a stale key.

Only asymmetric public keys are kept: symmetric (``oct``) keys and private key material are
refused, so no configured or published key can ever serve as an HMAC secret.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

log = logging.getLogger("cds_service.auth")

#: Every algorithm the service can accept (HMAC and ``none`` are not, and never will be).
SUPPORTED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256", "PS384")
#: The curve each ECDSA algorithm signs with (RFC 7518, 3.4).
CURVES = {"ES256": "P-256", "ES384": "P-384"}
MIN_RSA_BITS = 2048
#: Fields of a private JWK (RFC 7518, 6.2.2 and 6.3.2): never configured, never used.
PRIVATE_FIELDS = ("d", "p", "q", "dp", "dq", "qi", "oth")

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 3.0
DEADLINE_S = 5.0
MAX_JWKS_BYTES = 64 * 1024


class JwksError(Exception):
    """A key set or a key is unusable; ``reason`` is a stable code for the log."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclass(frozen=True)
class PublicKey:
    kid: str
    kty: str  # EC | RSA
    crv: str | None
    alg: str | None  # the JWK's own "alg", when it pins one
    key: Any  # a cryptography public key object (never a str or bytes: no HMAC confusion)

    def fits(self, alg: str) -> bool:
        """The key can verify ``alg``: same family, same curve, and the JWK's own alg if set."""
        if self.alg is not None and self.alg != alg:
            return False
        if alg in CURVES:
            return self.kty == "EC" and self.crv == CURVES[alg]
        if alg.startswith(("RS", "PS")):
            return self.kty == "RSA"
        return False


#: kid -> the keys carrying it (usually one; a set may repeat a kid across key types).
KeySet = Mapping[str, tuple[PublicKey, ...]]


def parse_jwk(jwk: Any) -> PublicKey:
    if not isinstance(jwk, Mapping):
        raise JwksError("bad-jwk", "a key must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwksError("bad-jwk", "kid is required (tokens name their key by kid)")
    kty = jwk.get("kty")
    if kty == "oct":
        raise JwksError("symmetric-key", f"{kid}: symmetric (oct) keys are never accepted")
    if any(name in jwk for name in PRIVATE_FIELDS):
        raise JwksError("private-key", f"{kid}: private key material must never be configured")
    if jwk.get("use") not in (None, "sig"):
        raise JwksError("not-a-signing-key", f"{kid}: use is {jwk.get('use')!r}, not 'sig'")
    alg = jwk.get("alg")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise JwksError("unsupported-alg", f"{kid}: alg {alg!r} is not accepted")
    try:
        if kty == "EC":
            crv = jwk.get("crv")
            if crv not in CURVES.values():
                raise JwksError("unsupported-key", f"{kid}: curve {crv!r} is not P-256 or P-384")
            key = ECAlgorithm.from_jwk(dict(jwk))
        elif kty == "RSA":
            crv = None
            key = RSAAlgorithm.from_jwk(dict(jwk))
            if key.key_size < MIN_RSA_BITS:
                raise JwksError("weak-key", f"{kid}: RSA keys need at least {MIN_RSA_BITS} bits")
        else:
            raise JwksError("unsupported-key", f"{kid}: kty {kty!r} is not EC or RSA")
    except (PyJWTError, ValueError, TypeError, KeyError):
        raise JwksError("bad-jwk", f"{kid}: not a valid {kty} public key") from None
    return PublicKey(kid=kid, kty=kty, crv=crv, alg=alg, key=key)


def parse_jwk_set(data: Any, *, strict: bool) -> KeySet:
    """``strict`` (configuration): any bad key is an error naming it. Otherwise (a fetched
    set): unusable keys are skipped, as RFC 7517 section 5 asks of a JWK Set reader."""
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise JwksError("bad-jwks", 'expected a JWK Set: {"keys": [...]}')
    keys: dict[str, tuple[PublicKey, ...]] = {}
    for index, jwk in enumerate(data["keys"]):
        try:
            key = parse_jwk(jwk)
        except JwksError as exc:
            if strict:
                raise JwksError(exc.reason, f"keys[{index}]: {exc.message}") from None
            continue
        keys[key.kid] = keys.get(key.kid, ()) + (key,)
    if strict and not keys:
        raise JwksError("bad-jwks", "the JWK Set has no keys")
    return keys


def fetch_jwks(url: str) -> KeySet:
    """GET a configured JWKS URL: short timeouts, an overall deadline, a size cap, no
    redirects (the configured URL is the one trusted)."""
    started = time.monotonic()
    body = bytearray()
    try:
        with requests.get(
            url,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise JwksError("jwks-unavailable", f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise JwksError("jwks-too-large", f"over {MAX_JWKS_BYTES} bytes")
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError("jwks-too-large", f"over {MAX_JWKS_BYTES} bytes")
                if time.monotonic() - started > DEADLINE_S:
                    raise JwksError("jwks-unavailable", "too slow")
    except requests.RequestException as exc:
        raise JwksError("jwks-unavailable", type(exc).__name__) from None
    try:
        data = json.loads(bytes(body))
    except ValueError:
        raise JwksError("jwks-unavailable", "not JSON") from None
    return parse_jwk_set(data, strict=False)


@dataclass(frozen=True)
class _Entry:
    keys: KeySet
    fetched_at: float


class JwksCache:
    """Fetched key sets per (client, URL). Fetches are rate-limited per client and URL: a
    client's URLs are all configured (``jwks_url`` and its ``jku_allowlist``), so a client
    costs at most one fetch per URL per ``refresh_interval_s``, whatever its tokens say."""

    def __init__(
        self,
        fetch: Callable[[str], KeySet] = fetch_jwks,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval_s: float = 60.0,
        max_age_s: float = 3600.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.refresh_interval_s = refresh_interval_s
        self.max_age_s = max_age_s
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._last_attempt: dict[tuple[str, str], float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, owner: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(owner, threading.Lock())

    def keys(self, owner: str, url: str, kid: str) -> tuple[PublicKey, ...]:
        """The keys named ``kid`` at ``url`` for client ``owner``; () if none. Raises
        JwksError(jwks-unavailable) when the set cannot be had (fail closed)."""
        with self._lock(owner):
            now = self._clock()
            entry = self._entries.get((owner, url))
            fresh = entry is not None and now - entry.fetched_at < self.max_age_s
            if fresh and kid in entry.keys:
                return entry.keys[kid]
            last = self._last_attempt.get((owner, url))
            if last is not None and now - last < self.refresh_interval_s:
                # Rate-limited: an unknown kid cannot make us hammer the EHR's endpoint.
                if fresh:
                    return ()
                raise JwksError("jwks-unavailable", "refresh rate-limited")
            self._last_attempt[(owner, url)] = now
            host = urlsplit(url).hostname
            try:
                keys = self._fetch(url)
            except JwksError as exc:
                log.error(
                    "jwks fetch failed",
                    extra={"issuer": owner, "url_host": host, "reason": exc.reason},
                )
                raise JwksError("jwks-unavailable", exc.message) from None
            self._entries[(owner, url)] = _Entry(keys, now)
            log.info("jwks fetched", extra={"issuer": owner, "url_host": host, "count": len(keys)})
            return keys.get(kid, ())
