"""JWKS from configured URLs: cached, rotation picked up on an unknown kid, refreshes
rate-limited per client, and fail closed when the endpoint is down."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import rsa

from cds_service.cdshooks.clients import TrustedClient
from cds_service.cdshooks.jwks import MAX_JWKS_BYTES, JwksError, fetch_jwks, parse_jwk_set

from .conftest import (
    EPIC_ISSUER,
    EPIC_JWKS,
    PATHS,
    assert_accepted,
    assert_rejected,
    claims,
    failure_reasons,
    jwks_of,
    public_jwk,
    sign,
)


def epic_token(key, kid: str, endpoint: str = "service") -> str:
    return sign(key, claims(PATHS[endpoint], iss=EPIC_ISSUER), alg="RS384", kid=kid)


@pytest.fixture
def rotating(no_network):
    """The EHR's JWKS endpoint, serving whatever set the test puts in ``state["jwks"]``."""
    state = {"jwks": {"keys": []}, "calls": 0}

    def serve(request):
        state["calls"] += 1
        return 200, {"Content-Type": "application/json"}, json.dumps(state["jwks"])

    no_network.add_callback(responses.GET, EPIC_JWKS, callback=serve)
    return state


@pytest.fixture
def epic(make_harness):
    return make_harness([TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS)])


@pytest.fixture(scope="module")
def rsa_key_2():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rotation_new_kid_is_picked_up_after_a_refresh(
    epic, rotating, rsa_key, rsa_key_2, monotonic, endpoint
):
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    assert_accepted(epic.call(endpoint, epic_token(rsa_key, "2026-key", endpoint)))
    monotonic.advance(61)
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"), (rsa_key_2, "2027-key"))  # the EHR rotates
    assert_accepted(epic.call(endpoint, epic_token(rsa_key_2, "2027-key", endpoint)))
    # The old key is still listed, and still good.
    assert_accepted(epic.call(endpoint, epic_token(rsa_key, "2026-key", endpoint)))
    assert rotating["calls"] == 2


def test_refresh_on_unknown_kid_is_rate_limited_to_once_in_ten_seconds(
    epic, rotating, rsa_key, rsa_key_2, monotonic, auth_log
):
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))
    assert rotating["calls"] == 1
    for _ in range(5):  # a flood of unknown kids within the 10 s: no refetch
        monotonic.advance(1.9)
        token = epic_token(rsa_key_2, "2027-key")
        assert_rejected(epic.call("service", token), auth_log, "unknown-kid", token)
    assert rotating["calls"] == 1
    rotating["jwks"] = jwks_of((rsa_key_2, "2027-key"))
    monotonic.advance(0.6)  # 10 s after the last fetch: a rotation costs seconds, not minutes
    assert_accepted(epic.call("service", epic_token(rsa_key_2, "2027-key")))
    assert rotating["calls"] == 2


def test_known_kid_is_served_from_the_cache(epic, rotating, rsa_key, monotonic):
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    for _ in range(3):
        monotonic.advance(100)
        assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))
    assert rotating["calls"] == 1


def test_cached_keys_keep_working_when_a_refresh_fails(
    epic, rotating, rsa_key, rsa_key_2, monotonic, no_network, auth_log
):
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))
    no_network.replace(responses.GET, EPIC_JWKS, body=requests.ConnectionError("refused"))
    monotonic.advance(3601)  # the set is due for a refresh, and the endpoint is down
    assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))
    token = epic_token(rsa_key_2, "2027-key")  # a key we never had cannot be trusted
    monotonic.advance(11)
    assert_rejected(epic.call("service", token), auth_log, "jwks-unavailable", token)


def test_removed_key_stops_working_once_the_cache_ages_out(
    epic, rotating, rsa_key, monotonic, auth_log
):
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))
    rotating["jwks"] = {"keys": []}  # revoked
    monotonic.advance(3601)
    token = epic_token(rsa_key, "2026-key")
    assert_rejected(epic.call("service", token), auth_log, "unknown-kid", token)


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ConnectionError("refused")},
        {"body": requests.Timeout("slow")},
        {"status": 503, "body": "down"},
        {"status": 302, "headers": {"Location": "https://elsewhere.example.net/jwks"}},
        {"status": 200, "body": "<html>maintenance</html>"},
        {"status": 200, "body": "x" * (MAX_JWKS_BYTES + 1)},
    ],
    ids=["refused", "timeout", "503", "redirect", "not-json", "too-large"],
)
def test_jwks_endpoint_down_is_401_without_a_crash(
    epic, rsa_key, no_network, endpoint, auth_log, failure
):
    no_network.add(responses.GET, EPIC_JWKS, **failure)
    token = epic_token(rsa_key, "2026-key", endpoint)
    assert_rejected(epic.call(endpoint, token), auth_log, "jwks-unavailable", token)
    assert len(no_network.calls) == 1  # the redirect is not followed


def test_endpoint_down_is_not_hammered_and_recovery_is_picked_up(
    epic, rsa_key, no_network, monotonic, auth_log
):
    down = no_network.add(responses.GET, EPIC_JWKS, body=requests.ConnectionError("refused"))
    for _ in range(3):
        monotonic.advance(3)
        assert epic.call("service", epic_token(rsa_key, "2026-key")).status_code == 401
    assert down.call_count == 1
    assert set(failure_reasons(auth_log)) == {"jwks-unavailable"}
    no_network.replace(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, "2026-key")))
    monotonic.advance(60)
    assert_accepted(epic.call("service", epic_token(rsa_key, "2026-key")))


def test_rate_limit_is_per_client(make_harness, rotating, rsa_key, ec_key, no_network, monotonic):
    other_url = "https://other-ehr.example.org/jwks"
    no_network.add(responses.GET, other_url, json=jwks_of((ec_key, "o-1")))
    harness = make_harness(
        [
            TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS),
            TrustedClient(issuer="https://other-ehr.example.org", jwks_url=other_url),
        ]
    )
    rotating["jwks"] = jwks_of((rsa_key, "2026-key"))
    assert_accepted(harness.call("service", epic_token(rsa_key, "2026-key")))
    other = sign(ec_key, claims(PATHS["service"], iss="https://other-ehr.example.org"), kid="o-1")
    assert_accepted(harness.call("service", other))


# --- parsing: only asymmetric public keys, ever ----------------------------------------
def test_fetched_set_skips_unusable_keys(rsa_key):
    keys = parse_jwk_set(
        {
            "keys": [
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {**public_jwk(rsa_key, "private"), "d": "AQAB"},
                {**public_jwk(rsa_key, "enc"), "use": "enc"},
                {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
                "not a key",
                public_jwk(rsa_key, "good"),
            ]
        },
        strict=False,
    )
    assert list(keys) == ["good"]


@pytest.mark.parametrize(
    "jwk, reason",
    [
        ({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, "symmetric-key"),
        ({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB", "d": "AQAB"}, "private-key"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "bad-jwk"),
        ({"kty": "EC", "kid": "x", "crv": "P-384", "x": "AA", "y": "AA"}, "bad-jwk"),
        ({"kty": "OKP", "kid": "x", "crv": "Ed25519", "x": "AA"}, "unsupported-key"),
        ({"kty": "RSA", "kid": "x", "alg": "HS256", "n": "AQAB", "e": "AQAB"}, "unsupported-alg"),
    ],
)
def test_configured_set_names_the_bad_key(jwk, reason):
    with pytest.raises(JwksError) as raised:
        parse_jwk_set({"keys": [jwk]}, strict=True)
    assert raised.value.reason == reason
    assert "keys[0]" in raised.value.message


def test_short_rsa_keys_are_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(JwksError) as raised:
        parse_jwk_set({"keys": [public_jwk(weak, "weak")]}, strict=True)
    assert raised.value.reason == "weak-key"


def test_fetch_refuses_an_oversized_declared_length(no_network):
    no_network.add(
        responses.GET,
        EPIC_JWKS,
        body="{}",
        headers={"Content-Length": str(10**7)},
        auto_calculate_content_length=False,
    )
    with pytest.raises(JwksError) as raised:
        fetch_jwks(EPIC_JWKS)
    assert raised.value.reason in ("jwks-too-large", "jwks-unavailable")


def test_each_configured_url_of_a_client_has_its_own_rate_limit(
    make_harness, rsa_key, rsa_key_2, no_network, monotonic
):
    second = "https://fhir.epic.example.org/interconnect-fhir-oauth/keys-2"
    primary = no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, "2026-key")))
    alternate = no_network.add(responses.GET, second, json=jwks_of((rsa_key_2, "alt-key")))
    harness = make_harness(
        [TrustedClient(issuer=EPIC_ISSUER, jwks_url=EPIC_JWKS, jku_allowlist=(second,))]
    )
    assert_accepted(harness.call("service", epic_token(rsa_key, "2026-key")))
    monotonic.advance(5)
    token = sign(
        rsa_key_2, claims(PATHS["service"], iss=EPIC_ISSUER), alg="RS384", kid="alt-key", jku=second
    )
    assert_accepted(harness.call("service", token))
    assert (primary.call_count, alternate.call_count) == (1, 1)
