"""The documented way to run the public CDS Hooks sandbox against a production-profile service
(docs/security.md; deploy/sandbox-trusted-clients.yaml and deploy/sandbox.env) works: with
exactly that trusted-clients entry and environment, the captured sandbox requests verify at
the time they were captured, and the sandbox's origin passes CORS."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cds_service.bootstrap import build_authenticator
from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.clients import SANDBOX_ISSUER, SANDBOX_JKU
from cds_service.cdshooks.errors import Unauthorized
from cds_service.config import load_settings
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "deploy" / "sandbox-trusted-clients.yaml"
ENV = ROOT / "deploy" / "sandbox.env"
DOC = ROOT / "docs" / "security.md"
CAPTURES = sorted((ROOT / "fixtures" / "sandbox").glob("*.capture.json"))
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


def documented_env() -> dict[str, str]:
    env = {}
    for line in ENV.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def settings_for(tmp_path, public_base: str, clients: Path = CLIENTS):
    env = documented_env()
    env.update(
        {
            # Where this test runs: the file by absolute path, the URL the capture's browser
            # called as the public base (the documented value is an example to replace).
            "CDS_TRUSTED_CLIENTS": str(clients),
            "CDS_PUBLIC_BASE_URL": public_base,
            "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
        }
    )
    return load_settings(env)


def capture_base(capture: dict) -> str:
    parts = urlsplit(capture["url"])
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="module")
def captures():
    loaded = [json.loads(p.read_text(encoding="utf-8")) for p in CAPTURES]
    assert len(loaded) >= 4  # order-sign, order-select, patient-view, feedback
    return loaded


def test_the_documented_environment_is_the_production_profile():
    env = documented_env()
    assert env["CDS_PROFILE"] == "production"
    assert env["CDS_CORS_ORIGINS"] == SANDBOX_ORIGIN
    assert env["CDS_TRUSTED_CLIENTS"] == "deploy/sandbox-trusted-clients.yaml"
    assert env["CDS_PUBLIC_BASE_URL"].startswith("https://")


def test_the_documented_entry_verifies_every_captured_sandbox_request(tmp_path, captures):
    for capture in captures:
        settings = settings_for(tmp_path, capture_base(capture))
        store = open_store(settings.database_url)
        authenticator = build_authenticator(settings, store)
        payload = capture["jwt_decoded"]["payload"]
        authenticator.clock = lambda: payload["iat"] + 1
        client = authenticator.authenticate(
            capture["headers"]["Authorization"], path=urlsplit(capture["url"]).path
        )
        assert client is not None and client.issuer == SANDBOX_ISSUER
        assert capture["jwt_decoded"]["header"]["jku"] == SANDBOX_JKU
        store.close()


def test_the_captures_are_refused_a_day_later(tmp_path, captures):
    capture = captures[0]
    settings = settings_for(tmp_path, capture_base(capture))
    authenticator = build_authenticator(settings, open_store(settings.database_url))
    authenticator.clock = lambda: capture["jwt_decoded"]["payload"]["iat"] + 86400
    with pytest.raises(Unauthorized):
        authenticator.authenticate(
            capture["headers"]["Authorization"], path=urlsplit(capture["url"]).path
        )


def test_without_the_jku_allowlist_line_the_sandbox_is_refused(tmp_path, captures, caplog):
    document = yaml.safe_load(CLIENTS.read_text(encoding="utf-8"))
    del document["clients"][0]["jku_allowlist"]
    trimmed = tmp_path / "trimmed.yaml"
    trimmed.write_text(yaml.safe_dump(document), encoding="utf-8")
    capture = captures[0]
    settings = settings_for(tmp_path, capture_base(capture), clients=trimmed)
    authenticator = build_authenticator(settings, open_store(settings.database_url))
    authenticator.clock = lambda: capture["jwt_decoded"]["payload"]["iat"] + 1
    reasons = []
    authenticator.on_failure = reasons.append
    with pytest.raises(Unauthorized):
        authenticator.authenticate(
            capture["headers"]["Authorization"], path=urlsplit(capture["url"]).path
        )
    assert reasons == ["jku-not-allowed"]


def test_the_sandbox_origin_passes_cors(tmp_path):
    settings = settings_for(tmp_path, "https://cds.example.org")
    store = open_store(settings.database_url)
    app = create_app(
        settings,
        CdsApplication(registry=registry(), store=store),
        authenticator=build_authenticator(settings, store),
    )
    response = app.test_client().options(
        "/cds-services",
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_the_documentation_shows_the_files_the_tests_use():
    text = DOC.read_text(encoding="utf-8")
    assert "deploy/sandbox-trusted-clients.yaml" in text
    for name, value in documented_env().items():
        assert f"{name}={value}" in text
