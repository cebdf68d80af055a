"""Vendor-specific trust: Epic's one configured audience per client, Oracle
Health's published jku list."""

from __future__ import annotations

import responses

from cds_service.cdshooks.clients import parse_trusted_clients
from cds_service.cdshooks.jkulist import JkuListCache, jku_urls

from .conftest import (
    BASE,
    EPIC_ISSUER,
    EPIC_JWKS,
    EPIC_KID,
    PATHS,
    assert_accepted,
    assert_rejected,
    claims,
    jwks_of,
    sign,
)

ORACLE_ISSUER = "https://cds-hooks.cerner.com"
ORACLE_LIST = "https://authorization.cerner.com/jwk"
ORACLE_JKU = "https://authorization.cerner.com/tenants/t-1/jwks"
ORACLE_KID = "oracle-1"


def _epic(**extra):
    entry = {"issuer": EPIC_ISSUER, "jwks_url": EPIC_JWKS, "profile": "epic", **extra}
    return parse_trusted_clients({"clients": [entry]})


def test_epic_configured_audience_is_accepted_on_every_endpoint(
    make_harness, rsa_key, endpoint, no_network
):
    no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, EPIC_KID)))
    one = BASE + "/cds-services"
    harness = make_harness(_epic(audiences=[one]))
    token = sign(rsa_key, claims("", iss=EPIC_ISSUER, aud=one), alg="RS384", kid=EPIC_KID)
    assert_accepted(harness.call(endpoint, token))


def test_an_audience_neither_called_nor_configured_is_refused(
    make_harness, rsa_key, no_network, auth_log
):
    no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, EPIC_KID)))
    harness = make_harness(_epic(audiences=[BASE + "/cds-services"]))
    aud = "https://elsewhere.example.org/cds-services"
    token = sign(rsa_key, claims("", iss=EPIC_ISSUER, aud=aud), alg="RS384", kid=EPIC_KID)
    assert_rejected(harness.call("service", token), auth_log, "wrong-audience", token)


def test_without_configured_audiences_the_called_url_is_still_required(
    make_harness, rsa_key, no_network, auth_log
):
    no_network.add(responses.GET, EPIC_JWKS, json=jwks_of((rsa_key, EPIC_KID)))
    harness = make_harness(_epic())
    aud = BASE + "/cds-services"
    token = sign(rsa_key, claims("", iss=EPIC_ISSUER, aud=aud), alg="RS384", kid=EPIC_KID)
    assert_rejected(harness.call("service", token), auth_log, "wrong-audience", token)


def _oracle(make_harness, monotonic):
    clients = parse_trusted_clients(
        {"clients": [{"issuer": ORACLE_ISSUER, "profile": "oracle", "link_hosts": []}]}
    )
    harness = make_harness(clients)
    harness.authenticator.jku_lists = JkuListCache(clock=monotonic)
    return harness


def _oracle_token(rsa_key, jku=ORACLE_JKU, path=PATHS["service"]):
    return sign(rsa_key, claims(path, iss=ORACLE_ISSUER), alg="RS384", kid=ORACLE_KID, jku=jku)


def test_oracle_jku_on_the_published_list_is_fetched_and_trusted(
    make_harness, rsa_key, monotonic, endpoint, no_network
):
    listed = no_network.add(responses.GET, ORACLE_LIST, json={"jkus": [ORACLE_JKU]})
    keys = no_network.add(responses.GET, ORACLE_JKU, json=jwks_of((rsa_key, ORACLE_KID)))
    harness = _oracle(make_harness, monotonic)
    assert_accepted(harness.call(endpoint, _oracle_token(rsa_key, path=PATHS[endpoint])))
    assert_accepted(harness.call(endpoint, _oracle_token(rsa_key, path=PATHS[endpoint])))
    assert (listed.call_count, keys.call_count) == (1, 1)  # both cached


def test_oracle_jku_not_on_the_list_is_refused_without_fetching_it(
    make_harness, rsa_key, monotonic, no_network, auth_log
):
    no_network.add(responses.GET, ORACLE_LIST, json=[ORACLE_JKU])
    harness = _oracle(make_harness, monotonic)
    token = _oracle_token(rsa_key, jku="https://attacker.example.net/jwks")
    assert_rejected(harness.call("service", token), auth_log, "jku-not-allowed", token)
    assert [c.request.url for c in no_network.calls] == [ORACLE_LIST]


def test_key_rotation_new_jku_refetches_the_list_once_per_interval(
    make_harness, rsa_key, monotonic, no_network, auth_log
):
    rotated = "https://authorization.cerner.com/tenants/t-1/jwks-2"
    listed = no_network.add(responses.GET, ORACLE_LIST, json=[ORACLE_JKU])
    harness = _oracle(make_harness, monotonic)
    token = _oracle_token(rsa_key, jku=rotated)
    assert_rejected(harness.call("service", token), auth_log, "jku-not-allowed", token)
    assert_rejected(
        harness.call("service", _oracle_token(rsa_key, jku=rotated)), auth_log, "jku-not-allowed"
    )
    assert listed.call_count == 1  # rate-limited: a token cannot make us hammer the list
    no_network.replace(responses.GET, ORACLE_LIST, json=[ORACLE_JKU, rotated])
    no_network.add(responses.GET, rotated, json=jwks_of((rsa_key, ORACLE_KID)))
    monotonic.advance(61)
    assert_accepted(harness.call("service", _oracle_token(rsa_key, jku=rotated)))


def test_unreachable_jku_list_fails_closed(make_harness, rsa_key, monotonic, no_network, auth_log):
    no_network.add(responses.GET, ORACLE_LIST, status=503)
    harness = _oracle(make_harness, monotonic)
    token = _oracle_token(rsa_key)
    assert_rejected(harness.call("service", token), auth_log, "jku-list-unavailable", token)


def test_oracle_token_without_jku_is_refused(make_harness, rsa_key, monotonic, auth_log):
    harness = _oracle(make_harness, monotonic)
    token = sign(rsa_key, claims(PATHS["service"], iss=ORACLE_ISSUER), alg="RS384", kid="k")
    assert_rejected(harness.call("service", token), auth_log, "missing-jku", token)


def test_jku_list_is_read_leniently_and_only_https_urls_count():
    document = {
        "jkus": ["https://a.example.org/jwks", "http://plain.example.org/jwks", 7],
        "tenants": [{"jku": "https://b.example.org/jwks"}],
        "note": "not a url",
    }
    assert jku_urls(document) == {"https://a.example.org/jwks", "https://b.example.org/jwks"}
    assert jku_urls(["https://c.example.org/k"]) == {"https://c.example.org/k"}
    assert jku_urls("nonsense") == frozenset()


def test_a_jku_that_is_not_an_https_url_is_refused_without_fetching_the_list(
    make_harness, rsa_key, monotonic, no_network, auth_log
):
    harness = _oracle(make_harness, monotonic)
    for jku in ("http://[::1", "http://authorization.cerner.com/jwks"):
        token = _oracle_token(rsa_key, jku=jku)
        assert_rejected(harness.call("service", token), auth_log, "jku-not-allowed", token)
    assert not no_network.calls
