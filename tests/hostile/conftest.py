"""A production app with authentication on for the hostile-input tests: a test issuer whose
key is generated per session (bench/issuer.py), a fresh single-use token per request."""

from __future__ import annotations

import pytest

from bench.issuer import TestIssuer
from cds_service.bootstrap import build_authenticator
from cds_service.cdshooks.application import CdsApplication
from cds_service.config import load_settings
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry

#: The external base URL the app is configured with (a token's aud is this + the path).
BASE = "https://cds.example.org/b12"


@pytest.fixture(scope="session")
def issuer():
    return TestIssuer()


@pytest.fixture(scope="module")
def production_app(tmp_path_factory, issuer):
    """The real composition (bootstrap.build_authenticator) in the production profile."""
    workdir = tmp_path_factory.mktemp("hostile")
    settings = load_settings(
        {
            "CDS_PROFILE": "production",
            "CDS_DATABASE_URL": f"sqlite:///{workdir}/cds.sqlite3",
            "CDS_TRUSTED_CLIENTS": str(issuer.write_clients_file(workdir)),
            "CDS_PUBLIC_BASE_URL": BASE,
        }
    )
    store = open_store(settings.database_url)
    core = CdsApplication(registry=registry(), store=store, policy=settings.policy)
    return create_app(settings, core, authenticator=build_authenticator(settings, store))


def bearer(issuer: TestIssuer, path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(BASE + path)}"}


def assert_outcome(response, status: int, code: str) -> dict:
    """A FHIR OperationOutcome with the stable error code; nothing internal in it."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["details"]["coding"][0]["code"] == code
    assert issue["diagnostics"] and "Traceback" not in issue["diagnostics"]
    return issue
