"""EHR authentication: the CDS Hooks JWT on discovery, service and feedback calls.

docs/protocol.md, "Authentication" (CDS Hooks 2.0.1, "Trusting CDS Clients"), checked in order:

1. ``Authorization: Bearer <JWT>``; no header is accepted only when anonymous calls are
   allowed (development, or CDS_ALLOW_ANONYMOUS=1); a header that is there is always checked.
2. header: ``alg`` on the allowlist (never ``none``, never HMAC), ``typ`` JWT, ``kid``, no
   ``crit``; ``jku`` only if on the issuer's allowlist (rejected before anything is fetched).
3. ``iss`` is a trusted client; its key (``kid``) comes from that client's configured JWKS and
   must fit ``alg`` (family and curve): a public key is never handed to an HMAC verifier.
   A ``jku`` on the client's published jku list (``jku_list_url``, Oracle Health) is allowed
   too; the list is fetched from the configured URL, never from the token.
4. signature; ``aud`` equals the URL called as seen from outside (CDS_PUBLIC_BASE_URL + path),
   or one of the client's configured ``audiences`` (Epic configures one per client);
   ``exp``/``iat``/``nbf`` with ``LEEWAY_S`` of leeway; a lifetime (``exp - iat``) of at most
   ``CDS_JWT_MAX_LIFETIME_S`` and an ``iat`` no older than that; ``tenant`` allowlist; ``jti``
   a short printable string not seen before (``replay.py``: this process's memory, then the
   shared store within its deadline; kept until ``exp`` + leeway). Extra claims (``sub``, ``nbf``)
   are fine.

Every failure is the same generic 401 for the caller; the reason (a stable code such as
``bad-signature`` or ``replayed-jti``) goes to the log, never the token.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn
from urllib.parse import urlsplit

import jwt
from jwt.utils import base64url_decode

from cds_service.storage import Store

from .clients import TrustedClient
from .errors import Unauthorized
from .jkulist import JkuListCache
from .jwks import SUPPORTED_ALGORITHMS, JwksCache, JwksError, PublicKey
from .replay import Replayed, ReplayGuard

log = logging.getLogger("cds_service.auth")

DEFAULT_ALGORITHMS = ("ES384", "RS384")
LEEWAY_S = 60
#: The longest lifetime a token may claim (CDS_JWT_MAX_LIFETIME_S). The specification asks
#: clients for about 5 minutes; Epic issues up to 15.
MAX_LIFETIME_S = 3600
MAX_TOKEN_CHARS = 16 * 1024
#: A jti goes into the replay store: short, printable, no control characters.
MAX_JTI_CHARS = 256
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class AuthConfigError(ValueError):
    """The authentication settings are inconsistent; the message names the setting."""


@dataclass(frozen=True)
class AuthenticatedClient:
    """Who called, as far as the service needs to know (no token, no raw claims)."""

    issuer: str
    #: The fhirServer prefixes the prefetch fallback may call for this client; None: the
    #: global CDS_FHIR_ALLOWLIST applies.
    fhir_servers: tuple[str, ...] | None = None
    tenant: str | None = None
    subject: str | None = None
    #: The client's configuration (profile, capabilities, order codes, link hosts): how the
    #: answer is shaped for it (``cards.shape``). None only for clients built by hand in tests.
    trusted: TrustedClient | None = None


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(value: Any) -> bool:
    # json.loads reads NaN and Infinity: a NaN exp would pass every comparison.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def check_algorithms(
    algorithms: Sequence[str], setting: str = "CDS_JWT_ALGORITHMS"
) -> tuple[str, ...]:
    if not algorithms:
        raise AuthConfigError(f"{setting}: list at least one algorithm")
    for alg in algorithms:
        if alg not in SUPPORTED_ALGORITHMS:
            raise AuthConfigError(
                f"{setting}: {alg!r} is not accepted; choose from {', '.join(SUPPORTED_ALGORITHMS)}"
                " (never 'none' or an HMAC algorithm)"
            )
    return tuple(algorithms)


class Authenticator:
    def __init__(
        self,
        clients: Sequence[TrustedClient] = (),
        *,
        store: Store | None = None,
        allow_anonymous: bool = False,
        public_bases: Sequence[str] = (),
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        jwks: JwksCache | None = None,
        jku_lists: JkuListCache | None = None,
        clock: Callable[[], float] = time.time,
        leeway_s: int = LEEWAY_S,
        on_failure: Callable[[str], None] | None = None,
        replay_store_unavailable: str = "accept",
        on_anonymous: Callable[[], None] | None = None,
        max_lifetime_s: int = MAX_LIFETIME_S,
    ) -> None:
        self.clients = {c.issuer: c for c in clients}
        if len(self.clients) != len(clients):
            raise AuthConfigError("CDS_TRUSTED_CLIENTS: an issuer is listed twice")
        self.algorithms = check_algorithms(algorithms)
        for client in clients:
            if client.algorithms is not None:
                check_algorithms(client.algorithms, f"CDS_TRUSTED_CLIENTS ({client.issuer})")
        self.store = store
        #: The jti check (``replay.py``); ``replay_store_unavailable`` is accept | refuse.
        self.replay = ReplayGuard(store, unavailable=replay_store_unavailable)
        self.allow_anonymous = allow_anonymous
        self.public_bases = tuple(b.rstrip("/") for b in public_bases)
        self.jwks = jwks or JwksCache()
        self.jku_lists = jku_lists or JkuListCache()
        self.clock = clock
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s
        #: Called with the reason code of each refusal: the metrics hook (web/metrics.py).
        self.on_failure = on_failure
        #: Called for each accepted anonymous call (the metrics' counter); the warning is
        #: logged once per process (per worker), not once per call.
        self.on_anonymous = on_anonymous
        self.anonymous_calls = 0

    def audiences(self, path: str, request_base: str | None) -> tuple[str, ...]:
        """The URL(s) a token must be addressed to. Without CDS_PUBLIC_BASE_URL (allowed in
        development only, see bootstrap) the request's own host URL is used."""
        bases = self.public_bases or ((request_base.rstrip("/"),) if request_base else ())
        return tuple(base + path for base in bases)

    def authenticate(
        self, authorization: str | None, *, path: str, request_base: str | None = None
    ) -> AuthenticatedClient | None:
        """The verified client, None for an accepted anonymous call, or Unauthorized."""
        if authorization is None:
            if self.allow_anonymous:
                self.anonymous_calls += 1
                if self.anonymous_calls == 1:
                    log.warning("anonymous call accepted", extra={"path": path})
                if self.on_anonymous is not None:
                    self.on_anonymous()
                return None
            self._fail("missing-token", path, {})
        context: dict[str, Any] = {}
        try:
            client = self._verify(authorization, self.audiences(path, request_base), context)
        except _Rejected as rejected:
            self._fail(rejected.reason, path, context)
        # Debug only: the invocation and feedback events name the issuer (one line per call).
        log.debug("authenticated", extra={"path": path, "issuer": client.issuer})
        return client

    def _fail(self, reason: str, path: str, context: dict[str, Any]) -> NoReturn:
        # An outage on our side is an error; a bad token is only a warning.
        outage = reason in ("jwks-unavailable", "jku-list-unavailable", "replay-store-unavailable")
        level = logging.ERROR if outage else logging.WARNING
        log.log(level, "authentication failed", extra={"reason": reason, "path": path, **context})
        if self.on_failure is not None:
            try:
                self.on_failure(reason)
            except Exception:  # a metrics hook must not turn a 401 into a 500
                log.error("auth failure hook failed", extra={"reason": reason})
        raise Unauthorized() from None

    # -- the checks, in docs/protocol.md order ---------------------------------------------------
    def _verify(
        self, authorization: str, audiences: tuple[str, ...], context: dict[str, Any]
    ) -> AuthenticatedClient:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or len(token) > MAX_TOKEN_CHARS:
            raise _Rejected("malformed-header")
        if not _TOKEN.fullmatch(token):
            raise _Rejected("malformed-header")
        # Header and claims read once, unverified, to find the key; ``jwt.decode`` below
        # verifies the signature and the claims. Not ``jwt.get_unverified_header``: it checks
        # the alphabet ``_TOKEN`` has just checked, one character at a time, as ``decode``
        # does again.
        encoded_header, encoded_payload, _ = token.split(".")
        try:
            header = json.loads(base64url_decode(encoded_header))
            payload = json.loads(base64url_decode(encoded_payload))
        except ValueError:  # also binascii.Error and UnicodeDecodeError
            raise _Rejected("malformed-token") from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise _Rejected("malformed-token")
        alg, kid, jku = header.get("alg"), header.get("kid"), header.get("jku")
        issuer = payload.get("iss")
        context.update(alg=_short(alg, 20), kid=_short(kid, 100), issuer=_short(issuer))

        if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
            # "none" and every HS* end here, before any key is looked up; the client's own
            # allowlist (or CDS_JWT_ALGORITHMS) is checked once the issuer is known.
            raise _Rejected("alg-not-allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise _Rejected("bad-typ")
        if not isinstance(kid, str) or not kid:
            raise _Rejected("missing-kid")
        if "crit" in header:
            raise _Rejected("unsupported-crit")
        if jku is not None and not isinstance(jku, str):
            raise _Rejected("malformed-token")

        client = self.clients.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise _Rejected("untrusted-issuer")
        if alg not in self.algorithms_for(client):
            raise _Rejected("alg-not-allowed")
        if jku is not None and not self._jku_allowed(client, jku):
            context["jku"] = _short(jku)
            raise _Rejected("jku-not-allowed")
        if jku is None and client.keys is None and client.jwks_url is None:
            raise _Rejected("missing-jku")  # keys come only from the published jku list
        key = self._key(client, kid, alg, jku)

        # Besides the URL called, the client's configured audiences (Epic sets one per client).
        audiences = audiences + tuple(a for a in client.audiences if a not in audiences)
        if not audiences:
            raise _Rejected("audience-unknown")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=client.issuer,
                options={
                    "require": REQUIRED_CLAIMS,
                    # Time is checked below against the injectable clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise _Rejected("bad-signature") from None
        except jwt.InvalidAudienceError:
            raise _Rejected("wrong-audience") from None
        except jwt.MissingRequiredClaimError:
            raise _Rejected("missing-claim") from None
        except jwt.InvalidIssuerError:
            raise _Rejected("untrusted-issuer") from None
        except jwt.InvalidKeyError:
            raise _Rejected("key-alg-mismatch") from None
        except jwt.PyJWTError:
            raise _Rejected("invalid-token") from None

        now = self.clock()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
        if not _number(exp) or not _number(iat) or (nbf is not None and not _number(nbf)):
            raise _Rejected("malformed-claims")
        # A bounded lifetime bounds the replay store too (a jti is kept until exp). Checked
        # before expiry, so that an ancient or hoarded token says so in the log.
        if exp - iat > self.max_lifetime_s:
            raise _Rejected("lifetime-too-long")
        if iat < now - self.max_lifetime_s - self.leeway_s:
            raise _Rejected("iat-too-old")
        if exp <= now - self.leeway_s:
            raise _Rejected("expired")
        if iat > now + self.leeway_s:
            raise _Rejected("iat-in-future")
        if nbf is not None and nbf > now + self.leeway_s:
            raise _Rejected("not-yet-valid")
        if exp < iat:
            raise _Rejected("malformed-claims")

        tenant = claims.get("tenant")
        if client.tenants is not None and tenant not in client.tenants:
            raise _Rejected("tenant-not-allowed")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise _Rejected("missing-claim")
        if len(jti) > MAX_JTI_CHARS or not jti.isprintable():
            # Refused here, not by the database: NUL breaks PostgreSQL text, and a data error
            # must not be reported as a replay store outage.
            raise _Rejected("malformed-jti")
        # Last, so that tokens failing any other check cannot use up jti values.
        self._remember(client.issuer, jti, exp, now)
        return AuthenticatedClient(
            issuer=client.issuer,
            fhir_servers=client.fhir_servers,
            tenant=tenant if isinstance(tenant, str) else None,
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
            trusted=client,
        )

    def _jku_allowed(self, client: TrustedClient, jku: str) -> bool:
        """On the client's static allowlist, or on its published jku list (fetched from the
        configured list URL, never from the token)."""
        if client.allows_jku(jku):
            return True
        if client.jku_list_url is None or client.keys is not None:
            return False
        try:
            if urlsplit(jku).scheme != "https":
                return False
        except ValueError:
            return False
        try:
            return self.jku_lists.allows(client.issuer, client.jku_list_url, jku)
        except JwksError as exc:
            raise _Rejected(exc.reason) from None

    def algorithms_for(self, client: TrustedClient | None) -> tuple[str, ...]:
        if client is not None and client.algorithms is not None:
            return client.algorithms
        return self.algorithms

    def _key(self, client: TrustedClient, kid: str, alg: str, jku: str | None) -> PublicKey:
        if client.keys is not None:
            candidates = client.keys.get(kid, ())  # pinned: nothing is fetched
        else:
            url = jku or client.jwks_url
            if url is None:  # refused before: no pinned keys, no jwks_url, no jku
                raise _Rejected("missing-jku")
            try:
                candidates = self.jwks.keys(client.issuer, url, kid)
            except JwksError as exc:
                raise _Rejected(exc.reason) from None
        if not candidates:
            raise _Rejected("unknown-kid")
        for key in candidates:
            if key.fits(alg):
                return key
        raise _Rejected("key-alg-mismatch")

    def _remember(self, issuer: str, jti: str, exp: float, now: float) -> None:
        """Replayed: 401. Shared store unavailable: accepted, or 503 ServiceUnavailable
        (``CDS_REPLAY_STORE_UNAVAILABLE``), never a 401."""
        try:
            datetime.fromtimestamp(exp + self.leeway_s, timezone.utc)
            datetime.fromtimestamp(now, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise _Rejected("malformed-claims") from None
        try:
            self.replay.check(issuer, jti, exp + self.leeway_s, now)
        except Replayed:
            raise _Rejected("replayed-jti") from None
