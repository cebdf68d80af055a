"""Key servers cannot stall a worker: a JWKS endpoint on loopback that drips its body a byte a
second, or accepts and never answers. The fetch's deadline covers the whole transfer; the
calls of that issuer wait at most that deadline, together (one fetch, not one each); another
issuer's calls are not held up; and keys fetched before keep being served when a refresh
fails."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bench import workloads
from bench.issuer import TestIssuer
from cds_service.bootstrap import build_app
from cds_service.cdshooks import jwks as jwks_module
from cds_service.cdshooks.jwks import JwksError, fetch_jwks

from .harness import BASE, CARDS_WITHIN_S, SIGN
from .keyserver import KeyServer

pytestmark = pytest.mark.integration

ISSUER = "https://dripping-ehr.example.org"
KID = "drip-key-1"
DEADLINE_S = 2.0  # the module's 5 s, shortened so the test runs in seconds
SLACK_S = 1.0


@pytest.fixture
def key():
    return ec.generate_private_key(ec.SECP384R1())


def jwks_for(key) -> dict:
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "ES384"}]}


@pytest.fixture
def service(tmp_path, monkeypatch, key):
    """The service with two trusted EHRs: one whose keys come from ``server`` (a KeyServer
    the test starts), one with pinned keys (the bench issuer)."""
    monkeypatch.setattr(jwks_module, "DEADLINE_S", DEADLINE_S)
    server = KeyServer(jwks_for(key), mode="serve")
    pinned = TestIssuer()
    clients = tmp_path / "clients.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {"issuer": ISSUER, "jwks_url": server.url},
                    {"issuer": "https://bench-ehr.example.org", "jwks": pinned.jwks()},
                ]
            }
        )
    )
    app = build_app(
        environ={
            "CDS_PROFILE": "production",
            "CDS_TRUSTED_CLIENTS": str(clients),
            "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
        }
    )
    authenticator = app.extensions["cds_auth"]
    authenticator.jwks.deadline_s = DEADLINE_S
    body = workloads.order_sign(folic_acid=True)

    def call(token: str) -> tuple[int, float]:
        started = time.monotonic()
        response = app.test_client().post(
            SIGN, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code, time.monotonic() - started

    def dripping_token() -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": BASE + SIGN, "iat": now, "exp": now + 300}
        claims["jti"] = str(uuid.uuid4())
        return jwt.encode(claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})

    yield server, authenticator, call, dripping_token, lambda: pinned.token(BASE + SIGN)
    server.close()


@pytest.mark.parametrize("mode", ["drip", "hang"])
def test_a_misbehaving_key_server_costs_its_issuer_one_deadline(service, mode):
    server, _, call, dripping_token, pinned_token = service
    server.mode = mode
    with ThreadPoolExecutor(6) as pool:
        stalled = [pool.submit(call, dripping_token()) for _ in range(4)]
        time.sleep(0.3)  # the fetch is under way
        others = [call(pinned_token()) for _ in range(3)]
        answers = [future.result() for future in stalled]
    assert [status for status, _ in answers] == [401] * 4
    assert max(elapsed for _, elapsed in answers) < DEADLINE_S + SLACK_S
    assert server.connections == 1  # the waiters shared one fetch
    assert [status for status, _ in others] == [200] * 3
    assert max(elapsed for _, elapsed in others) < CARDS_WITHIN_S


def test_cached_keys_are_served_while_a_refresh_drips(service):
    server, authenticator, call, dripping_token, _ = service
    status, _ = call(dripping_token())
    assert status == 200 and server.connections == 1
    server.mode = "drip"
    authenticator.jwks.max_age_s = 0  # the set is due for a refresh at once
    authenticator.jwks.refresh_interval_s = 0
    answers = [call(dripping_token()) for _ in range(3)]
    assert [status for status, _ in answers] == [200] * 3
    assert max(elapsed for _, elapsed in answers) < CARDS_WITHIN_S
    assert server.connections == 2  # one refresh in flight at a time


def test_the_fetch_deadline_covers_a_dripping_body(key):
    server = KeyServer(jwks_for(key), mode="drip")
    try:
        started = time.monotonic()
        with pytest.raises(JwksError) as raised:
            fetch_jwks(server.url, deadline_s=DEADLINE_S)
        assert raised.value.reason == "jwks-unavailable"
        assert time.monotonic() - started < DEADLINE_S + SLACK_S
    finally:
        server.close()


def test_a_published_jku_list_that_drips_is_cut_off_at_the_same_deadline(key, monkeypatch):
    """Oracle Health's jku list is fetched with the JWKS limits: one deadline for the whole
    transfer, not a check between 8 KB chunks."""
    from cds_service.cdshooks import jkulist

    monkeypatch.setattr(jkulist, "DEADLINE_S", DEADLINE_S)
    server = KeyServer({"jku": ["https://ehr.example.org/jwks"], "pad": "x" * 1800}, mode="drip")
    try:
        started = time.monotonic()
        with pytest.raises(JwksError) as raised:
            jkulist.fetch_jku_list(server.url)
        assert raised.value.reason == "jku-list-unavailable"
        assert time.monotonic() - started < DEADLINE_S + SLACK_S
    finally:
        server.close()
