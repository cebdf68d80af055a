"""Fixtures for EHR authentication: keys generated per test session (no private key is ever
committed), tokens shaped like the real issuers', an app per test with a fixed clock, and the
three CDS Hooks endpoints to run every case on."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_service.cdshooks.auth import DEFAULT_ALGORITHMS, Authenticator
from cds_service.cdshooks.clients import TrustedClient
from cds_service.cdshooks.jwks import JwksCache, parse_jwk_set
from cds_service.config import load_settings
from cds_service.logs import JsonFormatter
from cds_service.web import create_app
from tests.conftest import sandbox_request
from tests.test_conformance import assert_outcome

#: The clock of every test, in epoch seconds (2027-01-15T08:00:00Z).
NOW = 1_800_000_000
BASE = "https://cds.example.org/b12"
ORIGIN = "https://sandbox.cds-hooks.org"  # the browser origin of the EHR's CDS client

EHR_ISSUER = "https://ehr.example.org"
EHR_KID = "ehr-key-1"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
EPIC_ISSUER = "https://fhir.epic.example.org/interconnect-fhir-oauth"
EPIC_JWKS = (
    "https://fhir.epic.example.org/interconnect-fhir-oauth"
    "/api/epic/2019/Security/Open/PublicKeys/530005/OAuth2"
)
EPIC_KID = "epic-rsa-1"

PATHS = {
    "discovery": "/cds-services",
    "service": "/cds-services/b12-patient-view",
    "feedback": "/cds-services/b12-patient-view/feedback",
}


@pytest.fixture(scope="session")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def other_ec_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key, kid: str, **extra) -> dict:
    algorithm = (
        jwt.algorithms.ECAlgorithm
        if isinstance(private_key, ec.EllipticCurvePrivateKey)
        else jwt.algorithms.RSAAlgorithm
    )
    jwk = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", **extra}


def jwks_of(*pairs) -> dict:
    return {"keys": [public_jwk(key, kid) for key, kid in pairs]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(data: dict) -> str:
    return b64(json.dumps(data, separators=(",", ":")).encode())


def claims(
    path: str, *, iss: str = EHR_ISSUER, lifetime: int = 300, now: int = NOW, **extra
) -> dict:
    """The sandbox's claim set: iss, aud, exp = iat + 300, iat, jti."""
    body = {
        "iss": iss,
        "aud": BASE + path,
        "exp": now + lifetime,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def sign(
    private_key, payload: dict, *, alg: str = "ES384", kid: str | None = EHR_KID, **header
) -> str:
    headers = {"kid": kid, **header}
    return jwt.encode(
        payload,
        private_key,
        algorithm=alg,
        headers={k: v for k, v in headers.items() if v is not None},
    )


def ehr_client(ec_key, **overrides) -> TrustedClient:
    values = {"issuer": EHR_ISSUER, "keys": parse_jwk_set(jwks_of((ec_key, EHR_KID)), strict=True)}
    values.update(overrides)
    return TrustedClient(**values)


class FakeClock:
    """Monotonic time for the JWKS cache's rate limit."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def monotonic():
    return FakeClock()


@dataclass
class Harness:
    http: object
    authenticator: Authenticator

    def call(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        authorization: str | None = None,
        path: str | None = None,
    ):
        headers = {"Origin": ORIGIN}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if authorization is not None:
            headers["Authorization"] = authorization
        url = path or PATHS[endpoint]
        if endpoint == "discovery":
            return self.http.get(url, headers=headers)
        body = sandbox_request("feedback" if endpoint == "feedback" else "patient-view")
        return self.http.post(url, json=body, headers=headers)


@pytest.fixture
def make_harness(tmp_path, core, store, monotonic):
    def make(
        clients=(),
        *,
        profile: str = "production",
        anonymous: bool = False,
        bases=(BASE,),
        algorithms=DEFAULT_ALGORITHMS,
        clock=lambda: NOW,
    ) -> Harness:
        settings = load_settings(
            {
                "CDS_PROFILE": profile,
                "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
                "CDS_CORS_ORIGINS": ORIGIN,
                "CDS_ALLOW_ANONYMOUS": "1" if anonymous else "0",
            }
        )
        authenticator = Authenticator(
            clients,
            store=store,
            allow_anonymous=anonymous or settings.development,
            public_bases=bases,
            algorithms=algorithms,
            jwks=JwksCache(clock=monotonic),
            clock=clock,
        )
        app = create_app(settings, core, authenticator=authenticator)
        return Harness(app.test_client(), authenticator)

    return make


@pytest.fixture
def harness(make_harness, ec_key):
    """Production profile, one trusted EHR with an inline P-384 key."""
    return make_harness([ehr_client(ec_key)])


@pytest.fixture(params=list(PATHS))
def endpoint(request):
    return request.param


@pytest.fixture
def auth_log(caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    return caplog


def failure_reasons(caplog) -> list[str]:
    return [r.reason for r in caplog.records if r.msg == "authentication failed"]


def assert_rejected(response, caplog, reason: str, token: str | None = None) -> None:
    """401, a generic OperationOutcome (the same for every reason), CORS kept, the reason in
    the log and the token nowhere in it."""
    issue = assert_outcome(response, 401, "unauthorized")
    assert issue["diagnostics"] == "Authentication failed."
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert failure_reasons(caplog)[-1] == reason
    if token:
        formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
        assert token not in formatted and token not in caplog.text
        signature = token.split(".")[-1]
        assert not signature or signature not in formatted


def assert_accepted(response) -> None:
    assert response.status_code == 200, response.get_json()
