"""Profiles at start-up (bootstrap): production refuses anonymous traffic unless told
otherwise, development trusts the public sandbox with its bundled key; the trusted clients
file is validated with errors naming the entry; CORS survives a 401."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from cds_service.bootstrap import build_app, build_authenticator
from cds_service.cdshooks.clients import SANDBOX_ISSUER, SANDBOX_JKU
from cds_service.config import ConfigError, load_settings

from .conftest import (
    BASE,
    EHR_ISSUER,
    EHR_KID,
    NOW,
    ORIGIN,
    PATHS,
    SANDBOX_KID,
    assert_accepted,
    assert_rejected,
    claims,
    jwks_of,
    sign,
)
from .test_valid_tokens import capture


@pytest.fixture
def env(tmp_path):
    return {"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3"}


@pytest.fixture
def apps():
    """build_app's, with their FHIR fetcher closed afterwards."""
    built = []

    def build(environ):
        app = build_app(load_settings(environ))
        built.append(app)
        return app

    yield build
    for app in built:
        close = getattr(app.extensions["cds"].fetcher, "close", None)
        if close:
            close()


def clients_file(tmp_path, ec_key, suffix=".json", **extra) -> str:
    entry = {"issuer": EHR_ISSUER, "jwks": jwks_of((ec_key, EHR_KID)), **extra}
    path = tmp_path / f"clients{suffix}"
    data = {"clients": [entry]}
    text = json.dumps(data) if suffix == ".json" else yaml.safe_dump(data)
    path.write_text(text, encoding="utf-8")
    return str(path)


def call(app, endpoint, token=None, origin=ORIGIN):
    headers = {"Origin": origin}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if endpoint == "discovery":
        return app.test_client().get(PATHS[endpoint], headers=headers, base_url=BASE)
    from tests.conftest import sandbox_request

    body = sandbox_request("feedback" if endpoint == "feedback" else "patient-view")
    return app.test_client().post(PATHS[endpoint], json=body, headers=headers, base_url=BASE)


# --- production -------------------------------------------------------------------------
def test_production_refuses_to_start_without_trusted_clients(env):
    with pytest.raises(ConfigError, match="CDS_TRUSTED_CLIENTS.*CDS_ALLOW_ANONYMOUS=1"):
        build_app(load_settings(env))


def test_production_with_allow_anonymous_starts_with_a_loud_warning(env, apps, caplog, endpoint):
    caplog.set_level(logging.WARNING)
    app = apps({**env, "CDS_ALLOW_ANONYMOUS": "1", "CDS_CORS_ORIGINS": ORIGIN})
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)
    assert_accepted(call(app, endpoint))


def test_production_with_allow_anonymous_still_verifies_a_token(
    env, apps, ec_key, caplog, endpoint
):
    app = apps({**env, "CDS_ALLOW_ANONYMOUS": "1", "CDS_CORS_ORIGINS": ORIGIN})
    token = sign(ec_key, claims(PATHS[endpoint], now=0) | {"exp": 2**31, "iat": 0})
    assert_rejected(call(app, endpoint, token), caplog, "untrusted-issuer", token)


def test_production_with_trusted_clients_needs_the_public_base_url(env, tmp_path, ec_key):
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL"):
        build_app(load_settings({**env, "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key)}))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_production_with_a_trusted_clients_file(
    env, apps, tmp_path, ec_key, caplog, endpoint, suffix
):
    app = apps(
        {
            **env,
            "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key, suffix),
            "CDS_PUBLIC_BASE_URL": f"https://internal.example.org, {BASE}/",
            "CDS_CORS_ORIGINS": ORIGIN,
        }
    )
    app.extensions["cds_auth"].clock = lambda: NOW
    assert_accepted(call(app, endpoint, sign(ec_key, claims(PATHS[endpoint]))))
    assert_rejected(call(app, endpoint), caplog, "missing-token")


def test_production_never_trusts_the_sandbox_by_default(env, apps, tmp_path, ec_key, caplog):
    recorded = capture("patient-view")
    app = apps(
        {
            **env,
            "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key),
            "CDS_PUBLIC_BASE_URL": "http://localhost:5005",
            "CDS_CORS_ORIGINS": ORIGIN,
        }
    )
    app.extensions["cds_auth"].clock = lambda: recorded["jwt_decoded"]["payload"]["iat"]
    headers = {"Authorization": recorded["headers"]["Authorization"], "Origin": ORIGIN}
    response = app.test_client().post(
        "/cds-services/harness-greeting", json=recorded["body"], headers=headers
    )
    assert_rejected(response, caplog, "untrusted-issuer")


def test_sandbox_in_a_production_clients_file_is_trusted_with_a_warning(env, tmp_path, caplog):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [{"issuer": SANDBOX_ISSUER, "jwks_url": SANDBOX_JKU}]}))
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(path), "CDS_PUBLIC_BASE_URL": BASE})
    authenticator = build_authenticator(settings, store=None)
    assert SANDBOX_ISSUER in authenticator.clients
    assert any("SANDBOX" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_cors_headers_survive_a_401_and_preflight_needs_no_token(
    env, apps, tmp_path, ec_key, endpoint
):
    app = apps(
        {
            **env,
            "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key),
            "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_CORS_ORIGINS": ORIGIN,
        }
    )
    response = call(app, endpoint)
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    preflight = app.test_client().options(
        PATHS[endpoint],
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_cors_origin_not_configured_gets_no_allow_origin(env, apps, tmp_path, ec_key):
    app = apps(
        {
            **env,
            "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key),
            "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_CORS_ORIGINS": ORIGIN,
        }
    )
    response = call(app, "discovery", origin="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response.headers


# --- development --------------------------------------------------------------------------
def test_development_accepts_anonymous_calls_and_says_so_at_start_up(env, apps, caplog, endpoint):
    caplog.set_level(logging.INFO)
    app = apps({**env, "CDS_PROFILE": "development"})
    assert any(
        "DEVELOPMENT PROFILE" in r.getMessage() and "sandbox" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert_accepted(call(app, endpoint, origin="http://localhost:8080"))
    assert any(r.getMessage() == "anonymous call accepted" for r in caplog.records)


def test_development_trusts_the_sandbox_with_no_network(env, apps, no_network):
    app = apps({**env, "CDS_PROFILE": "development"})
    assert SANDBOX_ISSUER in app.extensions["cds_auth"].clients
    assert len(no_network.calls) == 0


def test_development_still_verifies_a_token_that_is_there(env, apps, ec_key, caplog, endpoint):
    app = apps({**env, "CDS_PROFILE": "development"})
    token = sign(ec_key, claims(PATHS[endpoint], iss=SANDBOX_ISSUER), kid=SANDBOX_KID)
    response = call(app, endpoint, token, origin="http://localhost:8080")
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert caplog.records[-1].reason in ("bad-signature", "wrong-audience")


def test_development_malformed_header_is_401(env, apps, caplog, endpoint):
    app = apps({**env, "CDS_PROFILE": "development"})
    headers = {"Authorization": "Bearer nonsense"}
    if endpoint == "discovery":
        response = app.test_client().get(PATHS[endpoint], headers=headers)
    else:
        response = app.test_client().post(PATHS[endpoint], json={}, headers=headers)
    assert response.status_code == 401


def test_development_audience_defaults_to_the_requests_own_host(env, apps, ec_key, tmp_path):
    app = apps(
        {**env, "CDS_PROFILE": "development", "CDS_TRUSTED_CLIENTS": clients_file(tmp_path, ec_key)}
    )
    app.extensions["cds_auth"].clock = lambda: NOW
    http = app.test_client()
    token = sign(ec_key, claims("/cds-services", aud="http://127.0.0.1:8080/cds-services"))
    assert (
        http.get(
            "/cds-services",
            headers={"Authorization": f"Bearer {token}"},
            base_url="http://127.0.0.1:8080",
        ).status_code
        == 200
    )
    token = sign(ec_key, claims("/cds-services", aud="http://127.0.0.1:8080/cds-services"))
    assert (
        http.get(
            "/cds-services",
            headers={"Authorization": f"Bearer {token}"},
            base_url="http://localhost:8080",
        ).status_code
        == 401
    )


# --- settings and the trusted clients file ------------------------------------------------
@pytest.mark.parametrize("value", ["HS256", "none", "ES384,HS384", "ES512"])
def test_jwt_algorithms_never_include_none_or_hmac(env, value):
    settings = load_settings({**env, "CDS_PROFILE": "development", "CDS_JWT_ALGORITHMS": value})
    with pytest.raises(ConfigError, match="CDS_JWT_ALGORITHMS"):
        build_authenticator(settings, store=None)


def test_jwt_algorithms_accept_the_optional_ones(env):
    settings = load_settings(
        {**env, "CDS_PROFILE": "development", "CDS_JWT_ALGORITHMS": "es384, RS384,PS384"}
    )
    assert build_authenticator(settings, store=None).algorithms == ("ES384", "RS384", "PS384")


def test_public_base_url_must_be_a_url(env):
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL"):
        load_settings({**env, "CDS_PUBLIC_BASE_URL": "cds.example.org"})


A = {"issuer": "https://a.example", "jwks_url": "https://a.example/jwks"}
BAD_ENTRIES = [
    ({"jwks_url": "https://ehr.example.org/jwks"}, "issuer"),
    ({"issuer": "https://a.example"}, "jwks_url: give exactly one"),
    (
        {"issuer": "https://a.example", "jwks_url": "https://a.example/jwks", "jwks": {"keys": []}},
        "jwks_url: give exactly one",
    ),
    ({"issuer": "https://a.example", "jwks_url": "http://a.example/jwks"}, "https"),
    ({**A, "jku_allowlist": ["ftp://x"]}, "jku_allowlist"),
    ({**A, "algorithms": ["HS256"]}, "algorithms.0: 'HS256' is not accepted"),
    ({**A, "tenants": []}, "tenants"),
    ({**A, "fhir_servers": ["x"]}, "fhir_servers"),
    ({**A, "jwks_uri": "x"}, "jwks_uri: Unknown field"),
    (
        {
            "issuer": "https://a.example",
            "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2Vj"}]},
        },
        "jwks: keys[0]: k: symmetric",
    ),
    ({"issuer": "https://a.example", "jwks": {"not": "a set"}}, "jwks: expected a JWK Set"),
]


@pytest.mark.parametrize("entry, message", BAD_ENTRIES)
def test_bad_trusted_client_is_named_at_start_up(env, tmp_path, ec_key, entry, message):
    good = {"issuer": EHR_ISSUER, "jwks": jwks_of((ec_key, EHR_KID))}
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump({"clients": [good, entry]}), encoding="utf-8")
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(path), "CDS_PUBLIC_BASE_URL": BASE})
    with pytest.raises(ConfigError) as raised:
        build_authenticator(settings, store=None)
    text = str(raised.value)
    assert text.startswith(f"CDS_TRUSTED_CLIENTS ({path}): clients[1]")
    if "issuer" in entry:
        assert f"(issuer '{entry['issuer']}')" in text
    assert message in text


def test_private_key_in_the_clients_file_is_refused(env, tmp_path, ec_key):
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    private = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()), as_dict=True)
    path = tmp_path / "clients.json"
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"issuer": "https://a.example", "jwks": {"keys": [{**private, "kid": "k"}]}}
                ]
            }
        )
    )
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(path), "CDS_PUBLIC_BASE_URL": BASE})
    with pytest.raises(ConfigError, match="private key material"):
        build_authenticator(settings, store=None)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "expected a mapping"),
        ("{}", "clients: Missing data"),
        ('{"clients": [], "extra": 1}', "extra: Unknown field"),
        ("{not json", "not valid JSON at line 1, column 2"),
    ],
)
def test_bad_trusted_clients_file_is_named(env, tmp_path, content, message):
    path = tmp_path / "clients.json"
    path.write_text(content, encoding="utf-8")
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(path), "CDS_PUBLIC_BASE_URL": BASE})
    with pytest.raises(ConfigError, match="CDS_TRUSTED_CLIENTS") as raised:
        build_authenticator(settings, store=None)
    assert message in str(raised.value)


def test_duplicate_issuer_is_refused(env, tmp_path, ec_key):
    entry = {"issuer": EHR_ISSUER, "jwks": jwks_of((ec_key, EHR_KID))}
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [entry, entry]}))
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(path), "CDS_PUBLIC_BASE_URL": BASE})
    with pytest.raises(ConfigError, match=r"clients\[1\].*already given by clients\[0\]"):
        build_authenticator(settings, store=None)


def test_missing_trusted_clients_file_is_named(env, tmp_path):
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": str(tmp_path / "nope.yaml")})
    with pytest.raises(ConfigError, match="CDS_TRUSTED_CLIENTS: cannot read"):
        build_authenticator(settings, store=None)


def test_client_fhir_servers_and_tenants_are_loaded(env, tmp_path, ec_key):
    path = clients_file(
        tmp_path,
        ec_key,
        tenants=["hospital-a"],
        algorithms=["ES384"],
        fhir_servers=["https://ehr.example.org/fhir/"],
    )
    settings = load_settings({**env, "CDS_TRUSTED_CLIENTS": path, "CDS_PUBLIC_BASE_URL": BASE})
    client = build_authenticator(settings, store=None).clients[EHR_ISSUER]
    assert client.tenants == ("hospital-a",)
    assert client.fhir_servers == ("https://ehr.example.org/fhir",)
    assert client.algorithms == ("ES384",)
    assert client.jwks_url is None and EHR_KID in client.keys
