"""A test EHR for benchmarks and the soak: its own signing key (generated per run, never
written anywhere but a temporary directory), the trusted clients file that names it, and
CDS Hooks JWTs minted in bulk: ES384 (P-384, as the public sandbox signs them) by default, or
RS384 (RSA-2048, as Epic signs them) with ``TestIssuer("RS384")``.

Every token carries a fresh ``jti``: the service accepts each one once (replay protection),
so a load run needs one token per request. ``mint_pool`` signs them before the run, on every
core, so that signing never competes with the server being measured.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://bench-ehr.example.org"
KID = "bench-key-1"
ALGORITHM = "ES384"
#: The RS384 issuer is another EHR (its own issuer URL and key id), so that one trusted
#: clients file can hold both (``write_clients_file_for``).
RS384_ISSUER = "https://bench-ehr-rsa.example.org"
RS384_KID = "bench-rsa-key-1"
#: The longest lifetime the service accepts by default (CDS_JWT_MAX_LIFETIME_S); pools are
#: minted per measurement, each far shorter. The service keeps each jti until exp + leeway.
LIFETIME_S = 3600


class TestIssuer:
    __test__ = False  # not a pytest test class

    def __init__(self, algorithm: str = ALGORITHM) -> None:
        if algorithm not in ("ES384", "RS384"):
            raise ValueError(f"unsupported algorithm {algorithm}")
        self.algorithm = algorithm
        if algorithm == "RS384":
            self.issuer, self.kid = RS384_ISSUER, RS384_KID
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.issuer, self.kid = ISSUER, KID
            self.key = ec.generate_private_key(ec.SECP384R1())
        self._pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwks(self) -> dict:
        family = (
            jwt.algorithms.RSAAlgorithm if self.algorithm == "RS384" else jwt.algorithms.ECAlgorithm
        )
        jwk = family.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}]}

    def client_entry(self, **client: object) -> dict:
        return {"issuer": self.issuer, "jwks": self.jwks(), **client}

    def write_clients_file(self, directory: Path, **client: object) -> Path:
        """A CDS_TRUSTED_CLIENTS file with this issuer and its public key inline (pinned)."""
        return write_clients_file_for([self], directory, **client)

    def _job(self, audience: str, now: float) -> tuple[str, str, str, str, float]:
        return (self.algorithm, self.issuer, self.kid, audience, now)

    def token(self, audience: str, *, now: float | None = None) -> str:
        return _sign(self.key, self._job(audience, now if now is not None else time.time()))

    def mint_pool(self, audience: str, count: int, *, processes: int | None = None) -> list[str]:
        """``count`` single-use tokens for ``audience`` (the exact URL they will be sent to)."""
        if count <= 0:
            return []
        now = time.time()
        processes = processes or os.cpu_count() or 1
        job = self._job(audience, now)
        if count < 2000 or processes == 1:
            return [_sign(self.key, job) for _ in range(count)]
        chunks = [count // processes + (i < count % processes) for i in range(processes)]
        with ProcessPoolExecutor(processes) as pool:
            parts = pool.map(_sign_many, [(self._pem, job, n) for n in chunks])
            return [token for part in parts for token in part]


def write_clients_file_for(issuers: list[TestIssuer], directory: Path, **client: object) -> Path:
    """One CDS_TRUSTED_CLIENTS file trusting each of ``issuers`` (distinct issuer URLs)."""
    path = Path(directory) / "trusted-clients.json"
    entries = [issuer.client_entry(**client) for issuer in issuers]
    path.write_text(json.dumps({"clients": entries}), encoding="utf-8")
    return path


def _sign(key: Any, job: tuple[str, str, str, str, float]) -> str:
    algorithm, issuer, kid, audience, now = job
    payload = {
        "iss": issuer,
        "aud": audience,
        "iat": int(now),
        "exp": int(now) + LIFETIME_S,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


def _sign_many(work: tuple[bytes, tuple[str, str, str, str, float], int]) -> list[str]:
    pem, job, count = work
    key = serialization.load_pem_private_key(pem, None)
    return [_sign(key, job) for _ in range(count)]
