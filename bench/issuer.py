"""A test EHR for benchmarks and the soak: its own signing key (generated per run, never
written anywhere but a temporary directory), the trusted clients file that names it, and
CDS Hooks JWTs (ES384, as the public sandbox signs them) minted in bulk.

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

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://bench-ehr.example.org"
KID = "bench-key-1"
ALGORITHM = "ES384"
#: The longest lifetime the service accepts by default (CDS_JWT_MAX_LIFETIME_S); pools are
#: minted per measurement, each far shorter. The service keeps each jti until exp + 60 s.
LIFETIME_S = 3600


class TestIssuer:
    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        self._pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwks(self) -> dict:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": ALGORITHM}]}

    def write_clients_file(self, directory: Path, **client: object) -> Path:
        """A CDS_TRUSTED_CLIENTS file with this issuer and its public key inline (pinned)."""
        path = Path(directory) / "trusted-clients.json"
        entry = {"issuer": ISSUER, "jwks": self.jwks(), **client}
        path.write_text(json.dumps({"clients": [entry]}), encoding="utf-8")
        return path

    def token(self, audience: str, *, now: float | None = None) -> str:
        return _sign(self.key, audience, now if now is not None else time.time())

    def mint_pool(self, audience: str, count: int, *, processes: int | None = None) -> list[str]:
        """``count`` single-use tokens for ``audience`` (the exact URL they will be sent to)."""
        if count <= 0:
            return []
        now = time.time()
        processes = processes or os.cpu_count() or 1
        if count < 2000 or processes == 1:
            return [_sign(self.key, audience, now) for _ in range(count)]
        chunks = [count // processes + (i < count % processes) for i in range(processes)]
        with ProcessPoolExecutor(processes) as pool:
            parts = pool.map(_sign_many, [(self._pem, audience, now, n) for n in chunks])
            return [token for part in parts for token in part]


def _sign(key: ec.EllipticCurvePrivateKey, audience: str, now: float) -> str:
    payload = {
        "iss": ISSUER,
        "aud": audience,
        "iat": int(now),
        "exp": int(now) + LIFETIME_S,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": KID, "typ": "JWT"})


def _sign_many(job: tuple[bytes, str, float, int]) -> list[str]:
    pem, audience, now, count = job
    key = serialization.load_pem_private_key(pem, None)
    return [_sign(key, audience, now) for _ in range(count)]  # type: ignore[arg-type]
