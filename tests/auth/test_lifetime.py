"""A token's lifetime is bounded (CDS_JWT_MAX_LIFETIME_S, default 3600 s; docs/security.md):
``exp - iat`` above it, or an ``iat`` older than it, is a 401 with its own reason in the log.
The jti is refused before the replay store sees it when it could not be stored as text."""

from __future__ import annotations

import json

import jwt
import pytest

from cds_service.cdshooks.auth import MAX_LIFETIME_S
from cds_service.config import ConfigError, load_settings

from .conftest import (
    EHR_KID,
    NOW,
    PATHS,
    assert_accepted,
    assert_rejected,
    claims,
    ehr_client,
    failure_reasons,
    sign,
)

YEAR_S = 365 * 86400


def test_the_default_is_an_hour():
    assert MAX_LIFETIME_S == 3600
    assert load_settings({}).jwt_max_lifetime_s == 3600


def test_a_lifetime_of_exactly_the_maximum_is_accepted(harness, ec_key, endpoint):
    token = sign(ec_key, claims(PATHS[endpoint], lifetime=3600))
    assert_accepted(harness.call(endpoint, token))


def test_epics_fifteen_minutes_are_accepted(harness, ec_key, endpoint):
    assert_accepted(harness.call(endpoint, sign(ec_key, claims(PATHS[endpoint], lifetime=900))))


def test_one_second_over_the_maximum_is_refused(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], lifetime=3601))
    assert_rejected(harness.call(endpoint, token), auth_log, "lifetime-too-long", token)


def test_exp_five_thousand_years_ahead_is_refused(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], lifetime=5000 * YEAR_S))
    assert_rejected(harness.call(endpoint, token), auth_log, "lifetime-too-long", token)


def test_iat_zero_is_refused(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, {**claims(PATHS[endpoint]), "iat": 0})
    assert_rejected(harness.call(endpoint, token), auth_log, "lifetime-too-long", token)


def test_an_iat_older_than_the_maximum_is_refused_as_too_old(harness, ec_key, endpoint, auth_log):
    # Issued two hours ago with a short lifetime: expired too, but the log says how old.
    token = sign(ec_key, claims(PATHS[endpoint], now=NOW - 7200, lifetime=300))
    assert_rejected(harness.call(endpoint, token), auth_log, "iat-too-old", token)


def test_an_iat_within_the_maximum_and_leeway_is_only_expired(harness, ec_key, endpoint, auth_log):
    token = sign(ec_key, claims(PATHS[endpoint], now=NOW - 3600 - 60, lifetime=300))
    assert_rejected(harness.call(endpoint, token), auth_log, "expired", token)


def test_the_maximum_is_configurable(make_harness, ec_key, endpoint, auth_log):
    harness = make_harness([ehr_client(ec_key)])
    harness.authenticator.max_lifetime_s = 300
    assert_accepted(harness.call(endpoint, sign(ec_key, claims(PATHS[endpoint], lifetime=300))))
    token = sign(ec_key, claims(PATHS[endpoint], lifetime=301))
    assert_rejected(harness.call(endpoint, token), auth_log, "lifetime-too-long", token)


@pytest.mark.parametrize("value", ["59", "0", "an hour"])
def test_a_bad_setting_stops_the_service(value):
    with pytest.raises(ConfigError, match="CDS_JWT_MAX_LIFETIME_S"):
        load_settings({"CDS_JWT_MAX_LIFETIME_S": value})


@pytest.mark.parametrize("claim", ["exp", "iat"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_times_are_refused(harness, ec_key, endpoint, auth_log, claim, value):
    # JSON has no NaN, but Python's json module reads it: a NaN exp passed every comparison.
    payload = {k: v for k, v in claims(PATHS[endpoint]).items() if k != claim}
    raw = json.dumps(payload)[:-1] + f', "{claim}": {value}}}'
    token = jwt.api_jws.PyJWS().encode(
        raw.encode(), ec_key, algorithm="ES384", headers={"kid": EHR_KID, "typ": "JWT"}
    )
    response = harness.call(endpoint, token)
    assert response.status_code == 401
    assert failure_reasons(auth_log) in (["malformed-claims"], ["invalid-token"])


@pytest.mark.parametrize(
    "jti", ["abc\u0000def", "line\nbreak", "tab\there", "\u0085", "x" * 257, "\u2028"]
)
def test_a_jti_that_cannot_be_stored_as_text_is_refused_before_the_store(
    harness, ec_key, endpoint, auth_log, jti
):
    token = sign(ec_key, claims(PATHS[endpoint], jti=jti))
    assert_rejected(harness.call(endpoint, token), auth_log, "malformed-jti", token)
    assert "replay-store-unavailable" not in failure_reasons(auth_log)
