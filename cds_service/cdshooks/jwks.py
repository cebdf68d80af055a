"""JSON Web Key Sets: parsed into public keys, fetched only from configured URLs, cached.

docs/protocol.md, "Authentication": the key comes from the client's configured JWKS (inline or
URL); a URL is never fetched because a token named it (``auth`` checks a token's ``jku``
against the client's allowlist before asking here). A set is refreshed when a token names an
unknown ``kid`` (key rotation: seconds, not minutes) or when it is older than ``max_age_s`` (a
removed key stops working once the endpoint says so), at most once per ``refresh_interval_s``
per client and URL.

A key server cannot stall a worker: the fetch has one deadline for the whole transfer
(connect, headers and every read of the body, so a server dripping bytes is cut off like a
silent one); it runs in a thread of its own, outside any lock, one at a time per client and
URL, and every call waiting for it waits at most until that same deadline. When a refresh
fails, the keys already fetched keep being served (an outage of the EHR's key endpoint must
not stop its calls); with no keys yet, the call is refused (401 ``jwks-unavailable``).

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
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
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
#: How long a call whose key is in an aged set waits for the set's refresh before it is
#: served from the cache (a removed key is refused as soon as the endpoint answers).
STALE_WAIT_S = 1.0
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
    key: EllipticCurvePublicKey | RSAPublicKey  # never a str or bytes: no HMAC confusion

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
    parsed: object
    try:
        if kty == "EC":
            crv = jwk.get("crv")
            if crv not in CURVES.values():
                raise JwksError("unsupported-key", f"{kid}: curve {crv!r} is not P-256 or P-384")
            parsed = ECAlgorithm.from_jwk(dict(jwk))
        elif kty == "RSA":
            crv = None
            parsed = RSAAlgorithm.from_jwk(dict(jwk))
            if isinstance(parsed, RSAPublicKey) and parsed.key_size < MIN_RSA_BITS:
                raise JwksError("weak-key", f"{kid}: RSA keys need at least {MIN_RSA_BITS} bits")
        else:
            raise JwksError("unsupported-key", f"{kid}: kty {kty!r} is not EC or RSA")
    except (PyJWTError, ValueError, TypeError, KeyError):
        raise JwksError("bad-jwk", f"{kid}: not a valid {kty} public key") from None
    # The private fields were refused above; checked on the parsed key too, so that only a
    # public key can ever reach a verifier.
    if not isinstance(parsed, (EllipticCurvePublicKey, RSAPublicKey)):
        raise JwksError("private-key", f"{kid}: private key material must never be configured")
    key = parsed
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


def fetch_jwks(url: str, deadline_s: float = DEADLINE_S) -> KeySet:
    """GET a configured JWKS URL (``fetch_bounded_json``) and read its keys."""
    return parse_jwk_set(fetch_bounded_json(url, deadline_s, "jwks"), strict=False)


def fetch_bounded_json(url: str, deadline_s: float = DEADLINE_S, what: str = "jwks") -> Any:
    """GET a configured URL (a JWKS, a published jku list): short timeouts, one deadline for
    the whole transfer, a size cap, no redirects (the configured URL is the one trusted).
    Failures are ``JwksError`` with the reasons ``<what>-unavailable`` / ``<what>-too-large``.

    The body is read with ``read1`` (whatever has arrived, up to 8 KB), so the deadline is
    checked after every read: a server sending a byte a second is cut off at the deadline,
    not when 8 KB have trickled in. A read that receives nothing ends at its read timeout;
    the caller's wait is bounded by the deadline in any case (``JwksCache``)."""
    unavailable, too_large = f"{what}-unavailable", f"{what}-too-large"
    started = time.monotonic()
    body = bytearray()

    def remaining() -> float:
        return deadline_s - (time.monotonic() - started)

    try:
        with requests.get(
            url,
            timeout=(min(CONNECT_TIMEOUT_S, deadline_s), min(READ_TIMEOUT_S, deadline_s)),
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise JwksError(unavailable, f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise JwksError(too_large, f"over {MAX_JWKS_BYTES} bytes")
            while True:
                if remaining() <= 0:
                    raise JwksError(unavailable, "too slow")
                chunk = response.raw.read1(8192, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError(too_large, f"over {MAX_JWKS_BYTES} bytes")
    except JwksError:
        raise
    except requests.RequestException as exc:
        raise JwksError(unavailable, type(exc).__name__) from None
    except Exception as exc:  # the raw reads raise the HTTP library's own errors
        raise JwksError(unavailable, type(exc).__name__) from None
    try:
        return json.loads(bytes(body))
    except ValueError:
        raise JwksError(unavailable, "not JSON") from None


@dataclass(frozen=True)
class _Entry:
    keys: KeySet
    fetched_at: float


class _Flight:
    """One fetch in progress: its waiters wait on ``done`` until ``deadline`` (monotonic)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.error: JwksError | None = None


class JwksCache:
    """Fetched key sets per (client, URL). Fetches are rate-limited per client and URL: a
    client's URLs are all configured (``jwks_url`` and its ``jku_allowlist``), so a client
    costs at most one fetch per URL per ``refresh_interval_s``, whatever its tokens say.

    ``clock`` (monotonic seconds, injectable for the tests) ages the sets and paces the
    refreshes; waiting for a fetch in flight is real time, at most ``deadline_s``."""

    def __init__(
        self,
        fetch: Callable[[str], KeySet] = fetch_jwks,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval_s: float = 10.0,
        max_age_s: float = 3600.0,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.refresh_interval_s = refresh_interval_s
        self.max_age_s = max_age_s
        self.deadline_s = deadline_s
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._last_attempt: dict[tuple[str, str], float] = {}
        self._flights: dict[tuple[str, str], _Flight] = {}
        self._guard = threading.Lock()

    def keys(self, owner: str, url: str, kid: str) -> tuple[PublicKey, ...]:
        """The keys named ``kid`` at ``url`` for client ``owner``; () if none. Raises
        JwksError(jwks-unavailable) when there is no key set to answer from."""
        slot = (owner, url)
        with self._guard:
            now = self._clock()
            entry = self._entries.get(slot)
            fresh = entry is not None and now - entry.fetched_at < self.max_age_s
            if fresh and entry is not None and kid in entry.keys:
                return entry.keys[kid]
            flight = self._flights.get(slot)
            if flight is None:
                last = self._last_attempt.get(slot)
                if last is not None and now - last < self.refresh_interval_s:
                    # Rate-limited: an unknown kid cannot make us hammer the EHR's endpoint.
                    return self._cached(entry, kid, "refresh rate-limited")
                self._last_attempt[slot] = now
                flight = _Flight(time.monotonic() + self.deadline_s)
                self._flights[slot] = flight
                threading.Thread(
                    target=self._run, args=(slot, flight), name="cds-jwks", daemon=True
                ).start()
        budget = flight.deadline - time.monotonic()
        if entry is not None and kid in entry.keys:
            budget = min(budget, STALE_WAIT_S)
        flight.done.wait(max(0.0, budget))
        with self._guard:
            entry = self._entries.get(slot)
            if flight.done.is_set() and flight.error is None and entry is not None:
                return entry.keys.get(kid, ())
        reason = flight.error.message if flight.error is not None else "too slow"
        return self._cached(entry, kid, reason)

    @staticmethod
    def _cached(entry: _Entry | None, kid: str, reason: str) -> tuple[PublicKey, ...]:
        """No fresh answer: the keys fetched before, if any (a refresh that failed keeps
        them); with none, jwks-unavailable."""
        if entry is None:
            raise JwksError("jwks-unavailable", reason)
        if kid in entry.keys:
            return entry.keys[kid]
        if reason == "refresh rate-limited":
            return ()  # the set is current; the kid is not in it
        raise JwksError("jwks-unavailable", reason)

    def _run(self, slot: tuple[str, str], flight: _Flight) -> None:
        owner, url = slot
        host = urlsplit(url).hostname
        try:
            keys = self._fetch(url)
        except JwksError as exc:
            flight.error = exc
            log.error(
                "jwks fetch failed",
                extra={"issuer": owner, "url_host": host, "reason": exc.reason},
            )
        except Exception as exc:  # never let a bug leave waiters hanging
            flight.error = JwksError("jwks-unavailable", type(exc).__name__)
            log.error("jwks fetch failed", extra={"issuer": owner, "url_host": host})
        else:
            with self._guard:
                self._entries[slot] = _Entry(keys, self._clock())
            log.info("jwks fetched", extra={"issuer": owner, "url_host": host, "count": len(keys)})
        finally:
            with self._guard:
                if self._flights.get(slot) is flight:
                    del self._flights[slot]
            flight.done.set()
