"""Tokens that must pass, shaped exactly like the real issuers' (docs/protocol.md, "Known
issuers"), and the real captured sandbox tokens against the bundled sandbox key."""

from __future__ import annotations

import json
import logging
import uuid

import jwt
import pytest
import responses

from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.clients import SANDBOX_ISSUER, SANDBOX_JKU, TrustedClient, sandbox_client
from cds_service.cdshooks.errors import Unauthorized
from cds_service.cdshooks.jwks import parse_jwk_set
from tests.conftest import FIXTURES

from .conftest import (
    BASE,
    EHR_ISSUER,
    EHR_KID,
    EPIC_ISSUER,
    EPIC_JWKS,
    EPIC_KID,
    NOW,
    PATHS,
    SANDBOX_KID,
    assert_accepted,
    claims,
    ehr_client,
    jwks_of,
    sign,
)

CAPTURES = ("patient-view", "order-sign", "order-select", "feedback")


def sandbox_shaped(key, path: str) -> str:
    """Header alg/typ/kid/jku and claims iss/aud/exp/iat/jti, nothing more, exp = iat + 300."""
    payload = {
        "iss": SANDBOX_ISSUER,
        "aud": BASE + path,
        "exp": NOW + 300,
        "iat": NOW,
        "jti": str(uuid.uuid4()),
    }
    header = {"kid": SANDBOX_KID, "jku": SANDBOX_JKU}
    token = jwt.encode(payload, key, algorithm="ES384", headers=header)
    assert list(jwt.get_unverified_header(token)) == ["alg", "jku", "kid", "typ"]
    return token


def test_valid_es384_token_shaped_like_the_sandboxs_is_accepted(
    make_harness, ec_key, endpoint, no_network
):
    client = TrustedClient(
        issuer=SANDBOX_ISSUER,
        jku_allowlist=(SANDBOX_JKU,),
        keys=parse_jwk_set(jwks_of((ec_key, SANDBOX_KID)), strict=True),
    )
    harness = make_harness([client])
    assert_accepted(harness.call(endpoint, sandbox_shaped(ec_key, PATHS[endpoint])))
    assert len(no_network.calls) == 0  # inline keys are pinned: the jku is never fetched


def epic_shaped(key, path: str, *, now: int = NOW) -> str:
    """RS384, jku under the organisation's FHIR base, extra sub and nbf, 900 s lifetime."""
    payload = {
        "iss": EPIC_ISSUER,
        "sub": "d45049c3-3441-40ef-ab4d-b9cd86a17225",
        "aud": BASE + path,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 900,
    }
    return jwt.encode(payload, key, algorithm="RS384", headers={"kid": EPIC_KID, "jku": EPIC_JWKS})


def test_valid_rs384_token_shaped_like_epics_is_accepted(
    make_harness, rsa_key, endpoint, no_network
):
    jwks = no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, EPIC_KID)))
    harness = make_harness([TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS)])
    assert_accepted(harness.call(endpoint, epic_shaped(rsa_key, PATHS[endpoint])))
    assert_accepted(harness.call(endpoint, epic_shaped(rsa_key, PATHS[endpoint], now=NOW - 10)))
    assert jwks.call_count == 1  # cached


def test_epic_token_late_in_its_900_second_life_is_accepted(make_harness, rsa_key, no_network):
    no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, EPIC_KID)))
    harness = make_harness([TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS)])
    assert_accepted(harness.call("service", epic_shaped(rsa_key, PATHS["service"], now=NOW - 850)))


def test_allowlisted_jku_is_where_the_keys_come_from(make_harness, rsa_key, no_network):
    second = "https://fhir.epic.example.org/interconnect-fhir-oauth/keys-2"
    primary = no_network.add(responses.GET, EPIC_JWKS, json={"keys": []})
    alternate = no_network.add(responses.GET, second, json=jwks_of((rsa_key, EPIC_KID)))
    client = TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS, jku_allowlist=(second,))
    harness = make_harness([client])
    payload = claims(PATHS["service"], iss=EPIC_ISSUER)
    token = sign(rsa_key, payload, alg="RS384", kid=EPIC_KID, jku=second)
    assert_accepted(harness.call("service", token))
    assert (primary.call_count, alternate.call_count) == (0, 1)


@pytest.mark.parametrize("alg, curve", [("ES256", "P-256")])
def test_configured_es256_is_accepted(make_harness, endpoint, alg, curve):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    keys = parse_jwk_set(jwks_of((key, EHR_KID)), strict=True)
    harness = make_harness([ehr_client(key, keys=keys)], algorithms=("ES384", "RS384", alg))
    assert_accepted(harness.call(endpoint, sign(key, claims(PATHS[endpoint]), alg=alg)))


def test_ps384_is_accepted_when_configured_for_the_client(make_harness, rsa_key, endpoint):
    client = ehr_client(
        rsa_key, keys=parse_jwk_set(jwks_of((rsa_key, EHR_KID)), strict=True), algorithms=("PS384",)
    )
    harness = make_harness([client])
    assert_accepted(harness.call(endpoint, sign(rsa_key, claims(PATHS[endpoint]), alg="PS384")))


def test_aud_as_a_list_naming_this_endpoint_is_accepted(harness, ec_key, endpoint):
    token = sign(ec_key, claims(PATHS[endpoint], aud=[BASE + PATHS[endpoint]]))
    assert_accepted(harness.call(endpoint, token))


def test_any_configured_public_base_is_an_audience(make_harness, ec_key, endpoint):
    harness = make_harness([ehr_client(ec_key)], bases=("https://internal.example.org", BASE))
    assert_accepted(harness.call(endpoint, sign(ec_key, claims(PATHS[endpoint]))))
    other = claims(PATHS[endpoint], aud="https://internal.example.org" + PATHS[endpoint])
    assert_accepted(harness.call(endpoint, sign(ec_key, other)))


def test_the_authenticated_client_reaches_the_fallback(make_harness, ec_key, core, monkeypatch):
    """The client's fhir_servers decide where the prefetch fallback may fetch."""
    seen = {}
    original = core.invoke

    def spy(service_id, body, **kwargs):
        seen["client"] = kwargs.get("client")
        return original(service_id, body, **kwargs)

    monkeypatch.setattr(core, "invoke", spy)
    harness = make_harness([ehr_client(ec_key, fhir_servers=("https://ehr.example.org/fhir",))])
    token = sign(ec_key, claims(PATHS["service"], sub="cds-client-7", tenant="t1"))
    assert_accepted(harness.call("service", token))
    client = seen["client"]
    assert client.issuer == "https://ehr.example.org"
    assert client.fhir_servers == ("https://ehr.example.org/fhir",)
    assert (client.subject, client.tenant) == ("cds-client-7", "t1")
    assert "token" not in repr(client).lower()


def test_anonymous_call_reaches_the_fallback_without_a_client(make_harness, core, monkeypatch):
    seen = {}
    original = core.invoke

    def spy(service_id, body, **kwargs):
        seen["client"] = kwargs.get("client", "absent")
        return original(service_id, body, **kwargs)

    monkeypatch.setattr(core, "invoke", spy)
    assert_accepted(make_harness(profile="development").call("service"))
    assert seen["client"] is None


# --- the real sandbox ---------------------------------------------------------------------
def capture(name: str) -> dict:
    return json.loads((FIXTURES / "sandbox" / f"{name}.capture.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CAPTURES)
def test_bundled_sandbox_key_verifies_the_captured_sandbox_token(name, store, no_network):
    recorded = capture(name)
    payload = recorded["jwt_decoded"]["payload"]
    url = recorded["url"]
    base, _, path = url.partition("/cds-services")
    authenticator = Authenticator(
        [sandbox_client()], store=store, public_bases=(base,), clock=lambda: payload["iat"]
    )
    authorization = recorded["headers"]["Authorization"]
    client = authenticator.authenticate(authorization, path="/cds-services" + path)
    assert client.issuer == SANDBOX_ISSUER
    assert len(no_network.calls) == 0
    with pytest.raises(Unauthorized):  # and it is single-use
        authenticator.authenticate(authorization, path="/cds-services" + path)


@pytest.mark.parametrize("name", CAPTURES)
def test_captured_sandbox_token_is_expired_five_minutes_later(name, store):
    recorded = capture(name)
    payload = recorded["jwt_decoded"]["payload"]
    base, _, path = recorded["url"].partition("/cds-services")
    authenticator = Authenticator(
        [sandbox_client()], store=store, public_bases=(base,), clock=lambda: payload["exp"] + 61
    )
    authorization = recorded["headers"]["Authorization"]
    with pytest.raises(Unauthorized):
        authenticator.authenticate(authorization, path="/cds-services" + path)


def test_captured_sandbox_token_over_http_in_development(tmp_path, no_network):
    """``make run`` with the sandbox: the real token passes authentication (the capture
    called the sandbox's own test services, so the answer is then 404 unknown-service)."""
    from cds_service.bootstrap import build_app
    from cds_service.config import load_settings

    recorded = capture("patient-view")
    app = build_app(
        load_settings(
            {
                "CDS_PROFILE": "development",
                "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3",
            }
        )
    )
    app.extensions["cds_auth"].clock = lambda: recorded["jwt_decoded"]["payload"]["iat"]
    response = app.test_client().post(
        "/cds-services/harness-greeting",
        base_url="http://localhost:5005",
        headers={"Authorization": recorded["headers"]["Authorization"]},
        json=recorded["body"],
    )
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["details"]["coding"][0]["code"] == "unknown-service"
    assert len(no_network.calls) == 0


def test_an_invocation_with_a_token_writes_one_line_that_names_the_issuer(
    harness, ec_key, auth_log
):
    token = sign(ec_key, claims(PATHS["service"]))
    assert_accepted(harness.call("service", token))
    lines = [r for r in auth_log.records if r.levelno >= logging.INFO]
    assert [r.msg for r in lines] == ["invocation"]
    assert lines[0].issuer == EHR_ISSUER
