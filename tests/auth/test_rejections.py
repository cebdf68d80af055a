"""Every way a call must fail (docs/protocol.md, "Authentication"), on discovery, service and
feedback alike: 401 with the same generic OperationOutcome, the reason only in the log."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import responses
from cryptography.hazmat.primitives import serialization

from cds_service.cdshooks.jwks import parse_jwk_set

from .conftest import (
    EHR_ISSUER,
    EHR_KID,
    NOW,
    PATHS,
    assert_accepted,
    assert_rejected,
    b64,
    b64json,
    claims,
    ehr_client,
    failure_reasons,
    jwks_of,
    sign,
)

EHR_JWKS = "https://ehr.example.org/.well-known/jwks.json"


def test_no_header_in_production_is_401(harness, endpoint, auth_log):
    assert_rejected(harness.call(endpoint), auth_log, "missing-token")


def test_no_header_with_anonymous_allowed_is_accepted(make_harness, ec_key, endpoint, auth_log):
    harness = make_harness([ehr_client(ec_key)], anonymous=True)
    assert_accepted(harness.call(endpoint))
    assert any(r.msg == "anonymous call accepted" for r in auth_log.records)


def test_anonymous_calls_are_counted_and_logged_once_per_process(make_harness, auth_log):
    counted = []
    harness = make_harness([], anonymous=True)
    harness.authenticator.on_anonymous = lambda: counted.append(1)
    for _ in range(3):
        assert_accepted(harness.call("service"))
    warnings = [r for r in auth_log.records if r.msg == "anonymous call accepted"]
    assert len(warnings) == 1 and len(counted) == 3
    assert harness.authenticator.anonymous_calls == 3
    # One line per call: the invocation event, which says no issuer vouched for it.
    invocations = [r for r in auth_log.records if r.msg == "invocation"]
    assert len(invocations) == 3 and all(r.issuer is None for r in invocations)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "bearer not-a-jwt",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.sig extra",
        "Token eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln",
        "Bearer " + "a" * 20000 + ".b.c",
    ],
)
def test_malformed_header_is_401(harness, endpoint, auth_log, authorization):
    response = harness.call(endpoint, authorization=authorization)
    assert_rejected(response, auth_log, "malformed-header")


def test_undecodable_token_is_401(harness, endpoint, auth_log):
    token = "eyJub3QganNvbg.eyJub3QganNvbg.c2ln"
    assert_rejected(harness.call(endpoint, token), auth_log, "malformed-token", token)


def test_alg_none_is_401(harness, endpoint, auth_log):
    header = {"alg": "none", "typ": "JWT", "kid": EHR_KID}
    token = f"{b64json(header)}.{b64json(claims(PATHS[endpoint]))}."
    assert_rejected(harness.call(endpoint, token), auth_log, "alg-not-allowed", token)


@pytest.mark.parametrize("alg, digest", [("HS256", hashlib.sha256), ("HS384", hashlib.sha384)])
def test_hmac_signed_with_the_public_key_as_secret_is_401(
    harness, ec_key, endpoint, auth_log, alg, digest
):
    """The RS/HS key-confusion trick: the attacker signs with the (public) key as an HMAC
    secret, hoping the verifier feeds that same key to HMAC."""
    pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": alg, "typ": "JWT", "kid": EHR_KID}
    signing_input = f"{b64json(header)}.{b64json(claims(PATHS[endpoint]))}"
    token = f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), digest).digest())}"
    assert_rejected(harness.call(endpoint, token), auth_log, "alg-not-allowed", token)


def test_wrong_signature_is_401(harness, other_ec_key, endpoint, auth_log):
    token = sign(other_ec_key, claims(PATHS[endpoint]))  # the right kid, another key
    assert_rejected(harness.call(endpoint, token), auth_log, "bad-signature", token)


def test_tampered_payload_is_401(harness, ec_key, endpoint, auth_log):
    header, _, signature = sign(ec_key, claims(PATHS[endpoint])).split(".")
    token = f"{header}.{b64json(claims(PATHS[endpoint], sub='admin'))}.{signature}"
    assert_rejected(harness.call(endpoint, token), auth_log, "bad-signature", token)


def test_unknown_kid_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint]), kid="some-other-key")
    assert_rejected(harness.call(endpoint, token), auth_log, "unknown-kid", token)


def test_missing_kid_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint]), kid=None)
    assert_rejected(harness.call(endpoint, token), auth_log, "missing-kid", token)


@pytest.mark.parametrize("typ", ["", "at+jwt", "JWS"])  # "": PyJWT then leaves typ out
def test_typ_other_than_jwt_is_401(harness, ec_key, endpoint, auth_log, typ):
    token = sign(ec_key, claims(PATHS[endpoint]), typ=typ)
    assert_rejected(harness.call(endpoint, token), auth_log, "bad-typ", token)


def test_untrusted_issuer_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], iss="https://evil.example.net"))
    assert_rejected(harness.call(endpoint, token), auth_log, "untrusted-issuer", token)


def test_jku_not_on_the_allowlist_is_401_and_never_fetched(
    make_harness, ec_key, endpoint, auth_log, no_network
):
    evil = "https://evil.example.net/jwks.json"
    fetch_evil = no_network.add(responses.GET, evil, json=jwks_of((ec_key, EHR_KID)))
    fetch_own = no_network.add(responses.GET, EHR_JWKS, json=jwks_of((ec_key, EHR_KID)))
    harness = make_harness(
        [
            ehr_client(
                ec_key,
                keys=None,
                jwks_url=EHR_JWKS,
                jku_allowlist=("https://ehr.example.org/jwks-2.json",),
            )
        ]
    )
    token = sign(ec_key, claims(PATHS[endpoint]), jku=evil)
    assert_rejected(harness.call(endpoint, token), auth_log, "jku-not-allowed", token)
    assert fetch_evil.call_count == 0
    assert fetch_own.call_count == 0
    assert len(no_network.calls) == 0


def test_jku_on_an_inline_client_without_allowlist_is_401(
    harness, ec_key, endpoint, auth_log, no_network
):
    token = sign(ec_key, claims(PATHS[endpoint]), jku="https://ehr.example.org/jwks.json")
    assert_rejected(harness.call(endpoint, token), auth_log, "jku-not-allowed", token)
    assert len(no_network.calls) == 0


def test_wrong_audience_is_401(harness, ec_key, endpoint, auth_log):
    aud = "https://other-cds.example.net" + PATHS[endpoint]
    token = sign(ec_key, claims(PATHS[endpoint], aud=aud))
    assert_rejected(harness.call(endpoint, token), auth_log, "wrong-audience", token)


@pytest.mark.parametrize("aud", ["http://cds.example.org/b12", "https://cds.example.org"])
def test_audience_with_another_scheme_or_without_the_base_path_is_401(
    harness, ec_key, endpoint, auth_log, aud
):
    token = sign(ec_key, claims(PATHS[endpoint], aud=aud + PATHS[endpoint]))
    assert_rejected(harness.call(endpoint, token), auth_log, "wrong-audience", token)


OTHER_ENDPOINT = {"discovery": "service", "service": "feedback", "feedback": "service"}


def test_audience_of_another_endpoint_of_this_service_is_401(harness, ec_key, endpoint, auth_log):
    """A token minted for one endpoint cannot be replayed on another."""
    token = sign(ec_key, claims(PATHS[OTHER_ENDPOINT[endpoint]]))
    assert_rejected(harness.call(endpoint, token), auth_log, "wrong-audience", token)


def test_audience_of_another_service_is_401(harness, ec_key, auth_log):
    token = sign(ec_key, claims("/cds-services/b12-order-sign"))
    assert_rejected(harness.call("service", token), auth_log, "wrong-audience", token)


def test_expired_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], now=NOW - 361))  # exp = NOW - 61
    assert_rejected(harness.call(endpoint, token), auth_log, "expired", token)


def test_expired_within_the_60_second_leeway_is_accepted(harness, ec_key, endpoint):
    assert_accepted(harness.call(endpoint, sign(ec_key, claims(PATHS[endpoint], now=NOW - 330))))


def test_iat_in_the_future_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], now=NOW + 61))
    assert_rejected(harness.call(endpoint, token), auth_log, "iat-in-future", token)


def test_iat_in_the_future_within_the_leeway_is_accepted(harness, ec_key, endpoint):
    assert_accepted(harness.call(endpoint, sign(ec_key, claims(PATHS[endpoint], now=NOW + 59))))


def test_nbf_in_the_future_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], nbf=NOW + 120))
    assert_rejected(harness.call(endpoint, token), auth_log, "not-yet-valid", token)


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_missing_required_claim_is_401(harness, ec_key, endpoint, auth_log, claim):
    payload = claims(PATHS[endpoint])
    del payload[claim]
    token = sign(ec_key, payload)
    reason = "untrusted-issuer" if claim == "iss" else "missing-claim"
    assert_rejected(harness.call(endpoint, token), auth_log, reason, token)


def test_replayed_jti_is_401(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint]))
    assert_accepted(harness.call(endpoint, token))
    assert_rejected(harness.call(endpoint, token), auth_log, "replayed-jti", token)


def test_jti_of_a_rejected_token_is_not_used_up(harness, ec_key, endpoint):
    payload = claims(PATHS[endpoint])
    rejected = harness.call(endpoint, sign(ec_key, {**payload, "aud": "https://x.example"}))
    assert rejected.status_code == 401
    assert_accepted(harness.call(endpoint, sign(ec_key, payload)))


def test_same_jti_from_another_issuer_is_not_a_replay(make_harness, ec_key, other_ec_key, endpoint):
    other = ehr_client(other_ec_key, issuer="https://other-ehr.example.org")
    harness = make_harness([ehr_client(ec_key), other])
    payload = claims(PATHS[endpoint])
    assert_accepted(harness.call(endpoint, sign(ec_key, payload)))
    assert_accepted(harness.call(endpoint, sign(other_ec_key, {**payload, "iss": other.issuer})))


@pytest.mark.parametrize("tenant", ["hospital-b", None, ["hospital-a"]])
def test_tenant_not_allowed_is_401(make_harness, ec_key, endpoint, auth_log, tenant):
    harness = make_harness([ehr_client(ec_key, tenants=("hospital-a",))])
    token = sign(ec_key, claims(PATHS[endpoint], tenant=tenant))
    assert_rejected(harness.call(endpoint, token), auth_log, "tenant-not-allowed", token)


def test_allowed_tenant_is_accepted(make_harness, ec_key, endpoint):
    harness = make_harness([ehr_client(ec_key, tenants=("hospital-a",))])
    token = sign(ec_key, claims(PATHS[endpoint], tenant="hospital-a"))
    assert_accepted(harness.call(endpoint, token))


def test_algorithm_not_on_the_clients_allowlist_is_401(make_harness, ec_key, endpoint, auth_log):
    harness = make_harness([ehr_client(ec_key, algorithms=("RS384",))])
    token = sign(ec_key, claims(PATHS[endpoint]))
    assert_rejected(harness.call(endpoint, token), auth_log, "alg-not-allowed", token)


def test_es256_is_refused_by_default(make_harness, endpoint, auth_log):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    keys = parse_jwk_set(jwks_of((key, EHR_KID)), strict=True)
    harness = make_harness([ehr_client(key, keys=keys)])
    token = sign(key, claims(PATHS[endpoint]), alg="ES256")
    assert_rejected(harness.call(endpoint, token), auth_log, "alg-not-allowed", token)


def test_key_of_another_family_than_alg_is_401(make_harness, rsa_key, ec_key, endpoint, auth_log):
    """An RS384 token naming an EC key's kid: the key never reaches the RSA verifier."""
    harness = make_harness([ehr_client(ec_key)])
    token = sign(rsa_key, claims(PATHS[endpoint]), alg="RS384")
    assert_rejected(harness.call(endpoint, token), auth_log, "key-alg-mismatch", token)


@pytest.mark.parametrize("crit", [["exp"], ["b64"]])
def test_crit_header_is_401(harness, ec_key, endpoint, auth_log, crit):
    """No extension is understood here, so none may be critical (RFC 7515, 4.1.11). PyJWT
    refuses most itself (malformed-token); the service refuses the rest (unsupported-crit)."""
    token = sign(ec_key, claims(PATHS[endpoint]), crit=crit)
    response = harness.call(endpoint, token)
    assert response.status_code == 401
    assert failure_reasons(auth_log)[-1] in ("malformed-token", "unsupported-crit")


def test_every_rejection_answers_the_same_body(harness, ec_key, other_ec_key):
    """The caller learns nothing about why: the reason is in the log only."""
    path = PATHS["service"]
    tokens = [
        sign(other_ec_key, claims(path)),
        sign(ec_key, claims(path), kid="nope"),
        sign(ec_key, claims(path, iss="https://evil.example.net")),
        sign(ec_key, claims(path, now=NOW - 1000)),
    ]
    bodies = {harness.call("service", t).get_data() for t in tokens}
    assert len(bodies) == 1


def test_issuer_is_matched_exactly(make_harness, ec_key, endpoint, auth_log):
    harness = make_harness([ehr_client(ec_key)])
    token = sign(ec_key, claims(PATHS[endpoint], iss=EHR_ISSUER + "/"))
    assert_rejected(harness.call(endpoint, token), auth_log, "untrusted-issuer", token)
